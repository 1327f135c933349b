import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_ID_FILE, AGENT_VERSION, loadAgentIdentity } from './agent-identity';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-identity-'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe(loadAgentIdentity.name, () => {
  it('generates a UUID at the first start and keeps it across restarts', async () => {
    const first = await loadAgentIdentity(dir);
    expect(first.agentId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(readFileSync(join(dir, AGENT_ID_FILE), 'utf8')).toBe(`${first.agentId}\n`);
    expect((await loadAgentIdentity(dir)).agentId).toBe(first.agentId);
    expect(first.version).toBe(AGENT_VERSION);
    expect(AGENT_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(first.hostname).not.toBe('');
  });

  it('replaces a damaged id file, saying so', async () => {
    writeFileSync(join(dir, AGENT_ID_FILE), '\u0000\u0001garbage with spaces');
    const warnings: string[] = [];
    const identity = await loadAgentIdentity(dir, (warning) => warnings.push(warning));
    expect(warnings).toHaveLength(1);
    expect((await loadAgentIdentity(dir)).agentId).toBe(identity.agentId);
  });
});

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeExposition } from '@wsmon/metrics';
import { familyNamed, parseExposition, sampleValue } from '@wsmon/metrics/parser';
import { DirectoryLockedError } from '@wsmon/runtime';
import { startTargetZoo, type TargetZoo } from '@wsmon/testing';
import type { AgentResult } from '@wsmon/proto/agent';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, DATA_FILES, type AgentOptions } from './agent';
import type { AgentConfig } from './config/agent-config';
import { ConfigStore } from './config/config-store';
import {
  assignment,
  ScriptedControlPlane,
  type ScriptedStream,
} from './session/scripted-control-plane.spec-helper';

const TOKEN = 'wsa_agent_spec_0a1b2c3d4e5f6789';
const WAIT_MS = 10_000;

let zoo: TargetZoo;
let dir: string;
let plane: ScriptedControlPlane;
const agents: Agent[] = [];
const logs: string[] = [];

beforeAll(async () => {
  zoo = await startTargetZoo();
});

afterAll(async () => {
  await zoo.close();
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-agent-'));
  plane = await ScriptedControlPlane.start({ token: TOKEN });
  logs.length = 0;
});

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop();
  await plane.close();
  rmSync(dir, { recursive: true, force: true });
});

function agentConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return {
    controlPlane: plane.address,
    token: TOKEN,
    insecure: true,
    tls: { caPem: undefined, serverName: undefined, clientCertPem: undefined, clientKeyPem: undefined },
    dataDir: join(dir, 'data'),
    httpHost: '127.0.0.1',
    httpPort: 0,
    concurrency: 4,
    spoolMaxBytes: 8 * 1024 * 1024,
    probeModulesPath: undefined,
    debug: true,
    ...overrides,
  };
}

async function startAgent(
  overrides: Partial<AgentConfig> = {},
  options: Partial<AgentOptions> = {},
): Promise<Agent> {
  const agent = await Agent.start({
    config: agentConfig(overrides),
    log: (line) => logs.push(line),
    session: { backoff: { initialMs: 20, maxMs: 100, multiplier: 2, fatalMs: 60_000 }, random: () => 1 },
    shutdown: { runDeadlineMs: 3000, ackWaitMs: 3000, closeWaitMs: 1000 },
    ...options,
  });
  agents.push(agent);
  return agent;
}

async function stopAgent(agent: Agent): Promise<void> {
  agents.splice(agents.indexOf(agent), 1);
  await agent.stop();
}

/** Results the stream receives, until one matches. */
async function resultWhere(
  stream: ScriptedStream,
  match: (result: AgentResult) => boolean,
): Promise<AgentResult> {
  for (;;) {
    const found = (await stream.next('result_batch')).results.find(match);
    if (found) return found;
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs:\n${logs.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const scheduledSuccesses = (agent: Agent) =>
  sampleValue(parseExposition(writeExposition(agent.metrics())), 'wsmon_agent_probes_total', {
    kind: 'scheduled',
    outcome: 'success',
  });

describe(Agent.name, () => {
  it('runs what the control plane assigns, answers RunNow, is ready and measured, and drains when it stops', async () => {
    const agent = await startAgent();
    const stream = await plane.nextStream();
    const hello = await stream.next('hello');
    expect(hello.agent_id).toBe(agent.identity.agentId);
    stream.welcome();
    stream.acknowledgeResults();
    stream.snapshot(3, [
      assignment({
        test_id: 'echo',
        name: 'echo test',
        probe: { url: zoo.url('/echo') },
        schedule: { interval_s: 1 },
      }),
    ]);
    expect(await stream.next('config_ack')).toEqual({ revision: 3, rejected_tests: [] });

    const scheduled = await resultWhere(stream, (r) => r.test_id === 'echo' && r.run_id === undefined);
    expect(scheduled).toMatchObject({ test_revision: 1, success: true, attempts: 1, close_code: 1000 });
    expect(JSON.parse(Buffer.from(scheduled.result_json).toString('utf8'))).toMatchObject({ success: true });

    stream.send({
      run_now: { run_id: 'run-7', test: assignment({ test_id: 'paused', probe: { url: zoo.url('/echo') } }) },
    });
    expect(await resultWhere(stream, (r) => r.run_id === 'run-7')).toMatchObject({
      test_id: 'paused',
      success: true,
    });

    const ready = await fetch(`${agent.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    const families = parseExposition(await (await fetch(`${agent.httpUrl}/metrics`)).text());
    expect(sampleValue(families, 'wsmon_agent_connected')).toBe(1);
    expect(sampleValue(families, 'wsmon_agent_config_revision')).toBe(3);
    expect(sampleValue(families, 'wsmon_agent_tests')).toBe(1);
    expect(
      sampleValue(families, 'wsmon_agent_test_last_success', { test_id: 'echo', test_name: 'echo test' }),
    ).toBe(1);
    expect(sampleValue(families, 'wsmon_agent_probes_total', { kind: 'on_demand', outcome: 'success' })).toBe(
      1,
    );
    expect(familyNamed(families, 'wsmon_agent_spool_depth')).toBeDefined();
    expect(
      logs.some((line) => line.startsWith('test_id=echo ') && line.includes('msg="Probe succeeded"')),
    ).toBe(true);

    await stopAgent(agent);
    expect(stream.all('drain_done')).toHaveLength(1);
    expect(stream.received.at(-1)).toEqual({ drain_done: {} });
    expect(logs.at(-1)).toBe('stopped');
  });

  it('probes from its kept configuration while the control plane is unreachable, and holds its data directory alone', async () => {
    const first = await startAgent();
    const stream = await plane.nextStream();
    await stream.next('hello');
    stream.welcome();
    stream.acknowledgeResults();
    stream.snapshot(5, [
      assignment({ test_id: 'kept', probe: { url: zoo.url('/echo') }, schedule: { interval_s: 1 } }),
    ]);
    await stream.next('config_ack');
    await stopAgent(first);
    await plane.close();

    const second = await startAgent();
    expect(logs).toContain('kept configuration: 1 tests at revision 5');
    await until(() => scheduledSuccesses(second) >= 1, 'a run of the kept test');
    expect(second.readiness()).toEqual({ ready: false, reason: 'not connected to the control plane' });
    expect(second.identity.agentId).toBe(first.identity.agentId);
    await expect(startAgent()).rejects.toBeInstanceOf(DirectoryLockedError);
  });

  it('runs nothing from a kept configuration that a drain left', async () => {
    const config = agentConfig();
    const store = new ConfigStore(join(config.dataDir, DATA_FILES.config), TOKEN);
    mkdirSync(config.dataDir, { recursive: true });
    await store.save({
      revision: 8,
      drained: true,
      tests: [assignment({ test_id: 'held', probe: { url: zoo.url('/echo') }, schedule: { interval_s: 1 } })],
    });
    await plane.close();
    const agent = await startAgent();
    expect(logs).toContain(
      'kept configuration: 1 tests at revision 8, drained: running none until synchronised',
    );
    expect(agent.status()).toMatchObject({ drained: true, heldTests: 1 });
  });
});

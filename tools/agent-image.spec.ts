import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bytesUnder,
  freePort,
  nodeModulesAbove,
  productionInstall,
  start,
  type Running,
} from './production-install';

/** The agent image's own layers are its production node_modules and its bundle: keep them small. */
const NODE_MODULES_BUDGET_BYTES = 40 * 1024 * 1024;

/**
 * The agent as docker/Dockerfile.agent installs it (production dependencies of apps/agent alone, and the
 * bundle), run as its container runs it: a bad configuration is refused with every problem named; with no
 * control plane to reach it serves /healthz, is not ready, and stops cleanly on SIGTERM.
 */
describe('the agent image, from its production install', () => {
  let dir: string;
  const running: Running[] = [];
  const agent = (env: Record<string, string>) => {
    const process = start(join(dir, 'apps/agent/dist/main.js'), env);
    running.push(process);
    return process;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wsmon-agent-image-'));
    expect(nodeModulesAbove(dir), 'a node_modules the install would borrow from').toBeUndefined();
    await productionInstall('agent', dir);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds the production dependencies of the agent alone, within budget', () => {
    const modules = join(dir, 'node_modules');
    for (const name of ['@grpc/grpc-js', '@bufbuild/protobuf', 'ws', 'zod', 'node-cron']) {
      expect(existsSync(join(modules, name)), name).toBe(true);
    }
    // Dev tools, and the control plane's packages, stay out.
    for (const name of ['typescript', 'esbuild', 'vitest', '@nestjs/core', 'typeorm', 'pg']) {
      expect(existsSync(join(modules, name)), name).toBe(false);
    }
    const bytes = bytesUnder(modules);
    expect(bytes, `${(bytes / 1024 / 1024).toFixed(1)} MiB`).toBeLessThan(NODE_MODULES_BUDGET_BYTES);
  });

  it('names every problem of a bad configuration, never the token, and exits 2', async () => {
    const process = agent({
      WSMON_CONTROL_PLANE: 'nowhere',
      WSMON_TOKEN: 'short-secret',
      WSMON_AGENT_HTTP_PORT: 'abc',
    });
    expect(await process.exited()).toBe(2);
    expect(process.output()).toContain('WSMON_CONTROL_PLANE: must be host:port');
    expect(process.output()).toContain('WSMON_TOKEN: must be the location token');
    expect(process.output()).toContain('WSMON_AGENT_HTTP_PORT: must be a number');
    expect(process.output()).not.toContain('short-secret');
  });

  it('serves /healthz without its control plane, is not ready, and stops on SIGTERM', async () => {
    const [httpPort, nothingThere] = await Promise.all([freePort(), freePort()]);
    const process = agent({
      WSMON_CONTROL_PLANE: `127.0.0.1:${nothingThere}`,
      WSMON_TOKEN: 'wsa_000000000000_not-a-real-token-but-long-enough',
      WSMON_INSECURE: '1',
      WSMON_AGENT_DATA_DIR: join(dir, 'data'),
      WSMON_AGENT_HTTP_HOST: '127.0.0.1',
      WSMON_AGENT_HTTP_PORT: String(httpPort),
    });
    await process.waitFor(/serving \/healthz/);
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(503);
    expect(await process.stop()).toBe(0);
    expect(process.output()).toMatch(/stopped/);
  });
});

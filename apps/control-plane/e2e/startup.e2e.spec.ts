import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  newAdminKey,
  newSecretKey,
  restClient,
  runControlPlaneToExit,
  startControlPlane,
} from './support/control-plane-process';

describe('control plane start-up', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wsmon-startup-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a bad environment with one clear line per variable, echoing no credential', async () => {
    const { code, output } = await runControlPlaneToExit({
      WSMON_HTTP_PORT: 'eighty',
      WSMON_GRPC_PORT: '70000',
      DATABASE_URL: 'mysql://root:hunter2-db-password@db/wsmon',
      WSMON_SECRET_KEY: 'too-short',
      WSMON_ADMIN_KEY: 'short',
    });
    expect(code).toBe(2);
    expect(output).toContain('invalid environment');
    expect(output).toMatch(/WSMON_HTTP_PORT: .*\(got "eighty"\)/);
    expect(output).toMatch(/WSMON_GRPC_PORT: must be at most 65535/);
    expect(output).toMatch(/DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(output).toMatch(/WSMON_SECRET_KEY: must be 32 bytes/);
    expect(output).toMatch(/WSMON_ADMIN_KEY: must be at least 24 characters/);
    expect(output).not.toContain('hunter2-db-password');
    expect(output).not.toContain('too-short');
  });

  it('requires a secret key with an external database (every replica must share it)', async () => {
    const { code, output } = await runControlPlaneToExit({ DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    expect(code).toBe(2);
    expect(output).toMatch(/WSMON_SECRET_KEY: is required with DATABASE_URL/);
  });

  it('prints a generated admin key once, on the first start of an empty database', async () => {
    const first = await startControlPlane({ WSMON_DATA_DIR: dataDir });
    const key = /admin API key \(shown once, keep it\): (\S+)/.exec(first.output())?.[1];
    expect(key).toMatch(/^wsk_/);
    expect((await restClient(first.httpUrl, key)('GET', '/api-keys')).status).toBe(200);
    expect(await first.stop()).toBe(0);

    const second = await startControlPlane({ WSMON_DATA_DIR: dataDir });
    expect(second.output()).not.toContain('admin API key');
    expect((await restClient(second.httpUrl, key)('GET', '/tests')).status).toBe(200);
    expect(await second.stop()).toBe(0);
  }, 120_000);

  it('migrates an empty database once when replicas start together', async () => {
    const pg = await startTestPostgres();
    try {
      const env = { DATABASE_URL: await pg.createDatabase('replicas'), WSMON_SECRET_KEY: newSecretKey() };
      const replicas = await Promise.all([
        startControlPlane(env),
        startControlPlane(env),
        startControlPlane(env),
      ]);
      for (const replica of replicas) {
        expect(replica.output()).not.toMatch(/Migration .* failed|already exists/);
        expect(await replica.stop()).toBe(0);
      }
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it('runs an agent for the location local in the embedded setup, which probes the demo test', async () => {
    const ownDir = await mkdtemp(join(tmpdir(), 'wsmon-local-agent-'));
    const adminKey = newAdminKey();
    const cp = await startControlPlane({
      WSMON_DATA_DIR: ownDir,
      WSMON_ADMIN_KEY: adminKey,
      WSMON_LOCAL_AGENT: '1',
      WSMON_AGENT_HTTP_PORT: String(await freePort()),
    });
    try {
      const api = restClient(cp.httpUrl, adminKey);
      // The demo test is made right after the API starts answering: look for it, bounded.
      type Listed = { id: string; name: string; locations: string[] };
      let demo: Listed | undefined;
      for (let i = 0; i < 100 && !demo; i++) {
        const tests = await api<{ items: Listed[] }>('GET', '/tests');
        demo = tests.body.items.find((t) => t.name === 'demo: control plane echo');
        if (!demo) await new Promise((r) => setTimeout(r, 100));
      }
      expect(demo?.locations).toEqual(['local']);
      // Its schedule is every 30 s; an on-demand run shows the agent at work without waiting for a slot.
      type Run = { locations: { location: string; status: string; result: { success: boolean } | null }[] };
      let done: Run | undefined;
      // Until the agent has connected the location has none (no_agent); bounded.
      for (let attempt = 0; attempt < 50; attempt++) {
        const run = await api<{ id: string }>('POST', `/tests/${demo!.id}/runs`);
        expect(run.status).toBe(202);
        done = (await api<Run>('GET', `/runs/${run.body.id}?wait_s=20`)).body;
        if (done.locations[0]?.status !== 'no_agent') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(done?.locations).toEqual([
        expect.objectContaining({
          location: 'local',
          status: 'completed',
          result: expect.objectContaining({ success: true }),
        }),
      ]);
      const agents = await api<{ status: string; location: { name: string } }[]>('GET', '/agents');
      expect(agents.body).toEqual([
        expect.objectContaining({
          status: 'connected',
          location: expect.objectContaining({ name: 'local' }),
        }),
      ]);
    } finally {
      // The agent stops first and drains; the control plane then exits cleanly.
      expect(await cp.stop(), cp.output()).toBe(0);
      expect(cp.output()).toMatch(/local agent started/);
      await rm(ownDir, { recursive: true, force: true });
    }
  }, 120_000);
});

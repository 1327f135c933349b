import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restClient, runControlPlaneToExit, startControlPlane } from './support/control-plane-process';

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
});

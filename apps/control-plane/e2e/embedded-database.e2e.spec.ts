import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newAdminKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';

/** The embedded default: no DATABASE_URL, PGlite in a data directory, the same migrations. */
describe('the control plane on its embedded database', () => {
  let dataDir: string;
  let cp: ControlPlaneProcess | undefined;
  const adminKey = newAdminKey();
  const start = async () =>
    (cp = await startControlPlane({ WSMON_DATA_DIR: dataDir, WSMON_ADMIN_KEY: adminKey }));

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wsmon-embedded-'));
  });

  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts with no database server, runs the migrations and serves the API', async () => {
    const running = await start();
    expect(running.output()).toMatch(/embedded PostgreSQL 1[5-9]\./);
    const admin = restClient(running.httpUrl, adminKey);
    expect((await admin('POST', '/locations', { name: 'laptop' })).status).toBe(201);
    const test = await admin('POST', '/tests', {
      name: 'local echo',
      probe: { url: 'ws://127.0.0.1:9/echo' },
      schedule: { interval_s: 10 },
      locations: ['laptop'],
    });
    expect(test.status).toBe(201);
    expect((await admin('POST', '/secrets', { name: 'TOKEN', value: 'embedded-secret-77' })).status).toBe(
      201,
    );
  }, 120_000);

  it('keeps the data and its generated secret key across a clean restart', async () => {
    expect(await cp!.stop()).toBe(0);
    const running = await start();
    const admin = restClient(running.httpUrl, adminKey);
    expect(
      (await admin<{ items: { name: string }[] }>('GET', '/tests')).body.items.map((t) => t.name),
    ).toEqual(['local echo']);
    // The secret key kept in the data directory still opens what was sealed before the restart.
    expect((await admin('PUT', '/secrets/TOKEN', { value: 'rotated' })).status).toBe(200);
  }, 120_000);

  it('keeps a write it acknowledged when killed with SIGKILL', async () => {
    const admin = restClient(cp!.httpUrl, adminKey);
    const created = await admin('POST', '/locations', { name: 'after-kill' });
    expect(created.status).toBe(201);
    await cp!.kill();
    const running = await start();
    const location = await restClient(running.httpUrl, adminKey)('GET', '/locations/after-kill');
    expect(location.status).toBe(200);
  }, 120_000);
});

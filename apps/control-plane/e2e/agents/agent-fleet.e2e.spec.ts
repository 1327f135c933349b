import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { startTargetZoo, startTestPostgres, type TargetZoo, type TestPostgres } from '@wsmon/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentClient, openAgentStream } from '../support/agent-client';
import { startAgent, type AgentProcess } from '../support/agent-process';
import {
  freePort,
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from '../support/control-plane-process';

const HEARTBEAT_MS = 1000;
const GRACE_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  test_id: string;
  location: string;
  agent_id: string;
  slot: number;
}

/**
 * Real agents (built, as child processes) in two locations, a real control plane (restarted, and
 * replicated) on a real PostgreSQL, real WebSocket targets: the failures the product promises to
 * survive, each counted in the stored results.
 */
describe('agents, control plane and PostgreSQL together', () => {
  let pg: TestPostgres;
  let zoo: TargetZoo;
  let databaseUrl: string;
  let cp: ControlPlaneProcess;
  let db: Client;
  let admin: ReturnType<typeof restClient>;
  const adminKey = newAdminKey();
  const secretKey = newSecretKey();
  let ports: { http: number; grpc: number };
  const tokens = new Map<string, string>();
  const agents = new Map<string, AgentProcess>();
  const testIds: string[] = [];
  let workDir: string;

  const controlPlaneEnv = () => ({
    DATABASE_URL: databaseUrl,
    WSMON_ADMIN_KEY: adminKey,
    WSMON_SECRET_KEY: secretKey,
    WSMON_AGENT_HEARTBEAT_MS: String(HEARTBEAT_MS),
    WSMON_AGENT_GRACE_MS: String(GRACE_MS),
  });
  const launch = async (name: string, location: string) => {
    const agent = await startAgent({
      controlPlane: `127.0.0.1:${ports.grpc}`,
      token: tokens.get(location)!,
      dataDir: join(workDir, name),
    });
    agents.set(name, agent);
    return agent;
  };
  /** Stored scheduled results of the fleet's tests with slots in [fromMs, toMs). */
  const rows = async (fromMs: number, toMs: number): Promise<Row[]> => {
    const { rows } = await db.query<Row>(
      `SELECT r.test_id, l.name AS location, r.agent_id, (extract(epoch FROM r.slot_time) * 1000)::bigint AS slot
         FROM results r JOIN locations l ON l.id = r.location_id
        WHERE r.test_id = ANY($1::uuid[]) AND r.slot_time >= $2 AND r.slot_time < $3`,
      [testIds, new Date(fromMs), new Date(toMs)],
    );
    return rows.map((r) => ({ ...r, slot: Number(r.slot) }));
  };
  /** Every test ran in every location in every second of the window: no slot missing. */
  const expectEverySlot = (
    found: Row[],
    fromMs: number,
    toMs: number,
    /** Slots a restarting agent was not running for (it never runs missed slots late). */
    down?: { location: string; fromMs: number; toMs: number },
  ) => {
    const seconds = Math.floor((toMs - fromMs) / 1000);
    expect(seconds).toBeGreaterThan(0);
    for (const testId of testIds) {
      for (const location of ['fleet-a', 'fleet-b']) {
        const mine = found.filter((r) => r.test_id === testId && r.location === location);
        const slots = new Set(mine.map((r) => r.slot));
        const excused = (t: number) => down?.location === location && t >= down.fromMs && t < down.toMs;
        const missing = Array.from({ length: seconds }, (_, i) => fromMs + i * 1000).filter(
          (t) => !slots.has(t) && !excused(t),
        );
        const near = mine
          .filter((r) => missing.some((t) => Math.abs(r.slot - t) <= 3000))
          .map((r) => `${new Date(r.slot).toISOString()} ${r.agent_id.slice(0, 8)}`);
        expect(
          missing.map((t) => new Date(t).toISOString()),
          `${location} ${testId}: slots missing of ${seconds} s: ${missing.map((t) => new Date(t).toISOString()).join(', ')}; near: ${near.join('; ')}`,
        ).toEqual([]);
      }
    }
  };
  const second = (ms: number) => Math.ceil(ms / 1000) * 1000;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wsmon-fleet-'));
    [pg, zoo] = await Promise.all([startTestPostgres(), startTargetZoo()]);
    databaseUrl = await pg.createDatabase('fleet');
    ports = { http: await freePort(), grpc: await freePort() };
    cp = await startControlPlane(controlPlaneEnv(), 60_000, ports);
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    admin = restClient(cp.httpUrl, adminKey);
    for (const location of ['fleet-a', 'fleet-b']) {
      expect((await admin('POST', '/locations', { name: location })).status).toBe(201);
      tokens.set(
        location,
        (await admin<{ secret: string }>('POST', `/locations/${location}/tokens`, {})).body.secret,
      );
    }
    for (let i = 0; i < 6; i++) {
      const created = await admin<{ id: string }>('POST', '/tests', {
        name: `fleet ${i}`,
        probe: {
          url: zoo.url('/echo'),
          interpretation: 'round_trip_latency',
          ping_mode: 'message',
          send_message: `m${i}`,
          expect_message: `m${i}`,
        },
        schedule: { interval_s: 1 },
        locations: ['fleet-a', 'fleet-b'],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      testIds.push(created.body.id);
    }
    await Promise.all(
      [
        ['a1', 'fleet-a'],
        ['a2', 'fleet-a'],
        ['b1', 'fleet-b'],
        ['b2', 'fleet-b'],
      ].map(async ([name, location]) => (await launch(name!, location!)).waitFor(/configured: \d+ tests/)),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.kill()));
    await db?.end();
    await cp?.stop();
    await Promise.all([pg?.stop(), zoo?.close()]);
    await rm(workDir, { recursive: true, force: true });
  });

  it('runs every test once per tick in each location, each by one agent of the location', async () => {
    // Let joins settle, then watch a window of whole seconds.
    await sleep(3000);
    const from = second(Date.now());
    await sleep(5000);
    const to = second(Date.now()) - 1000;
    await sleep(2000); // results of the window's last slots arrive
    const found = await rows(from, to);
    expectEverySlot(found, from, to);
    for (const testId of testIds) {
      for (const location of ['fleet-a', 'fleet-b']) {
        const runners = new Set(
          found.filter((r) => r.test_id === testId && r.location === location).map((r) => r.agent_id),
        );
        expect(runners.size, `${location} ${testId} ran on one agent`).toBe(1);
      }
    }
    // Both agents of a location have work: the location's tests are split.
    const aRunners = new Set(found.filter((r) => r.location === 'fleet-a').map((r) => r.agent_id));
    expect(aRunners.size).toBe(2);
  }, 30_000);

  it('moves the tests of an agent killed with SIGKILL to its sibling after the grace period', async () => {
    const victim = agents.get('a1')!;
    const killedAt = Date.now();
    await victim.kill();
    agents.delete('a1');
    // Grace period, then one heartbeat for the assignment to move and one tick to run.
    await sleep(GRACE_MS + 8000);
    const from = second(killedAt + GRACE_MS + 3000);
    const to = second(Date.now()) - 1000;
    await sleep(1500);
    const after = await rows(from, to);
    const fleetA = after.filter((r) => r.location === 'fleet-a');
    expect(new Set(fleetA.map((r) => r.agent_id)).size, 'one agent left in fleet-a').toBe(1);
    const seconds = (to - from) / 1000;
    for (const testId of testIds) {
      expect(new Set(fleetA.filter((r) => r.test_id === testId).map((r) => r.slot)).size, testId).toBe(
        seconds,
      );
    }
    // Bring the location back to two agents (a new one: a1's data directory is reused, as a restart would).
    await (await launch('a1', 'fleet-a')).waitFor(/configured: \d+ tests/);
  }, 60_000);

  it('keeps probing through a control-plane outage, restarts an agent meanwhile, and delivers every result exactly once', async () => {
    await sleep(2000);
    const from = second(Date.now());
    await cp.stop();
    const stoppedAt = Date.now();
    // An agent restarted while the control plane is down probes from the configuration it keeps.
    const b2 = agents.get('b2')!;
    const b2StoppedAt = Date.now();
    expect(await b2.stop()).toBe(0);
    const restarted = await launch('b2', 'fleet-b');
    // It runs its kept configuration from the moment it says so (a loaded machine starts it slowly).
    await restarted.waitFor(/kept configuration: \d+ tests/);
    const b2StartedAt = Date.now();
    await sleep(6000);
    expect(restarted.output()).not.toMatch(/configured: \d+ tests at revision/);
    const cpStartedAt = Date.now();
    cp = await startControlPlane(controlPlaneEnv(), 60_000, ports);
    admin = restClient(cp.httpUrl, adminKey);
    expect(Date.now() - stoppedAt).toBeGreaterThan(5000);
    await restarted.waitFor(/configured: \d+ tests/, 30_000);
    await sleep(4000);
    const to = second(Date.now()) - 2000;
    // Spooled results drain: wait until the window is complete or the bound passes (30 s: a loaded
    // machine replays the spools slowly).
    let found: Row[] = [];
    for (let i = 0; i < 60; i++) {
      found = await rows(from, to);
      if (found.length >= ((to - from) / 1000) * testIds.length * 2) break;
      await sleep(500);
    }
    // b2 runs nothing while it restarts (a restart never runs missed slots late); every other slot of
    // the window is stored, among them b2's slots from its kept configuration while the control plane was down.
    expectEverySlot(found, from, to, {
      location: 'fleet-b',
      fromMs: b2StoppedAt - 1000,
      toMs: b2StartedAt + 2000,
    });
    expect(b2StartedAt + 3000).toBeLessThan(cpStartedAt);
  }, 120_000);

  it('reaches an agent connected to another control-plane replica with a change made on this one', async () => {
    expect((await admin('POST', '/locations', { name: 'fleet-c' })).status).toBe(201);
    const token = (await admin<{ secret: string }>('POST', '/locations/fleet-c/tokens', {})).body.secret;
    const replica = await startControlPlane(controlPlaneEnv());
    const client = agentClient(replica.grpcAddress);
    try {
      const scripted = openAgentStream(client, token, { capabilities: ['config.delta'] });
      await scripted.next('end_of_snapshot');
      const created = await admin<{ id: string }>('POST', '/tests', {
        name: 'made on the first replica',
        probe: { url: zoo.url('/echo') },
        schedule: { interval_s: 60 },
        locations: ['fleet-c'],
      });
      expect(created.status).toBe(201);
      const update = await scripted.next('config_update', 5000);
      expect(update.upserts.map((u) => u.test_id)).toEqual([created.body.id]);
      scripted.close();
      expect((await scripted.ended).code).toBe(status.OK);
    } finally {
      client.close();
      await replica.stop();
    }
  }, 60_000);
});

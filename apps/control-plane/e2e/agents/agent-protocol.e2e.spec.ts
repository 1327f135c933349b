import { randomUUID } from 'node:crypto';
import { Client as GrpcClient, credentials, Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { ConnectRequest, type AgentServiceClient } from '@wsmon/proto';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentClient, openAgentStream, scheduledResult, type ScriptedAgent } from '../support/agent-client';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from '../support/control-plane-process';

/**
 * The control plane's side of agent.proto, driven message by message by scripted agents over real
 * gRPC, against a real PostgreSQL: authentication, synchronisation, results and their
 * acknowledgements, and every way a stream can break the rules without touching another stream.
 */
describe('AgentService.Connect', () => {
  let pg: TestPostgres;
  let cp: ControlPlaneProcess;
  let db: Client;
  let client: AgentServiceClient;
  let admin: ReturnType<typeof restClient>;
  const open: ScriptedAgent[] = [];
  let token: string;
  const testIds: string[] = [];

  const stream = (hello?: Parameters<typeof openAgentStream>[2], as = token) => {
    const agent = openAgentStream(client, as, hello);
    open.push(agent);
    return agent;
  };
  const createTest = async (name: string, location = 'proto-a', probe: object = {}) => {
    const created = await admin<{ id: string; revision: number }>('POST', '/tests', {
      name,
      probe: { url: 'ws://127.0.0.1:9/never', ...probe },
      schedule: { interval_s: 60 },
      locations: [location],
    });
    expect(created.status).toBe(201);
    return created.body;
  };
  const mintToken = async (location: string, body: object = {}) => {
    const created = await admin<{ secret: string; token: { id: string } }>(
      'POST',
      `/locations/${location}/tokens`,
      body,
    );
    expect(created.status).toBe(201);
    return created.body;
  };
  /** A location of its own per test: another test's agent in its grace period would hold tests. */
  const freshLocation = async (testCount: number) => {
    const name = `loc-${randomUUID().slice(0, 8)}`;
    expect((await admin('POST', '/locations', { name, kind: 'private' })).status).toBe(201);
    const tests = [];
    for (let i = 0; i < testCount; i++) tests.push((await createTest(`${name} ${i}`, name)).id);
    return { name, token: (await mintToken(name)).secret, tests };
  };
  const stored = async (testId: string): Promise<number> => {
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM results WHERE test_id = $1', [
      testId,
    ]);
    return Number(rows[0]!.n);
  };

  beforeAll(async () => {
    pg = await startTestPostgres();
    const databaseUrl = await pg.createDatabase('agent_protocol');
    const adminKey = newAdminKey();
    cp = await startControlPlane({
      DATABASE_URL: databaseUrl,
      WSMON_ADMIN_KEY: adminKey,
      WSMON_SECRET_KEY: newSecretKey(),
      WSMON_AGENT_HEARTBEAT_MS: '1000',
      WSMON_AGENT_GRACE_MS: '1000',
    });
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    admin = restClient(cp.httpUrl, adminKey);
    client = agentClient(cp.grpcAddress);
    for (const name of ['proto-a', 'proto-b']) {
      expect((await admin('POST', '/locations', { name, kind: 'private' })).status).toBe(201);
    }
    token = (await mintToken('proto-a')).secret;
    expect((await admin('POST', '/secrets', { name: 'CHAT_TOKEN', value: 's3cr3t-value' })).status).toBe(201);
    testIds.push((await createTest('plain')).id);
    testIds.push(
      (
        await createTest('with secret', 'proto-a', {
          headers: { Authorization: 'Bearer {{ secrets.CHAT_TOKEN }}' },
        })
      ).id,
    );
    testIds.push((await createTest('elsewhere', 'proto-b')).id);
  }, 120_000);

  afterAll(async () => {
    open.forEach((agent) => agent.cancel());
    client?.close();
    await db?.end();
    await cp?.stop();
    await pg?.stop();
  });

  it('refuses a missing, malformed or unknown token with UNAUTHENTICATED and sends nothing', async () => {
    for (const bad of [undefined, 'nonsense', `wsa_000000000000_${'A'.repeat(43)}`]) {
      const agent = openAgentStream(client, bad);
      open.push(agent);
      expect((await agent.ended).code).toBe(status.UNAUTHENTICATED);
      expect(agent.received).toEqual([]);
    }
  });

  it('refuses revoked and expired tokens, and ends the open stream of a token revoked meanwhile', async () => {
    // Another location than the next tests': this agent's grace period must not hold their tests.
    const revoked = await mintToken('proto-b');
    const live = stream({ capabilities: [] }, revoked.secret);
    await live.next('end_of_snapshot');
    expect((await admin('DELETE', `/agent-tokens/${revoked.token.id}`)).status).toBe(200);
    expect((await live.ended).code).toBe(status.UNAUTHENTICATED);
    const again = stream(undefined, revoked.secret);
    expect((await again.ended).code).toBe(status.UNAUTHENTICATED);
    expect(again.received).toEqual([]);

    const expiring = await mintToken('proto-b', { expires_at: new Date(Date.now() + 1500).toISOString() });
    await new Promise((r) => setTimeout(r, 1700));
    const late = stream(undefined, expiring.secret);
    expect((await late.ended).code).toBe(status.UNAUTHENTICATED);
    expect(late.received).toEqual([]);
  });

  it('welcomes, then sends a snapshot of the location’s tests with secrets resolved, closed by EndOfSnapshot', async () => {
    const agent = stream({ capabilities: ['run.now'] });
    const welcome = await agent.next('welcome');
    expect(welcome.location).toBe('proto-a');
    // proto-a has no other agent at this point: its first test ran earlier only with refused tokens.
    expect(welcome.capabilities).toEqual(['run.now']);
    expect(welcome.heartbeat_interval_ms).toBe(1000);
    const update = await agent.next('config_update');
    expect(update.snapshot).toBe(true);
    const ids = update.upserts.map((u) => u.test_id).sort();
    expect(ids).toEqual([testIds[0], testIds[1]].sort());
    const withSecret = update.upserts.find((u) => u.test_id === testIds[1])!;
    expect((withSecret.probe as { headers: Record<string, string> }).headers.Authorization).toBe(
      'Bearer s3cr3t-value',
    );
    const end = await agent.next('end_of_snapshot');
    expect(end.revision).toBe(update.revision);
    agent.send({ config_ack: { revision: end.revision, rejected_tests: [] } });
    agent.close();
    expect((await agent.ended).code).toBe(status.OK);
  });

  it('answers an up-to-date agent with a bare EndOfSnapshot, and a stale one with a delta', async () => {
    const location = await freshLocation(2);
    const agentId = randomUUID();
    const first = stream({ agent_id: agentId }, location.token);
    const snapshot = await first.next('config_update');
    expect(snapshot.upserts).toHaveLength(2);
    const held = Object.fromEntries(snapshot.upserts.map((u) => [u.test_id, u.revision]));
    first.close();
    await first.ended;

    // The same agent coming back (its own grace period does not matter).
    const upToDate = stream(
      { agent_id: agentId, test_revisions: held, config_revision: snapshot.revision },
      location.token,
    );
    await upToDate.next('welcome');
    const end = await upToDate.next('end_of_snapshot');
    expect(end.revision).toBeGreaterThanOrEqual(snapshot.revision);
    expect(upToDate.received.filter((m) => m.config_update)).toEqual([]);
    // A bare EndOfSnapshot is acknowledged like any synchronisation.
    upToDate.send({ config_ack: { revision: end.revision, rejected_tests: [] } });
    upToDate.close();
    expect((await upToDate.ended).code).toBe(status.OK);

    const gone = randomUUID();
    const stale = stream(
      { agent_id: agentId, test_revisions: { ...held, [location.tests[0]!]: 1, [gone]: 5 } },
      location.token,
    );
    const delta = await stale.next('config_update');
    expect(delta.snapshot).toBe(false);
    expect(delta.upserts.map((u) => u.test_id)).toEqual([location.tests[0]]);
    expect(delta.removed_test_ids).toEqual([gone]);
    await stale.next('end_of_snapshot');
    stale.close();
    await stale.ended;
  });

  it('pushes a change made through the API to the agent, with a greater revision', async () => {
    const location = await freshLocation(1);
    const agent = stream(undefined, location.token);
    const snapshot = await agent.next('config_update');
    const end = await agent.next('end_of_snapshot');
    agent.send({ config_ack: { revision: end.revision, rejected_tests: [] } });
    const created = await createTest('added later', location.name);
    const update = await agent.next('config_update', 5000);
    expect(update.revision).toBeGreaterThan(snapshot.revision);
    expect(update.upserts.map((u) => u.test_id)).toEqual([created.id]);
    agent.send({ config_ack: { revision: update.revision, rejected_tests: [] } });
    expect((await admin('DELETE', `/tests/${created.id}`)).status).toBe(204);
    const removal = await agent.next('config_update', 5000);
    expect(removal.removed_test_ids).toEqual([created.id]);
    expect(removal.revision).toBeGreaterThan(update.revision);
    agent.close();
    expect((await agent.ended).code).toBe(status.OK);
  });

  it('acknowledges results after they are stored, and never stores a replayed slot twice', async () => {
    const agentId = randomUUID();
    const slot = new Date(Date.UTC(2026, 10, 21, 8, 0, 0));
    const batch = [1, 2, 3].map((i) =>
      scheduledResult(testIds[0]!, i, new Date(slot.getTime() + i * 60_000)),
    );
    const before = await stored(testIds[0]!);
    const first = stream({ agent_id: agentId });
    first.send({ result_batch: { results: batch } });
    expect((await first.next('result_ack')).up_to_sequence).toBe(3);
    expect(await stored(testIds[0]!)).toBe(before + 3);
    first.cancel();
    await first.ended;

    // After a reconnect the agent sends what it holds again, and a result of another id for one slot.
    const second = stream({ agent_id: agentId });
    const replay = [
      ...batch,
      { ...scheduledResult(testIds[0]!, 4, batch[0]!.slot_time!), result_id: randomUUID() },
    ];
    second.send({ result_batch: { results: replay } });
    expect((await second.next('result_ack')).up_to_sequence).toBe(4);
    expect(await stored(testIds[0]!)).toBe(before + 3);
    second.close();
    await second.ended;
  });

  it('takes a flood of results in many batches, loses none and acknowledges all', async () => {
    const agent = stream();
    const base = Date.UTC(2026, 10, 20, 0, 0, 0);
    const batches = 20;
    const perBatch = 1000;
    for (let b = 0; b < batches; b++) {
      agent.send({
        result_batch: {
          results: Array.from({ length: perBatch }, (_, i) => {
            const n = b * perBatch + i + 1;
            return scheduledResult(testIds[1]!, n, new Date(base + n * 1000));
          }),
        },
      });
    }
    let acked = 0;
    while (acked < batches * perBatch) acked = (await agent.next('result_ack', 30_000)).up_to_sequence;
    expect(acked).toBe(batches * perBatch);
    expect(await stored(testIds[1]!)).toBe(batches * perBatch);
    agent.close();
    await agent.ended;
  }, 60_000);

  it('splits a location’s tests between its agents and gives a lost agent’s tests to the other after the grace period', async () => {
    const location = await freshLocation(12);
    const all = [...location.tests].sort();
    const a = stream({ capabilities: [] }, location.token);
    const aSnapshot = await a.next('config_update');
    expect(aSnapshot.upserts.map((u) => u.test_id).sort()).toEqual(all);
    await a.next('end_of_snapshot');
    const b = stream({ capabilities: [] }, location.token);
    const bSnapshot = await b.next('config_update');
    await b.next('end_of_snapshot');
    const bHolds = bSnapshot.upserts.map((u) => u.test_id);
    // The other agent gives up exactly what the new one took.
    const removal = await a.next('config_update', 5000);
    expect(removal.removed_test_ids.sort()).toEqual([...bHolds].sort());
    expect(bHolds.length).toBeGreaterThan(0);
    expect(bHolds.length).toBeLessThan(all.length);

    b.cancel();
    const takeover = await a.next('config_update', 10_000);
    expect(takeover.upserts.map((u) => u.test_id).sort()).toEqual([...bHolds].sort());
    a.close();
    await a.ended;
  }, 30_000);

  it('pushes an on-demand run to one agent per location and shows each location’s result', async () => {
    const withAgent = await freshLocation(1);
    const without = await freshLocation(0);
    const created = await admin<{ id: string }>('POST', '/tests', {
      name: 'on demand',
      probe: { url: 'ws://127.0.0.1:9/run' },
      schedule: { interval_s: 3600 },
      enabled: false,
      locations: [withAgent.name, without.name],
    });
    expect(created.status).toBe(201);
    const agent = stream({ capabilities: ['run.now'] }, withAgent.token);
    await agent.next('end_of_snapshot');
    const run = await admin<{ id: string; locations: { location: string; status: string }[] }>(
      'POST',
      `/tests/${created.body.id}/runs`,
    );
    expect(run.status).toBe(202);
    const runNow = await agent.next('run_now', 5000);
    expect(runNow.run_id).toBe(run.body.id);
    // A paused test runs on demand all the same, carried whole.
    expect(runNow.test?.test_id).toBe(created.body.id);
    expect(runNow.test?.probe).toMatchObject({ url: 'ws://127.0.0.1:9/run' });
    agent.send({
      result_batch: {
        results: [
          {
            ...scheduledResult(created.body.id, 1, new Date()),
            run_id: run.body.id,
            success: false,
            reason: 'connection_refused',
          },
        ],
      },
    });
    await agent.next('result_ack');
    const finished = await admin<{
      done: boolean;
      locations: { location: string; status: string; result?: { success: boolean } | null }[];
    }>('GET', `/runs/${run.body.id}?wait_s=10`);
    expect(finished.body.done).toBe(true);
    const byLocation = new Map(finished.body.locations.map((l) => [l.location, l]));
    expect(byLocation.get(withAgent.name)?.status).toBe('completed');
    expect(byLocation.get(without.name)?.status).toBe('no_agent');
    agent.close();
    await agent.ended;
  });

  it('drains an agent on request: a Drain to it, its tests to its sibling at once, and the API shows it', async () => {
    const location = await freshLocation(6);
    const draining = stream({ capabilities: ['drain'] }, location.token);
    await draining.next('end_of_snapshot');
    const sibling = stream({ capabilities: [] }, location.token);
    const siblingSnapshot = await sibling.next('config_update');
    await sibling.next('end_of_snapshot');
    const siblingHeld = new Set(siblingSnapshot.upserts.map((u) => u.test_id));

    const placement = await admin<{ locations: { agent_id: string | null; running: boolean }[] }>(
      'GET',
      `/tests/${location.tests[0]}/placement`,
    );
    expect(placement.body.locations).toEqual([
      expect.objectContaining({ agent_id: expect.stringMatching(/./), running: true }),
    ]);
    const before = await admin<{ test_ids: string[] }>('GET', `/agents/${draining.agentId}`);
    expect(before.body.test_ids.length + siblingHeld.size).toBe(6);

    expect((await admin('POST', `/agents/${draining.agentId}/drain`)).status).toBe(202);
    const drain = await draining.next('drain', 5000);
    expect(drain.grace_period_ms).toBeGreaterThan(0);
    // The sibling takes the drained agent's tests without waiting for the grace period.
    while (siblingHeld.size < 6) {
      for (const u of (await sibling.next('config_update', 5000)).upserts) siblingHeld.add(u.test_id);
    }
    draining.send({ drain_done: {} });
    draining.close();
    expect((await draining.ended).code).toBe(status.OK);
    const after = await admin<{ status: string }>('GET', `/agents/${draining.agentId}`);
    expect(after.body.status).toBe('drained');
    expect((await admin('POST', `/agents/${draining.agentId}/drain`)).status).toBe(409);
    sibling.close();
    await sibling.ended;
  });

  it('shows each location’s capacity from its agents’ heartbeats, and flags an under-provisioned one', async () => {
    const location = await freshLocation(0);
    const capacity = () =>
      admin<{ agents_connected: number; free_slots: number; under_provisioned: boolean }>(
        'GET',
        `/locations/${location.name}/capacity`,
      );
    expect((await capacity()).body).toMatchObject({ agents_connected: 0, under_provisioned: false });
    const saturated = stream({ capabilities: [] }, location.token);
    await saturated.next('end_of_snapshot');
    saturated.heartbeat = { free_slots: 0, in_flight: 50, spool_depth: 3, spool_dropped_total: 0 };
    saturated.send({ heartbeat: saturated.heartbeat });
    let seen = (await capacity()).body;
    for (let i = 0; i < 50 && !seen.under_provisioned; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = (await capacity()).body;
    }
    expect(seen).toMatchObject({ agents_connected: 1, free_slots: 0, under_provisioned: true });
    const agent = await admin<{ free_slots: number; in_flight: number; spool_depth: number }>(
      'GET',
      `/agents/${saturated.agentId}`,
    );
    expect(agent.body).toMatchObject({ free_slots: 0, in_flight: 50, spool_depth: 3 });
    saturated.close();
    await saturated.ended;
  });

  it('shows a location without an agent as not running the test', async () => {
    const empty = await freshLocation(1);
    const placement = await admin<{
      locations: { location: string; agent_id: string | null; running: boolean }[];
    }>('GET', `/tests/${empty.tests[0]}/placement`);
    expect(placement.body.locations).toEqual([
      expect.objectContaining({ location: empty.name, agent_id: null, running: false }),
    ]);
    expect((await admin('GET', '/tests/not-a-test/placement')).status).toBe(404);
  });

  it('replaces an agent’s older stream with its newer one (ABORTED)', async () => {
    const agentId = randomUUID();
    const older = stream({ agent_id: agentId });
    await older.next('end_of_snapshot');
    const newer = stream({ agent_id: agentId });
    await newer.next('end_of_snapshot');
    expect((await older.ended).code).toBe(status.ABORTED);
    newer.close();
    expect((await newer.ended).code).toBe(status.OK);
  });

  describe('ends a stream that breaks the rules, and only that stream', () => {
    let bystander: ScriptedAgent;

    beforeAll(async () => {
      bystander = stream({ capabilities: [] });
      await bystander.next('end_of_snapshot');
    });

    afterAll(async () => {
      // The well-behaved stream saw none of it: still open, still updated.
      const created = await createTest('after the bad streams');
      // The bad streams' agents are in their grace period for a moment and may hold it until then;
      // `next` fails the suite if no update brings it within its timeout.
      const held = new Set<string>();
      while (!held.has(created.id)) {
        for (const u of (await bystander.next('config_update', 5000)).upserts) held.add(u.test_id);
      }
      bystander.close();
      expect((await bystander.ended).code).toBe(status.OK);
    });

    const expectEnded = async (agent: ScriptedAgent, code: status, details: RegExp) => {
      const ended = await agent.ended;
      expect(status[ended.code]).toBe(status[code]);
      expect(ended.details).toMatch(details);
    };

    it('anything before the Hello: FAILED_PRECONDITION', async () => {
      const agent = stream(null);
      agent.send({ heartbeat: { free_slots: 1, in_flight: 0, spool_depth: 0, spool_dropped_total: 0 } });
      await expectEnded(agent, status.FAILED_PRECONDITION, /first message must be a Hello/);
    });

    it('a second Hello: FAILED_PRECONDITION', async () => {
      const agent = stream();
      agent.send({
        hello: {
          agent_id: 'x',
          hostname: '',
          version: '',
          capabilities: [],
          config_revision: 0,
          test_revisions: {},
        },
      });
      await expectEnded(agent, status.FAILED_PRECONDITION, /second Hello/);
    });

    it('a Hello without agent_id: INVALID_ARGUMENT naming the field', async () => {
      await expectEnded(stream({ agent_id: '' }), status.INVALID_ARGUMENT, /Hello\.agent_id/);
    });

    it('a message with no kind: INVALID_ARGUMENT', async () => {
      const agent = stream();
      agent.send({});
      await expectEnded(agent, status.INVALID_ARGUMENT, /no kind/);
    });

    it('a ConfigAck of a revision never sent: FAILED_PRECONDITION', async () => {
      const agent = stream();
      await agent.next('end_of_snapshot');
      agent.send({ config_ack: { revision: 999_999, rejected_tests: [] } });
      await expectEnded(agent, status.FAILED_PRECONDITION, /ConfigAck\.revision/);
    });

    it('a result sequence that does not increase: FAILED_PRECONDITION', async () => {
      const agent = stream();
      const slot = new Date(Date.UTC(2026, 10, 19));
      agent.send({
        result_batch: {
          results: [scheduledResult(testIds[0]!, 5, slot), scheduledResult(testIds[0]!, 5, slot)],
        },
      });
      await expectEnded(agent, status.FAILED_PRECONDITION, /sequence/);
    });

    it('a result without slot_time: INVALID_ARGUMENT naming the field', async () => {
      const agent = stream();
      agent.send({
        result_batch: { results: [{ ...scheduledResult(testIds[0]!, 1, new Date()), slot_time: undefined }] },
      });
      await expectEnded(agent, status.INVALID_ARGUMENT, /results\[0\]\.slot_time/);
    });

    it('a result_json that is not a JSON object: INVALID_ARGUMENT, and no result of the batch stored', async () => {
      const agent = stream();
      const slot = new Date(Date.UTC(2026, 10, 18));
      const before = await stored(testIds[0]!);
      agent.send({
        result_batch: {
          results: [
            scheduledResult(testIds[0]!, 1, slot),
            {
              ...scheduledResult(testIds[0]!, 2, new Date(slot.getTime() + 60_000)),
              result_json: Buffer.from('[1,2'),
            },
          ],
        },
      });
      await expectEnded(agent, status.INVALID_ARGUMENT, /result_json/);
      expect(await stored(testIds[0]!)).toBe(before);
    });

    it('DrainDone without the drain capability: FAILED_PRECONDITION', async () => {
      const agent = stream({ capabilities: [] });
      await agent.next('end_of_snapshot');
      agent.send({ drain_done: {} });
      await expectEnded(agent, status.FAILED_PRECONDITION, /DrainDone/);
    });

    it('bytes that do not decode: INVALID_ARGUMENT, not INTERNAL', async () => {
      const raw = new GrpcClient(cp.grpcAddress, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      const call = raw.makeBidiStreamRequest<Buffer, Buffer>(
        '/wsmon.v1.AgentService/Connect',
        (b) => b,
        (b) => b,
        metadata,
      );
      const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => undefined);
      call.on('data', () => undefined);
      const hello = ConnectRequest.encode({
        hello: {
          agent_id: randomUUID(),
          hostname: 'raw',
          version: '0',
          capabilities: [],
          config_revision: 0,
          test_revisions: {},
        },
      }).finish();
      call.write(Buffer.from(hello));
      call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      const final = await ended;
      raw.close();
      expect(status[final.code]).toBe('INVALID_ARGUMENT');
      expect(final.details).toMatch(/cannot decode/);
    });
  });
});

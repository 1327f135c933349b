/**
 * Config propagation: the time from an API change to the acknowledgement of the agents it concerns,
 * with 500 agent streams connected to a real control plane on a real PostgreSQL. The baseline, in
 * the same run, is the same change with a single agent connected.
 *
 *   npm run bench:propagation [-- --agents 500 --changes 40]
 */
import { randomUUID } from 'node:crypto';
import { credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse } from '@wsmon/proto/agent';
import { quantile, startTestPostgres } from '@wsmon/testing';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
} from '../e2e/support/control-plane-process';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const AGENTS = arg('agents', 500);
const CHANGES = arg('changes', 40);
const LOCATIONS = 5;
const TESTS_PER_LOCATION = 1000;
const CHANNELS = 10;

/** An agent that acknowledges every revision at once and notes when each test's update arrived. */
class SimAgent {
  readonly id = randomUUID();
  /** The tests the agent holds now, with their revisions. */
  readonly seen = new Map<string, number>();
  private snapshotRevision = -1;
  private resolveSynced!: () => void;
  readonly synced = new Promise<void>((r) => (this.resolveSynced = r));
  private readonly call: ClientDuplexStream<ConnectRequest, ConnectResponse>;
  private readonly waiters = new Map<string, (atMs: number) => void>();

  constructor(client: AgentServiceClient, token: string) {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    this.call = client.connect(metadata);
    this.call.on('error', () => undefined);
    this.call.on('data', (m: ConnectResponse) => {
      if (m.config_update) {
        const at = performance.now();
        this.call.write({ config_ack: { revision: m.config_update.revision, rejected_tests: [] } });
        // A snapshot (one or more messages of one revision) replaces what the agent holds.
        if (m.config_update.snapshot && m.config_update.revision !== this.snapshotRevision) this.seen.clear();
        if (m.config_update.snapshot) this.snapshotRevision = m.config_update.revision;
        for (const id of m.config_update.removed_test_ids) this.seen.delete(id);
        for (const u of m.config_update.upserts) {
          this.seen.set(u.test_id, u.revision);
          this.waiters.get(`${u.test_id}:${u.revision}`)?.(at);
        }
      }
      if (m.end_of_snapshot) {
        this.call.write({ config_ack: { revision: m.end_of_snapshot.revision, rejected_tests: [] } });
        this.resolveSynced();
      }
      if (m.heartbeat) {
        this.call.write({
          heartbeat: { free_slots: 50, in_flight: 0, spool_depth: 0, spool_dropped_total: 0 },
        });
      }
    });
    this.call.write({
      hello: {
        agent_id: this.id,
        hostname: 'bench',
        version: '0.0.0',
        capabilities: ['config.delta'],
        config_revision: 0,
        test_revisions: {},
      },
    });
  }

  /** Resolves with the time the test arrived at this revision. */
  arrival(testId: string, revision: number): Promise<number> {
    return new Promise((resolve) => this.waiters.set(`${testId}:${revision}`, resolve));
  }

  close(): void {
    this.call.end();
  }
}

async function main(): Promise<void> {
  const pg = await startTestPostgres();
  const adminKey = newAdminKey();
  const cp = await startControlPlane({
    DATABASE_URL: await pg.createDatabase('propagation'),
    WSMON_ADMIN_KEY: adminKey,
    WSMON_SECRET_KEY: newSecretKey(),
  });
  const admin = restClient(cp.httpUrl, adminKey);
  const clients = Array.from(
    { length: CHANNELS },
    // A distinct option per client: grpc-js would otherwise share one connection between them.
    (_, i) =>
      new AgentServiceClient(cp.grpcAddress, credentials.createInsecure(), { 'wsmon.bench.channel': i }),
  );
  try {
    const tokens: string[] = [];
    const testsByLocation: string[][] = [];
    console.log(`creating ${LOCATIONS} locations with ${TESTS_PER_LOCATION} tests each…`);
    for (let l = 0; l < LOCATIONS; l++) {
      const name = `bench-${l}`;
      await admin('POST', '/locations', { name });
      tokens.push((await admin<{ secret: string }>('POST', `/locations/${name}/tokens`, {})).body.secret);
      const ids: string[] = [];
      for (let t = 0; t < TESTS_PER_LOCATION; t += 50) {
        const created = await Promise.all(
          Array.from({ length: 50 }, (_, k) =>
            admin<{ id: string }>('POST', '/tests', {
              name: `t${l}-${t + k}`,
              probe: { url: `ws://127.0.0.1:9/t${t + k}` },
              schedule: { interval_s: 60 },
              locations: [name],
            }),
          ),
        );
        ids.push(...created.map((c) => c.body.id));
      }
      testsByLocation.push(ids);
    }

    /** PATCHes tests one after another; per change, ms from sending the request to the owning agent's receipt. */
    const measureIn = async (
      agents: readonly SimAgent[],
      changes: number,
      locations: readonly number[],
    ): Promise<number[]> => {
      const latencies: number[] = [];
      for (let c = 0; c < changes; c++) {
        const location = locations[c % locations.length]!;
        const ids = testsByLocation[location]!;
        const testId = ids[(c * 7919) % ids.length]!;
        const owner = agents.find((a) => a.seen.has(testId));
        if (!owner) throw new Error(`no agent holds ${testId}`);
        const before = performance.now();
        const patched = await admin<{ revision: number }>('PATCH', `/tests/${testId}`, {
          description: `change ${c}`,
        });
        const arrivedAt = await Promise.race([
          owner.arrival(testId, patched.body.revision),
          new Promise<number>((_, reject) =>
            setTimeout(() => reject(new Error('no update within 10 s')), 10_000),
          ),
        ]);
        latencies.push(arrivedAt - before);
      }
      return latencies.sort((a, b) => a - b);
    };

    // Baseline: the same kind of change with one agent stream connected (changes in its location only).
    const single = new SimAgent(clients[0]!, tokens[0]!);
    await single.synced;
    const baseline = await measureIn([single], Math.min(CHANGES, 20), [0]);
    single.close();
    await new Promise((r) => setTimeout(r, 500));

    console.log(`connecting ${AGENTS} agents…`);
    const agents = Array.from(
      { length: AGENTS },
      (_, i) => new SimAgent(clients[i % CHANNELS]!, tokens[i % LOCATIONS]!),
    );
    await Promise.all(agents.map((a) => a.synced));
    // Joins reshuffle tests between agents for a moment: let the assignment settle.
    await new Promise((r) => setTimeout(r, 3000));
    const loaded = await measureIn(agents, CHANGES, [...Array(LOCATIONS).keys()]);

    const row = (label: string, l: readonly number[]) =>
      `${label.padEnd(28)} p50 ${quantile(l, 0.5).toFixed(1).padStart(7)} ms   p99 ${quantile(l, 0.99)
        .toFixed(1)
        .padStart(7)} ms   max ${l[l.length - 1]!.toFixed(1).padStart(7)} ms   (${l.length} changes)`;
    console.log('\nAPI request → the agent holding the test receives the update (and acknowledges at once):');
    console.log(row('1 agent stream (baseline)', baseline));
    console.log(row(`${AGENTS} agent streams`, loaded));
    console.log(
      `ratio p99 ${AGENTS} streams / 1 stream: ${(quantile(loaded, 0.99) / Math.max(0.1, quantile(baseline, 0.99))).toFixed(2)}`,
    );
    console.log(
      `goal: p99 under 1000 ms with ${AGENTS} streams: ${quantile(loaded, 0.99) < 1000 ? 'met' : 'NOT met'}`,
    );
    agents.forEach((a) => a.close());
  } finally {
    clients.forEach((c) => c.close());
    await cp.stop();
    await pg.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

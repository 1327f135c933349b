import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlertRule, WebhookNotification } from '@wsmon/contracts';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import { LocalChangeBus } from '../database/change-bus';
import { dataSourceOptions } from '../database/data-source-options';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../database/embedded-postgres';
import { LocationEntity } from '../locations/location.entity';
import { agentResult } from '../results/agent-results.spec-helper';
import { ResultEntity } from '../results/result.entity';
import { ResultsRepository } from '../results/results.repository';
import { ResultsService } from '../results/results.service';
import { RunResultEntity } from '../results/run.entity';
import { SecretCipher } from '../secrets/secret-cipher';
import { TestEntity } from '../tests/test.entity';
import { AlertsRepository } from './alerts.repository';
import { AlertsService } from './alerts.service';
import { StatusService, type Placements } from './status.service';
import { WebhookDispatcher } from './webhook-dispatcher.service';
import { DEFAULT_DELIVERY_POLICY, verifyWebhookSignature } from './webhook-signature';
import { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

const SECOND_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Short waits between attempts, so that a spec sees retries without waiting for them long. */
const POLICY = {
  ...DEFAULT_DELIVERY_POLICY,
  maxAttempts: 3,
  baseDelayMs: 20,
  maxDelayMs: 40,
  timeoutMs: 5000,
};

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A webhook receiver on 127.0.0.1: records every request; answers each path's scripted statuses, then 200. */
async function startReceiver(): Promise<{
  url: (path: string) => string;
  received: Received[];
  script: Map<string, number[]>;
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const script = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = script.get(path)?.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    script,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The services of a control-plane replica on its own connections, without timers (a spec drives them). */
async function startReplica(url: string, embedded: boolean, placements: Placements, cipher: SecretCipher) {
  const dataSource = new DataSource(dataSourceOptions(url, embedded));
  await dataSource.initialize();
  const repository = new AlertsRepository(dataSource);
  const webhooksRepository = new WebhooksRepository(dataSource);
  const status = new StatusService(repository, placements);
  const dispatcher = new WebhookDispatcher(webhooksRepository, cipher, POLICY);
  const alerts = new AlertsService(
    { alertEvaluationMs: 1000 },
    repository,
    webhooksRepository,
    status,
    dispatcher,
  );
  const webhooks = new WebhooksService(webhooksRepository, cipher, dispatcher);
  const results = new ResultsService(
    new ResultsRepository(
      dataSource,
      dataSource.getRepository(ResultEntity),
      dataSource.getRepository(RunResultEntity),
      dataSource.getRepository(TestEntity),
      dataSource.getRepository(LocationEntity),
    ),
    new LocalChangeBus(),
  );
  return { dataSource, status, alerts, webhooks, webhooksRepository, dispatcher, results };
}
type Replica = Awaited<ReturnType<typeof startReplica>>;

/** Every location has an agent. */
const everywhere: Placements = {
  placementsOf: (tests) =>
    Promise.resolve(
      new Map(
        tests.map((t) => [t.id, t.locationIds.map((locationId) => ({ locationId, agentId: 'agent-1' }))]),
      ),
    ),
};

describe(AlertsService.name, () => {
  let pg: TestPostgres;
  let url: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const open: DataSource[] = [];
  const cipher = new SecretCipher(randomBytes(32));
  /** Locations whose agents are gone: the placements say no agent runs anything there. */
  const withoutAgent = new Set<string>();
  const placements: Placements = {
    placementsOf: (tests) =>
      Promise.resolve(
        new Map(
          tests.map((t) => [
            t.id,
            t.locationIds.map((locationId) => ({
              locationId,
              agentId: withoutAgent.has(locationId) ? undefined : 'agent-1',
            })),
          ]),
        ),
      ),
  };

  /** A control-plane replica: its own connections, services and dispatcher. */
  async function replica(): Promise<Replica> {
    const started = await startReplica(url, false, placements, cipher);
    open.push(started.dataSource);
    return started;
  }
  let cp: Replica;

  beforeAll(async () => {
    [pg, receiver] = await Promise.all([startTestPostgres(), startReceiver()]);
    url = await pg.createDatabase();
    cp = await replica();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((dataSource) => dataSource.destroy()));
    await receiver?.close();
    await pg?.stop();
  });

  // ---------- factories ----------

  async function createLocation(): Promise<{ id: string; name: string }> {
    const location = { id: randomUUID(), name: `loc-${randomUUID().slice(0, 8)}` };
    await cp.dataSource.query(`INSERT INTO locations (id, name, kind) VALUES ($1, $2, 'private')`, [
      location.id,
      location.name,
    ]);
    return location;
  }

  /**
   * A test every 10 s with a 1 s timeout and no retries: a location has no data 61 s after its latest
   * result (three periods, the run, 30 s).
   */
  async function createTest(
    locations: readonly { id: string; name: string }[],
    alert: AlertRule = { min_failing_locations: 1, for_minutes: 5 },
    options: { tags?: string[]; interpretation?: string } = {},
  ): Promise<string> {
    const id = randomUUID();
    const probe = {
      url: 'ws://127.0.0.1:9/',
      timeout_ms: 1000,
      interpretation: options.interpretation ?? 'handshake_latency',
    };
    await cp.dataSource.query(
      `INSERT INTO tests (id, name, tags, probe, schedule, retry, alert, location_names, revision)
       VALUES ($1, $2, $3, $4, '{"interval_s":10}', '{"attempts":0,"delay_ms":1000}', $5, $6, 1)`,
      [
        id,
        `test ${id.slice(0, 8)}`,
        options.tags ?? [],
        JSON.stringify(probe),
        JSON.stringify(alert),
        locations.map((l) => l.name),
      ],
    );
    for (const location of locations) {
      await cp.dataSource.query(`INSERT INTO test_locations (test_id, location_id) VALUES ($1, $2)`, [
        id,
        location.id,
      ]);
    }
    return id;
  }

  /** Results of the test in the location, every 10 s over [fromSecondsAgo, toSecondsAgo]. */
  async function record(
    testId: string,
    locationId: string,
    fromSecondsAgo: number,
    toSecondsAgo: number,
    outcome: { success?: boolean; value?: number; reason?: string; cause?: string } = {},
  ): Promise<void> {
    const now = Math.floor(Date.now() / SECOND_MS) * SECOND_MS;
    const results = [];
    for (let ago = fromSecondsAgo; ago >= toSecondsAgo; ago -= 10) {
      results.push(
        agentResult({
          test_id: testId,
          slot_time: new Date(now - ago * SECOND_MS),
          success: outcome.success ?? true,
          value: outcome.value ?? 25,
          reason: outcome.reason ?? '',
          cause: outcome.cause ?? '',
        }),
      );
    }
    await cp.results.ingest(locationId, 'agent-1', results);
  }
  const fail = { success: false, reason: 'ws_closed_early', cause: 'closed_by_server' } as const;

  /** A webhook to the receiver's `path`; by default only for tests tagged `only:<path>` (no other test is). */
  async function createWebhook(
    path: string,
    filter: { tests?: string[]; tags?: string[] } = { tags: [`only:${path}`] },
  ): Promise<{ id: string; secret: string }> {
    const created = await cp.webhooks.create({ url: receiver.url(path), ...filter }, null);
    return { id: created.id, secret: created.secret! };
  }

  const receivedAt = (path: string) => receiver.received.filter((r) => r.path === path);
  const notification = (r: Received) => JSON.parse(r.body) as WebhookNotification;

  // ---------- status ----------

  describe('status', () => {
    it('gives each location its status: healthy, unhealthy, slow, no data, awaiting, no agent', async () => {
      const names = ['ok', 'fail', 'slow', 'stale', 'new', 'gone'] as const;
      const l: Record<string, { id: string; name: string }> = {};
      for (const name of names) l[name] = await createLocation();
      const testId = await createTest(names.map((n) => l[n]!));
      await record(testId, l.ok!.id, 30, 10);
      await record(testId, l.fail!.id, 30, 10, fail);
      await record(testId, l.slow!.id, 30, 10, { value: 1500 });
      await record(testId, l.stale!.id, 150, 120);
      withoutAgent.add(l.gone!.id);

      // A pass stores the states: from then on, a read reports the same since-times.
      await cp.alerts.evaluate();
      const status = await cp.status.get(testId);
      const of = (n: (typeof names)[number]) => status.locations.find((x) => x.location === l[n]!.name)!;
      expect(of('ok')).toMatchObject({ status: 'healthy', reason: null, cause: null });
      expect(of('fail')).toMatchObject({
        status: 'unhealthy',
        reason: 'ws_closed_early',
        cause: 'closed_by_server',
      });
      expect(of('slow')).toMatchObject({
        status: 'unhealthy',
        reason: 'threshold_exceeded',
        cause: 'slow_handshake',
      });
      expect(of('stale')).toMatchObject({ status: 'no_data', reason: 'no_recent_result' });
      expect(of('new')).toMatchObject({
        status: 'no_data',
        reason: 'awaiting_first_result',
        last_result_at: null,
      });
      expect(of('gone')).toMatchObject({ status: 'no_agent', reason: 'no_agent' });
      expect(status).toMatchObject({ test_id: testId, enabled: true, state: 'failing', alert_id: null });
      // Since: the first result of the current run of results.
      expect(Date.parse(of('fail').since)).toBe(Date.parse(of('fail').last_result_at!) - 20 * SECOND_MS);
      // The listing says the same, with the time it was computed at.
      const listed = await cp.status.list();
      expect(listed.items.find((t) => t.test_id === testId)?.locations).toEqual(status.locations);
      expect(Date.parse(listed.evaluated_at)).not.toBeNaN();
    });

    it('is ok when every location is healthy, no data while a first result is awaited, and paused when paused', async () => {
      const [a, b] = [await createLocation(), await createLocation()];
      const testId = await createTest([a, b]);
      await record(testId, a.id, 20, 0);
      expect((await cp.status.get(testId)).state).toBe('no_data');
      await record(testId, b.id, 20, 0);
      expect((await cp.status.get(testId)).state).toBe('ok');

      await cp.dataSource.query(`UPDATE tests SET enabled = false WHERE id = $1`, [testId]);
      const paused = await cp.status.get(testId);
      expect(paused).toMatchObject({ enabled: false, state: 'no_data' });
      expect(paused.locations.map((x) => x.reason)).toEqual(['test_paused', 'test_paused']);
    });

    it('answers NOT_FOUND for a test that does not exist', async () => {
      await expect(cp.status.get(randomUUID())).rejects.toBeInstanceOf(NotFoundError);
      await expect(cp.status.get('not-an-id')).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  // ---------- alerts ----------

  describe('alerts', () => {
    const rule = { min_failing_locations: 2, for_minutes: 2 };

    it('does not alert while fewer than N locations have failed for X minutes', async () => {
      const [a, b, c] = [await createLocation(), await createLocation(), await createLocation()];
      const testId = await createTest([a, b, c], rule);
      await record(testId, a.id, 180, 0, fail); // 3 minutes
      await record(testId, b.id, 60, 0, fail); // 1 minute
      await record(testId, c.id, 180, 0);
      expect((await cp.alerts.evaluate()).ran).toBe(true);
      expect((await cp.alerts.list({ test: testId })).items).toEqual([]);
      expect((await cp.status.get(testId)).state).toBe('failing');
    });

    it('alerts when N of M locations have failed for X minutes, notifies signed, and recovers when fewer do', async () => {
      const [a, b, c] = [await createLocation(), await createLocation(), await createLocation()];
      const testId = await createTest([a, b, c], rule, { tags: ['team:edge'] });
      const hook = await createWebhook('/alerts', { tags: ['team:edge'] });
      await record(testId, a.id, 180, 0, fail);
      await record(testId, b.id, 150, 0, {
        success: false,
        reason: 'ws_open_failed',
        cause: 'connection_refused',
      });
      await record(testId, c.id, 180, 0);

      const opened = await cp.alerts.evaluate();
      expect(opened).toMatchObject({ ran: true, opened: 1, resolved: 0 });
      const [alert] = (await cp.alerts.list({ test: testId, state: 'open' })).items;
      expect(alert).toMatchObject({
        test_id: testId,
        state: 'open',
        min_failing_locations: 2,
        for_minutes: 2,
      });
      expect(alert!.locations.map((l) => [l.location, l.status, l.reason, l.cause])).toEqual(
        [
          [a.name, 'unhealthy', 'ws_closed_early', 'closed_by_server'],
          [b.name, 'unhealthy', 'ws_open_failed', 'connection_refused'],
        ].sort((x, y) => x[0]!.localeCompare(y[0]!)),
      );
      expect(await cp.status.get(testId)).toMatchObject({ state: 'alerting', alert_id: alert!.id });

      // Another pass changes nothing: one alert, one notification.
      expect(await cp.alerts.evaluate()).toMatchObject({ opened: 0, resolved: 0, notifications: 0 });
      await cp.dispatcher.sendDue();
      const [sent] = receivedAt('/alerts');
      expect(receivedAt('/alerts')).toHaveLength(1);
      expect(
        verifyWebhookSignature(hook.secret, sent!.body, sent!.headers['x-wsmon-signature'] as string),
      ).toBe(true);
      const body = notification(sent!);
      expect(body).toMatchObject({
        event: 'alert.opened',
        attempt: 1,
        test: { id: testId, tags: ['team:edge'] },
        alert: { id: alert!.id, state: 'open' },
      });
      expect(sent!.headers['x-wsmon-delivery']).toBe(body.id);
      expect(sent!.headers['x-wsmon-event']).toBe('alert.opened');
      expect(Number(sent!.headers['x-wsmon-timestamp'])).toBe(Math.floor(Date.parse(body.timestamp) / 1000));
      expect(body.locations.map((l) => l.status).sort()).toEqual(['healthy', 'unhealthy', 'unhealthy']);
      expect(body.message).toContain('2 of 3 locations');

      // One location passes again: fewer than two fail, the alert resolves.
      await record(testId, a.id, -5, -5);
      expect(await cp.alerts.evaluate()).toMatchObject({ opened: 0, resolved: 1 });
      const [resolved] = (await cp.alerts.list({ test: testId })).items;
      expect(resolved).toMatchObject({ id: alert!.id, state: 'resolved', resolution: 'recovered' });
      expect(Date.parse(resolved!.resolved_at!)).toBeGreaterThanOrEqual(Date.parse(resolved!.started_at));
      expect((await cp.alerts.list({ test: testId, state: 'open' })).items).toEqual([]);
      await cp.dispatcher.sendDue();
      const recovery = receivedAt('/alerts')[1]!;
      expect(
        verifyWebhookSignature(hook.secret, recovery.body, recovery.headers['x-wsmon-signature'] as string),
      ).toBe(true);
      expect(notification(recovery)).toMatchObject({
        event: 'alert.resolved',
        alert: { id: alert!.id, state: 'resolved', resolution: 'recovered' },
      });
      expect((await cp.status.get(testId)).state).toBe('failing');
    });

    it('counts a location without an agent as failing, never as passing', async () => {
      const [a, b] = [await createLocation(), await createLocation()];
      const testId = await createTest([a, b], { min_failing_locations: 2, for_minutes: 1 });
      await record(testId, a.id, 120, 0, fail);
      await record(testId, b.id, 120, 0);
      withoutAgent.add(b.id);
      await cp.alerts.evaluate();
      expect((await cp.alerts.list({ test: testId })).items).toEqual([]);
      // As if that pass had run two minutes ago: b has had no agent since then.
      await cp.dataSource.query(
        `UPDATE location_statuses SET since = since - interval '2 minutes',
                failing_since = failing_since - interval '2 minutes'
          WHERE test_id = $1 AND location_id = $2`,
        [testId, b.id],
      );
      expect(await cp.alerts.evaluate()).toMatchObject({ opened: 1 });
      const [alert] = (await cp.alerts.list({ test: testId })).items;
      expect(alert!.locations.find((l) => l.location === b.name)).toMatchObject({
        status: 'no_agent',
        reason: 'no_agent',
      });
      withoutAgent.delete(b.id);
    });

    it('opens one alert and queues one notification when replicas evaluate at the same time', async () => {
      const [a] = [await createLocation()];
      const testId = await createTest([a], { min_failing_locations: 1, for_minutes: 1 });
      const hook = await createWebhook('/concurrent', { tests: [testId] });
      await record(testId, a.id, 120, 0, fail);
      const replicas = [cp, await replica(), await replica()];
      const outcomes = await Promise.all(replicas.map((r) => r.alerts.evaluate()));
      expect(outcomes.reduce((n, o) => n + o.opened, 0)).toBe(1);
      expect((await cp.alerts.list({ test: testId })).items).toHaveLength(1);
      const deliveries = await cp.webhooks.deliveries(hook.id, {});
      expect(deliveries.items.map((d) => d.event)).toEqual(['alert.opened']);
    });

    it('resolves the open alert of a test that is paused or deleted, and says so', async () => {
      const [a] = [await createLocation()];
      const paused = await createTest([a], { min_failing_locations: 1, for_minutes: 1 });
      const deleted = await createTest([a], { min_failing_locations: 1, for_minutes: 1 });
      const hook = await createWebhook('/gone', { tests: [paused, deleted] });
      await record(paused, a.id, 120, 0, fail);
      await record(deleted, a.id, 120, 0, fail);
      expect(await cp.alerts.evaluate()).toMatchObject({ opened: 2 });
      await cp.dataSource.query(`UPDATE tests SET enabled = false WHERE id = $1`, [paused]);
      await cp.dataSource.query(`DELETE FROM tests WHERE id = $1`, [deleted]);
      expect(await cp.alerts.evaluate()).toMatchObject({ resolved: 2 });
      expect((await cp.alerts.list({ test: paused })).items[0]).toMatchObject({ resolution: 'test_paused' });
      expect((await cp.alerts.list({ test: deleted })).items[0]).toMatchObject({
        resolution: 'test_deleted',
      });
      const events = (await cp.webhooks.deliveries(hook.id, {})).items.map((d) => d.event);
      expect(events.sort()).toEqual(['alert.opened', 'alert.opened', 'alert.resolved', 'alert.resolved']);
    });

    it('lists alerts with field errors for a bad filter', async () => {
      const error = await cp.alerts.list({ test: 'x', state: 'closed' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).fieldErrors.map((e) => e.path).sort()).toEqual([
        'state',
        'test',
      ]);
    });
  });

  // ---------- webhooks ----------

  describe('webhooks', () => {
    /** Sends due deliveries until the delivery is no longer pending: bounded in passes and time. */
    async function settle(webhookId: string, deliveryId: string) {
      for (let pass = 0; pass < 100; pass++) {
        await cp.dispatcher.sendDue();
        const found = (await cp.webhooks.deliveries(webhookId, {})).items.find((d) => d.id === deliveryId);
        if (found && found.state !== 'pending') return found;
        await sleep(20);
      }
      throw new Error(`delivery ${deliveryId} still pending`);
    }

    it('accepts only http(s) URLs and known tests, naming the field, and never echoes or shows the secret', async () => {
      const rejected = await cp.webhooks
        .create(
          {
            url: 'ftp://127.0.0.1/hook',
            secret: 'short-secret',
            tests: [randomUUID(), 'nope'],
            color: 'red',
          },
          null,
        )
        .catch((e: unknown) => e);
      expect(rejected).toBeInstanceOf(InvalidArgumentError);
      const errors = (rejected as InvalidArgumentError).fieldErrors;
      expect(errors.map((e) => [e.path, e.rule])).toEqual(
        expect.arrayContaining([
          ['url', 'http_scheme'],
          ['secret', 'min_length'],
          ['tests[1]', 'format'],
          ['color', 'unknown_field'],
        ]),
      );
      expect(JSON.stringify(errors)).not.toContain('short-secret');
      const credentials = await cp.webhooks
        .create({ url: 'https://user:pw@127.0.0.1/hook' }, null)
        .catch((e: unknown) => e);
      expect((credentials as InvalidArgumentError).fieldErrors[0]).toMatchObject({
        path: 'url',
        rule: 'no_credentials',
      });
      const unknown = await cp.webhooks
        .create({ url: receiver.url('/x'), tests: [randomUUID()] }, null)
        .catch((e: unknown) => e);
      expect((unknown as InvalidArgumentError).fieldErrors[0]).toMatchObject({
        path: 'tests[0]',
        rule: 'exists',
      });

      const created = await cp.webhooks.create(
        { url: receiver.url('/x'), secret: 'my-own-secret-of-24-chars' },
        null,
      );
      expect(created.secret).toBe('my-own-secret-of-24-chars');
      const generated = await cp.webhooks.create({ url: receiver.url('/x') }, null);
      expect(generated.secret).toMatch(/^whsec_/);
      expect(await cp.webhooks.get(created.id)).not.toHaveProperty('secret');
      const listed = await cp.webhooks.list({ page_size: '200' });
      expect(listed.items.every((w) => !('secret' in w))).toBe(true);
      const stored = await cp.dataSource.query<{ secret: Buffer }[]>(
        `SELECT secret FROM webhooks WHERE id = $1`,
        [created.id],
      );
      expect(stored[0]!.secret.toString('latin1')).not.toContain('my-own-secret');
      await Promise.all([cp.webhooks.delete(created.id), cp.webhooks.delete(generated.id)]);
      await expect(cp.webhooks.get(created.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(cp.webhooks.delete(created.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('sends a signed test notification and answers with its first attempt', async () => {
      const hook = await createWebhook('/test');
      const delivery = await cp.webhooks.sendTest(hook.id);
      expect(delivery).toMatchObject({ event: 'test', state: 'delivered', alert_id: null });
      expect(delivery.attempts).toEqual([
        expect.objectContaining({ attempt: 1, status_code: 200, error: null }),
      ]);
      const [sent] = receivedAt('/test');
      expect(
        verifyWebhookSignature(hook.secret, sent!.body, sent!.headers['x-wsmon-signature'] as string),
      ).toBe(true);
      expect(notification(sent!)).toMatchObject({ id: delivery.id, event: 'test', test: null, alert: null });
    });

    it('retries a failing receiver with backoff and records every attempt', async () => {
      const hook = await createWebhook('/flaky');
      receiver.script.set('/flaky', [500, 503]);
      const first = await cp.webhooks.sendTest(hook.id);
      expect(first).toMatchObject({ state: 'pending' });
      expect(first.attempts).toEqual([
        expect.objectContaining({ status_code: 500, error: 'the receiver answered HTTP 500' }),
      ]);
      const done = await settle(hook.id, first.id);
      expect(done.state).toBe('delivered');
      expect(done.attempts.map((a) => [a.attempt, a.status_code])).toEqual([
        [1, 500],
        [2, 503],
        [3, 200],
      ]);
      expect(done.attempts.every((a) => a.duration_ms >= 0)).toBe(true);
      // Every attempt of one notification carries its id, and its own attempt number and timestamp.
      const bodies = receivedAt('/flaky').map(notification);
      expect(new Set(bodies.map((b) => b.id))).toEqual(new Set([first.id]));
      expect(bodies.map((b) => b.attempt)).toEqual([1, 2, 3]);
    });

    it('gives up after the last attempt, and records why when nothing answers', async () => {
      const hook = await createWebhook('/down');
      receiver.script.set('/down', [500, 500, 500]);
      const failed = await settle(hook.id, (await cp.webhooks.sendTest(hook.id)).id);
      expect(failed).toMatchObject({ state: 'failed', next_attempt_at: null });
      expect(failed.attempts).toHaveLength(POLICY.maxAttempts);
      expect(Date.parse(failed.completed_at!)).not.toBeNaN();

      const closed = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const unreachable = await cp.webhooks.create(
        { url: `http://127.0.0.1:${closed}/hook`, tags: ['only:/unreachable'] },
        null,
      );
      const refused = await cp.webhooks.sendTest(unreachable.id);
      expect(refused.attempts[0]).toMatchObject({ status_code: null });
      expect(refused.attempts[0]!.error).toContain('ECONNREFUSED');
      expect((await cp.webhooks.deliveries(unreachable.id, { state: 'pending' })).items).toHaveLength(1);
    });

    it('keeps pending deliveries across a restart, and replicas send each one once', async () => {
      const hook = await createWebhook('/restart');
      const testId = randomUUID();
      // Queued, as an evaluation queues them, and never sent: the replica that queued them is gone.
      await cp.dataSource.transaction(async (manager) => {
        for (let i = 0; i < 5; i++) {
          await cp.webhooksRepository.enqueueAlert(manager, {
            event: 'alert.opened',
            alertId: (
              await manager.query<{ id: string }[]>(
                `INSERT INTO alerts (id, test_id, test_name, state, min_failing_locations, for_minutes,
                                     locations, started_at)
                 VALUES (gen_random_uuid(), $1, 'gone', 'resolved', 1, 1, '[]', now()) RETURNING id`,
                [testId],
              )
            )[0]!.id,
            testId,
            testTags: ['only:/restart'],
            payload: { event: 'alert.opened', test: null, alert: null, locations: [], message: `n${i}` },
          });
        }
      });
      const restarted = await Promise.all([replica(), replica()]);
      for (let pass = 0; pass < 50; pass++) {
        await Promise.all(restarted.map((r) => r.dispatcher.sendDue()));
        const pending = await cp.webhooks.deliveries(hook.id, { state: 'pending' });
        if (!pending.items.length) break;
        await sleep(20);
      }
      const delivered = await cp.webhooks.deliveries(hook.id, { state: 'delivered' });
      expect(delivered.items).toHaveLength(5);
      const ids = receivedAt('/restart').map((r) => notification(r).id);
      expect(ids.sort()).toEqual(delivered.items.map((d) => d.id).sort());
    });
  });
});

/**
 * The embedded database serves one connection: an evaluation reads what it needs outside its transaction
 * and nothing else inside, or it would wait for itself.
 */
describe(`${AlertsService.name} on the embedded database`, () => {
  let embedded: EmbeddedPostgres;
  let dataDir: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let cp: Replica;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wsmon-alerts-'));
    [embedded, receiver] = await Promise.all([startEmbeddedPostgres({ dataDir }), startReceiver()]);
    cp = await startReplica(embedded.url, true, everywhere, new SecretCipher(randomBytes(32)));
  }, 60_000);

  afterAll(async () => {
    await cp?.dataSource.destroy();
    await embedded?.close();
    await receiver?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('evaluates, alerts and notifies through its one connection', async () => {
    const location = { id: randomUUID(), name: 'embedded' };
    const testId = randomUUID();
    await cp.dataSource.query(`INSERT INTO locations (id, name, kind) VALUES ($1, $2, 'private')`, [
      location.id,
      location.name,
    ]);
    await cp.dataSource.query(
      `INSERT INTO tests (id, name, probe, schedule, retry, alert, location_names, revision)
       VALUES ($1, 'embedded', '{"url":"ws://127.0.0.1:9/","timeout_ms":1000,"interpretation":"handshake_latency"}',
               '{"interval_s":10}', '{"attempts":0,"delay_ms":1000}',
               '{"min_failing_locations":1,"for_minutes":1}', $2, 1)`,
      [testId, [location.name]],
    );
    await cp.dataSource.query(`INSERT INTO test_locations (test_id, location_id) VALUES ($1, $2)`, [
      testId,
      location.id,
    ]);
    const now = Math.floor(Date.now() / SECOND_MS) * SECOND_MS;
    await cp.results.ingest(
      location.id,
      'agent-1',
      [90, 60, 30, 0].map((ago) =>
        agentResult({
          test_id: testId,
          slot_time: new Date(now - ago * SECOND_MS),
          success: false,
          reason: 'ws_open_failed',
          cause: 'connection_refused',
        }),
      ),
    );
    const hook = await cp.webhooks.create({ url: receiver.url('/embedded') }, null);
    expect(await cp.alerts.evaluate()).toMatchObject({ ran: true, opened: 1, notifications: 1 });
    await cp.dispatcher.sendDue();
    expect(receiver.received).toHaveLength(1);
    const [sent] = receiver.received;
    expect(
      verifyWebhookSignature(hook.secret!, sent!.body, sent!.headers['x-wsmon-signature'] as string),
    ).toBe(true);
    expect(await cp.status.get(testId)).toMatchObject({ state: 'alerting' });
    expect((await cp.webhooks.sendTest(hook.id)).state).toBe('delivered');
  });
});

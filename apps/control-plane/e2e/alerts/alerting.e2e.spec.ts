import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { ConfigServiceClient, LocationHealth, TestState, type GetTestStatusResponse } from '@wsmon/proto';
import { startTargetZoo, startTestPostgres, type TargetZoo, type TestPostgres } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../support/agent-process';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from '../support/control-plane-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** How a receiver checks a notification: the HMAC-SHA256 of the raw body, in constant time. */
function signatureHolds(secret: string, r: Received): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`);
  const given = Buffer.from(String(r.headers['x-wsmon-signature']));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * A real control plane on PostgreSQL, real agents in two locations probing a real target, and a webhook
 * receiver on 127.0.0.1: the target starts failing, the alert opens after `for_minutes` (1) and the
 * receiver gets a signed notification; the target recovers, and so does the alert.
 */
describe('status and alerting with agents, a failing target and a webhook', () => {
  let pg: TestPostgres;
  let zoo: TargetZoo;
  let cp: ControlPlaneProcess;
  let receiver: Server;
  let receiverUrl: string;
  const received: Received[] = [];
  const agents: AgentProcess[] = [];
  let workDir: string;
  const adminKey = newAdminKey();
  let admin: ReturnType<typeof restClient>;

  /** Polls until `check` returns a value, at most `timeoutMs`, every 500 ms. */
  async function eventually<T>(
    what: string,
    timeoutMs: number,
    check: () => Promise<T | undefined>,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < Math.ceil(timeoutMs / 500) + 1; i++) {
      const found = await check();
      if (found !== undefined) return found;
      if (Date.now() > deadline) break;
      await sleep(500);
    }
    throw new Error(`${what}: not within ${timeoutMs} ms`);
  }

  const notifications = (event: string) =>
    received.filter((r) => (JSON.parse(r.body) as { event: string }).event === event);

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wsmon-alerting-'));
    [pg, zoo] = await Promise.all([startTestPostgres(), startTargetZoo()]);
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/wsmon`;
    cp = await startControlPlane({
      DATABASE_URL: await pg.createDatabase('alerting'),
      WSMON_ADMIN_KEY: adminKey,
      WSMON_SECRET_KEY: newSecretKey(),
      WSMON_AGENT_HEARTBEAT_MS: '1000',
      WSMON_AGENT_GRACE_MS: '2000',
      WSMON_ALERT_EVALUATION_MS: '1000',
    });
    admin = restClient(cp.httpUrl, adminKey);
    for (const location of ['alert-a', 'alert-b', 'alert-empty']) {
      expect((await admin('POST', '/locations', { name: location })).status).toBe(201);
    }
    for (const location of ['alert-a', 'alert-b']) {
      const token = (await admin<{ secret: string }>('POST', `/locations/${location}/tokens`, {})).body
        .secret;
      agents.push(
        await startAgent({
          controlPlane: cp.grpcAddress,
          token,
          dataDir: join(workDir, location),
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await cp?.stop();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    await Promise.all([pg?.stop(), zoo?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('shows a location without an agent as no_agent, over REST and gRPC', async () => {
    const created = await admin<{ id: string }>('POST', '/tests', {
      name: 'nowhere',
      probe: { url: zoo.url('/echo') },
      schedule: { interval_s: 60 },
      locations: ['alert-empty'],
    });
    expect(created.status).toBe(201);
    const status = await admin('GET', `/tests/${created.body.id}/status`);
    expect(status.body).toMatchObject({
      test_id: created.body.id,
      state: 'failing',
      locations: [{ location: 'alert-empty', status: 'no_agent', reason: 'no_agent', last_result_at: null }],
    });

    const client = new ConfigServiceClient(cp.grpcAddress, credentials.createInsecure());
    try {
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${adminKey}`);
      const reply = await new Promise<GetTestStatusResponse>((resolve, reject) =>
        client.getTestStatus({ test_id: created.body.id }, metadata, (error, response) =>
          error ? reject(error) : resolve(response),
        ),
      );
      expect(reply.status).toMatchObject({
        state: TestState.TEST_STATE_FAILING,
        locations: [
          { location: 'alert-empty', status: LocationHealth.LOCATION_HEALTH_NO_AGENT, reason: 'no_agent' },
        ],
      });
    } finally {
      client.close();
    }
    expect((await admin('DELETE', `/tests/${created.body.id}`)).status).toBe(204);
  });

  it('alerts after for_minutes when a target starts failing in N locations, notifies a signed webhook, and recovers', async () => {
    const created = await admin<{ id: string }>('POST', '/tests', {
      name: 'gateway',
      probe: { url: zoo.url('/echo'), timeout_ms: 2000 },
      schedule: { interval_s: 1 },
      locations: ['alert-a', 'alert-b'],
      alert: { min_failing_locations: 2, for_minutes: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const testId = created.body.id;
    const hook = await admin<{ id: string; secret: string }>('POST', '/webhooks', {
      name: 'receiver',
      url: receiverUrl,
      tests: [testId],
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    const secret = hook.body.secret;
    expect((await admin('GET', `/webhooks/${hook.body.id}`)).body).not.toHaveProperty('secret');

    const statusOf = async () => (await admin<any>('GET', `/tests/${testId}/status`)).body;
    await eventually('both locations healthy', 30_000, async () => {
      const s = await statusOf();
      return s.state === 'ok' ? s : undefined;
    });

    // The target starts failing: its upgrade answers 500.
    const patched = await admin('PATCH', `/tests/${testId}`, {
      probe: { url: zoo.url('/status/500'), timeout_ms: 2000 },
    });
    expect(patched.status).toBe(200);
    const failing = await eventually('both locations unhealthy', 30_000, async () => {
      const s = await statusOf();
      return s.locations.every((l: any) => l.status === 'unhealthy') ? s : undefined;
    });
    expect(failing.state).toBe('failing');
    expect(failing.locations.map((l: any) => l.reason)).toEqual(['ws_open_failed', 'ws_open_failed']);
    expect(notifications('alert.opened')).toEqual([]);

    const [opened] = await eventually('the alert.opened notification', 100_000, () =>
      Promise.resolve(notifications('alert.opened').length ? notifications('alert.opened') : undefined),
    );
    expect(signatureHolds(secret, opened!)).toBe(true);
    expect(signatureHolds('not-the-secret-at-all', opened!)).toBe(false);
    const body = JSON.parse(opened!.body);
    expect(opened!.headers['x-wsmon-delivery']).toBe(body.id);
    expect(opened!.headers['x-wsmon-event']).toBe('alert.opened');
    expect(Number(opened!.headers['x-wsmon-timestamp'])).toBe(Math.floor(Date.parse(body.timestamp) / 1000));
    expect(body).toMatchObject({
      event: 'alert.opened',
      attempt: 1,
      test: { id: testId, name: 'gateway' },
      alert: { state: 'open', min_failing_locations: 2, for_minutes: 1 },
    });
    expect(body.alert.locations.map((l: any) => [l.location, l.status, l.reason])).toEqual([
      ['alert-a', 'unhealthy', 'ws_open_failed'],
      ['alert-b', 'unhealthy', 'ws_open_failed'],
    ]);
    // The rule held: every location had been failing for a minute when the alert opened.
    for (const location of body.alert.locations) {
      expect(Date.parse(body.alert.started_at) - Date.parse(location.failing_since)).toBeGreaterThanOrEqual(
        60_000,
      );
    }
    const open = await admin<any>('GET', `/alerts?test=${testId}&state=open`);
    expect(open.body.items).toHaveLength(1);
    expect(open.body.items[0]).toMatchObject({ id: body.alert.id, resolved_at: null });
    const listed = await admin<any>('GET', '/status');
    expect(listed.body.items.find((t: any) => t.test_id === testId)).toMatchObject({
      state: 'alerting',
      alert_id: body.alert.id,
    });

    // The target recovers.
    expect(
      (await admin('PATCH', `/tests/${testId}`, { probe: { url: zoo.url('/echo'), timeout_ms: 2000 } }))
        .status,
    ).toBe(200);
    const [resolved] = await eventually('the alert.resolved notification', 30_000, () =>
      Promise.resolve(notifications('alert.resolved').length ? notifications('alert.resolved') : undefined),
    );
    expect(signatureHolds(secret, resolved!)).toBe(true);
    expect(JSON.parse(resolved!.body)).toMatchObject({
      event: 'alert.resolved',
      test: { id: testId },
      alert: { id: body.alert.id, state: 'resolved', resolution: 'recovered' },
    });
    const history = await admin<any>('GET', `/alerts?test=${testId}`);
    expect(history.body.items).toHaveLength(1);
    expect(history.body.items[0]).toMatchObject({ state: 'resolved', resolution: 'recovered' });
    expect(history.body.items[0].resolved_at).not.toBeNull();

    const deliveries = await admin<any>('GET', `/webhooks/${hook.body.id}/deliveries`);
    expect(
      deliveries.body.items.map((d: any) => [d.event, d.state, d.attempts.map((a: any) => a.status_code)]),
    ).toEqual([
      ['alert.resolved', 'delivered', [200]],
      ['alert.opened', 'delivered', [200]],
    ]);
    expect(notifications('alert.opened')).toHaveLength(1);
  }, 180_000);
});

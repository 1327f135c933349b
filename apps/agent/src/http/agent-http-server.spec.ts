import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counter, EXPOSITION_CONTENT_TYPE, gauge, type MetricFamily } from '@wsmon/metrics';
import { familyNamed, parseExposition, sampleValue, type ParsedFamily } from '@wsmon/metrics/parser';
import { startTargetZoo, ZOO_SECRETS, type TargetZoo } from '@wsmon/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAgentHttpServer, type AgentHttpServer, type Readiness } from './agent-http-server';
import { loadProbeModules } from './probe-modules';

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: string;
  readonly elapsedMs: number;
}

const METRICS_HEADING = 'Metrics that would have been returned:\n';
const MODULE_HEADING = '\n\n\n\nModule configuration:\n';

describe(startAgentHttpServer.name, () => {
  let zoo: TargetZoo;
  let server: AgentHttpServer;
  let dir: string;
  let readiness: Readiness;
  let agentMetrics: () => readonly MetricFamily[];
  const logged: string[] = [];

  beforeAll(async () => {
    zoo = await startTargetZoo();
    dir = mkdtempSync(join(tmpdir(), 'wsmon-http-'));
    const file = join(dir, 'modules.json');
    writeFileSync(
      file,
      JSON.stringify({
        modules: {
          ws_echo: { ping_mode: 'message', send_message: 'hello', expect_message: 'hello' },
          ws_tls: { tls: { ca_pem: zoo.tls.caPem }, ping_mode: 'protocol' },
          ws_bearer: {
            url: zoo.url('/auth/bearer'),
            headers: { Authorization: `Bearer ${ZOO_SECRETS.bearerToken}` },
          },
          ws_quick: { timeout_ms: 800 },
        },
      }),
    );
    server = await startAgentHttpServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => readiness,
      agentMetrics: () => agentMetrics(),
      modules: loadProbeModules(file),
      maxConcurrentProbes: 1,
      debugLog: (line) => logged.push(line),
    });
  });

  afterAll(async () => {
    await server?.close();
    await zoo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    readiness = { ready: true };
    agentMetrics = () => [];
    logged.length = 0;
  });

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
    const started = performance.now();
    const res = await fetch(`${server.url}${path}`, { method, headers });
    const body = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      body,
      elapsedMs: performance.now() - started,
    };
  }

  const probePath = (params: Record<string, string>) => `/probe?${new URLSearchParams(params).toString()}`;

  /** A /probe answer: 200, the exposition content type, and a body the strict parser accepts. */
  async function probe(params: Record<string, string>, headers: Record<string, string> = {}) {
    const answer = await get(probePath(params), headers);
    expect(answer.status, answer.body).toBe(200);
    expect(answer.contentType).toBe(EXPOSITION_CONTENT_TYPE);
    return { ...answer, families: parseExposition(answer.body) };
  }

  function debugSections(body: string): { log: string; families: ParsedFamily[]; module: string } {
    const metricsAt = body.indexOf(METRICS_HEADING);
    const moduleAt = body.indexOf(MODULE_HEADING);
    expect(metricsAt).toBeGreaterThan(0);
    expect(moduleAt).toBeGreaterThan(metricsAt);
    return {
      log: body.slice(0, metricsAt),
      families: parseExposition(`${body.slice(metricsAt + METRICS_HEADING.length, moduleAt)}\n`),
      module: body.slice(moduleAt + MODULE_HEADING.length),
    };
  }

  describe('/probe', () => {
    it('reports a successful handshake with the default module', async () => {
      const { families } = await probe({ target: zoo.url('/echo') });
      expect(sampleValue(families, 'probe_success')).toBe(1);
      expect(sampleValue(families, 'probe_websocket_up')).toBe(1);
      expect(sampleValue(families, 'probe_websocket_connection_upgraded')).toBe(1);
      expect(sampleValue(families, 'probe_websocket_status_code')).toBe(101);
      expect(sampleValue(families, 'probe_ip_protocol')).toBe(4);
      const connection = sampleValue(families, 'probe_websocket_connection_duration_seconds');
      expect(connection).toBeGreaterThan(0);
      expect(sampleValue(families, 'probe_duration_seconds')).toBeGreaterThanOrEqual(connection);
      const phases = familyNamed(families, 'probe_websocket_duration_seconds')?.samples.map(
        (s) => s.labels.phase,
      );
      expect(phases).toEqual(['resolve', 'connect', 'processing', 'close']);
      expect(familyNamed(families, 'probe_wsmon_failure_info')).toBeUndefined();
    });

    it('runs the named module: a message round trip, reported as transfer and round_trip', async () => {
      const { families } = await probe({ target: zoo.url('/echo'), module: 'ws_echo' });
      expect(sampleValue(families, 'probe_success')).toBe(1);
      expect(sampleValue(families, 'probe_websocket_failed_due_to_regex')).toBe(0);
      expect(sampleValue(families, 'probe_wsmon_round_trip_seconds')).toBeGreaterThan(0);
      expect(
        sampleValue(families, 'probe_websocket_duration_seconds', { phase: 'round_trip' }),
      ).toBeGreaterThan(0);
      expect(
        sampleValue(families, 'probe_websocket_duration_seconds', { phase: 'transfer' }),
      ).toBeGreaterThan(0);
    });

    it('reports a mismatched reply as blackbox reports a failed regex', async () => {
      const { families } = await probe({ target: zoo.url('/wrong-reply'), module: 'ws_echo' });
      expect(sampleValue(families, 'probe_success')).toBe(0);
      expect(sampleValue(families, 'probe_websocket_up')).toBe(1);
      expect(sampleValue(families, 'probe_websocket_failed_due_to_regex')).toBe(1);
    });

    it('reports the TLS version, cipher and certificate expiry of a wss:// target', async () => {
      const { families } = await probe({ target: zoo.tls.valid.url('/echo'), module: 'ws_tls' });
      expect(sampleValue(families, 'probe_success')).toBe(1);
      expect(sampleValue(families, 'probe_tls_version_info', { version: 'TLS 1.3' })).toBe(1);
      expect(familyNamed(families, 'probe_tls_cipher_info')?.samples[0]?.labels.cipher).toMatch(/^TLS_/);
      // The zoo's certificate is valid for 90 days from its creation.
      const expiry = sampleValue(families, 'probe_ssl_earliest_cert_expiry');
      const days = (expiry - Date.now() / 1000) / 86_400;
      expect(days).toBeGreaterThan(88);
      expect(days).toBeLessThanOrEqual(90);
      expect(Number.isInteger(expiry)).toBe(true);
      const info = familyNamed(families, 'probe_ssl_last_chain_info')?.samples[0]?.labels;
      expect(info).toMatchObject({ subjectalternative: 'localhost' });
      expect(info?.fingerprint_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(sampleValue(families, 'probe_websocket_duration_seconds', { phase: 'tls' })).toBeGreaterThan(0);
      expect(sampleValue(families, 'probe_websocket_duration_seconds', { phase: 'ping' })).toBeGreaterThan(0);
    });

    it('reports an expired certificate: failed, with its expiry in the past', async () => {
      const { families } = await probe({ target: zoo.tls.expired.url('/echo'), module: 'ws_tls' });
      expect(sampleValue(families, 'probe_success')).toBe(0);
      expect(
        sampleValue(families, 'probe_wsmon_failure_info', { cause: 'tls_cert_expired', category: 'SSL' }),
      ).toBe(1);
      expect(sampleValue(families, 'probe_ssl_earliest_cert_expiry')).toBeLessThan(Date.now() / 1000);
    });

    it('answers a refused connection with 200 and probe_success 0, as blackbox does', async () => {
      const { families } = await probe({ target: zoo.refusedUrl });
      expect(sampleValue(families, 'probe_success')).toBe(0);
      expect(sampleValue(families, 'probe_websocket_up')).toBe(0);
      expect(sampleValue(families, 'probe_websocket_status_code')).toBe(0);
      expect(
        sampleValue(families, 'probe_wsmon_failure_info', {
          reason: 'ws_open_failed',
          cause: 'connection_refused',
          category: 'CONNRESET',
        }),
      ).toBe(1);
      expect(familyNamed(families, 'probe_websocket_connection_duration_seconds')).toBeUndefined();
    });

    it('reports the status of an upgrade answered with 426', async () => {
      const { families } = await probe({ target: zoo.url('/status/426') });
      expect(sampleValue(families, 'probe_success')).toBe(0);
      expect(sampleValue(families, 'probe_websocket_status_code')).toBe(426);
      expect(sampleValue(families, 'probe_websocket_connection_upgraded')).toBe(0);
      expect(sampleValue(families, 'probe_wsmon_failure_info', { cause: 'http_unexpected_status' })).toBe(1);
    });

    it('shortens the probe to the scrape timeout Prometheus announces', async () => {
      // The default module waits 10 s for an upgrade answer; Prometheus will only wait 1.5 s.
      const { families, elapsedMs } = await probe(
        { target: zoo.blackholeUrl },
        { 'X-Prometheus-Scrape-Timeout-Seconds': '1.5' },
      );
      expect(sampleValue(families, 'probe_success')).toBe(0);
      expect(sampleValue(families, 'probe_wsmon_failure_info', { cause: 'upgrade_timeout' })).toBe(1);
      expect(sampleValue(families, 'probe_duration_seconds')).toBeLessThan(1.5);
      expect(elapsedMs).toBeLessThan(1500);
    });

    it("uses the module's own timeout when it is the shorter", async () => {
      const { body } = await get(probePath({ target: zoo.blackholeUrl, module: 'ws_quick', debug: 'true' }), {
        'X-Prometheus-Scrape-Timeout-Seconds': '10',
      });
      expect(body).toContain('timeout_ms: 800\n');
      expect(sampleValue(debugSections(body).families, 'probe_success')).toBe(0);
    });

    it.each([
      [{ target: 'ws://127.0.0.1:1/', module: 'nope' }, {}, 'Unknown module "nope"'],
      [{ target: 'https://127.0.0.1:1/' }, {}, 'target: must start with ws:// or wss://'],
      [{}, {}, 'Target parameter is missing'],
      [
        { target: 'ws://127.0.0.1:1/' },
        { 'X-Prometheus-Scrape-Timeout-Seconds': 'later' },
        'Failed to parse timeout',
      ],
    ])('answers 400 with the reason for %j', async (params, headers, reason) => {
      const answer = await get(probePath(params), headers);
      expect(answer.status).toBe(400);
      expect(answer.body).toContain(reason);
    });

    it('shows the phase log, a waterfall, the metrics and the module with debug=true, and no secret', async () => {
      const answer = await get(probePath({ module: 'ws_bearer', debug: 'true' }));
      expect(answer.status).toBe(200);
      expect(answer.contentType).toBe('text/plain; charset=utf-8');
      expect(answer.body.startsWith('Logs for the probe:\n')).toBe(true);
      const { log, families, module } = debugSections(answer.body);
      expect(log).toMatch(
        /level=info module=ws_bearer target=ws:\/\/127\.0\.0\.1:\d+\/auth\/bearer msg="Beginning probe"/,
      );
      expect(log).toMatch(/phase=connect duration_ms=[\d.]+ msg="TCP connect"/);
      expect(log).toMatch(/phase=processing duration_ms=[\d.]+ msg="Upgrade answered" status_code=101/);
      expect(log).toContain('msg="Probe succeeded"');
      expect(log).toMatch(
        /Waterfall \(ms from the probe's start; total [\d.]+ ms\):\n {2}connect +[\d.]+ +\+[\d.]+ \|#/,
      );
      expect(sampleValue(families, 'probe_success')).toBe(1);
      expect(module).toContain('module: ws_bearer\n');
      expect(module).toContain('headers: 1 (values not shown)');
      expect(answer.body).not.toContain(ZOO_SECRETS.bearerToken);
    });

    it('logs each probe its phases when given a debug log', async () => {
      await probe({ target: zoo.refusedUrl });
      expect(logged[0]).toContain('msg="Beginning probe"');
      expect(logged.some((line) => line.includes('phase=connect'))).toBe(true);
      expect(logged.at(-1)).toMatch(/level=error .*msg="Probe failed" .*cause=connection_refused/);
    });

    it('answers 503 while as many probes as allowed are running, and counts it', async () => {
      const slow = get(probePath({ target: zoo.blackholeUrl, module: 'ws_quick' }));
      await expect
        .poll(async () =>
          sampleValue(parseExposition((await get('/metrics')).body), 'wsmon_agent_http_probes_in_flight'),
        )
        .toBe(1);
      const refused = await get(probePath({ target: zoo.url('/echo') }));
      expect(refused.status).toBe(503);
      expect(refused.body).toContain('Too many probes in flight (at most 1)');
      expect((await slow).status).toBe(200);
      const families = parseExposition((await get('/metrics')).body);
      expect(
        sampleValue(families, 'wsmon_agent_http_probe_requests_total', { outcome: 'saturated' }),
      ).toBeGreaterThanOrEqual(1);
      expect(sampleValue(families, 'wsmon_agent_http_probes_in_flight')).toBe(0);
    });
  });

  describe('/metrics', () => {
    it("serves the agent's own families and the probe endpoint's, in a body Prometheus parses", async () => {
      agentMetrics = () => [
        gauge('wsmon_agent_connected', 'Whether the agent holds a session with the control plane', 1),
        counter('wsmon_agent_probes_total', 'Probes run by outcome', 7, { outcome: 'success' }),
        {
          name: 'wsmon_agent_test_last_success',
          help: 'Last result per test',
          type: 'gauge',
          samples: [{ labels: { test: 'say "hi"\\\nnow' }, value: 1 }],
        },
      ];
      const answer = await get('/metrics');
      expect(answer.status).toBe(200);
      expect(answer.contentType).toBe(EXPOSITION_CONTENT_TYPE);
      const families = parseExposition(answer.body);
      expect(sampleValue(families, 'wsmon_agent_connected')).toBe(1);
      expect(familyNamed(families, 'wsmon_agent_probes_total')?.type).toBe('counter');
      expect(sampleValue(families, 'wsmon_agent_test_last_success', { test: 'say "hi"\\\nnow' })).toBe(1);
      expect(sampleValue(families, 'wsmon_agent_http_probes_max')).toBe(1);
      expect(familyNamed(families, 'wsmon_agent_http_probe_requests_total')?.samples).toHaveLength(4);
    });

    it('answers 500, and keeps serving, when the agent cannot give its metrics', async () => {
      agentMetrics = () => {
        throw new Error('spool unreadable');
      };
      const answer = await get('/metrics');
      expect(answer.status).toBe(500);
      expect(answer.body).toContain('spool unreadable');
      expect((await get('/healthz')).status).toBe(200);
    });
  });

  describe('/healthz and /readyz', () => {
    it('answers /healthz while the process serves', async () => {
      const answer = await get('/healthz');
      expect([answer.status, answer.body]).toEqual([200, 'ok\n']);
    });

    it('answers /readyz 200 only when connected and configured, else 503 with the reason', async () => {
      readiness = { ready: false, reason: 'not connected to the control plane (connecting)' };
      const notReady = await get('/readyz');
      expect([notReady.status, notReady.body]).toEqual([
        503,
        'not ready: not connected to the control plane (connecting)\n',
      ]);
      readiness = { ready: true };
      const ready = await get('/readyz');
      expect([ready.status, ready.body]).toEqual([200, 'ready\n']);
    });
  });

  it('answers other paths 404 and other methods 405', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/metrics', {}, 'POST')).status).toBe(405);
    expect((await get('/healthz', {}, 'HEAD')).status).toBe(200);
  });
});

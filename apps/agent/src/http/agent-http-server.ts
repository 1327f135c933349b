import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXPOSITION_CONTENT_TYPE, gauge, writeExposition, type MetricFamily } from '@wsmon/metrics';
import { createProbe, type ProbeRuntime } from '@wsmon/probe';
import { moduleSummary, probeDebugOutput, probePhaseLog, probeWaterfall } from './probe-debug';
import { probeMetricFamilies } from './probe-metrics';
import { DEFAULT_TIMEOUT_OFFSET_SECONDS, resolveProbeRequest, type ProbeModules } from './probe-modules';

/** Whether the agent should receive traffic: connected to the control plane and holding a configuration. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface AgentHttpServerOptions {
  /** Loopback by default in the agent's configuration: `/probe` runs probes on request. */
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly readiness: () => Readiness;
  /** The agent's own families (health, queue depth, probes run by outcome, last result per test). */
  readonly agentMetrics: () => readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
  readonly modules: ProbeModules;
  /** `/probe` requests running at once at most; more are answered 503. */
  readonly maxConcurrentProbes: number;
  /** Seconds kept from `X-Prometheus-Scrape-Timeout-Seconds` for the answer to arrive (blackbox: 0.5). */
  readonly timeoutOffsetSeconds?: number;
  readonly probeRuntime?: ProbeRuntime;
  /** Receives each `/probe` run's phase log, line by line (the agent passes one when started with --debug). */
  readonly debugLog?: (line: string) => void;
}

export interface AgentHttpServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections; resolves once in-flight requests (probes are bounded by their timeout) end. */
  close(): Promise<void>;
}

const PROBE_OUTCOMES = ['success', 'failure', 'bad_request', 'saturated'] as const;
type ProbeOutcome = (typeof PROBE_OUTCOMES)[number];

const TEXT = 'text/plain; charset=utf-8';

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

/**
 * The agent's local HTTP port: `/healthz`, `/readyz`, `/metrics` and a blackbox_exporter-compatible
 * `/probe?target=…&module=…&debug=true`. Plain `node:http`: four routes need no framework.
 */
export async function startAgentHttpServer(options: AgentHttpServerOptions): Promise<AgentHttpServer> {
  const offset = options.timeoutOffsetSeconds ?? DEFAULT_TIMEOUT_OFFSET_SECONDS;
  const outcomes = new Map<ProbeOutcome, number>(PROBE_OUTCOMES.map((o) => [o, 0]));
  let inFlight = 0;
  const count = (outcome: ProbeOutcome) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);

  const ownFamilies = (): MetricFamily[] => [
    {
      name: 'wsmon_agent_http_probe_requests_total',
      help: 'Requests to /probe by outcome: probe success or failure, bad request (400), saturated (503)',
      type: 'counter',
      samples: PROBE_OUTCOMES.map((outcome) => ({ labels: { outcome }, value: outcomes.get(outcome) ?? 0 })),
    },
    gauge('wsmon_agent_http_probes_in_flight', 'Probes running for /probe requests', inFlight),
    gauge(
      'wsmon_agent_http_probes_max',
      'Probes /probe may run at once before it answers 503',
      options.maxConcurrentProbes,
    ),
  ];

  async function metrics(res: ServerResponse): Promise<void> {
    const families = [...(await options.agentMetrics()), ...ownFamilies()];
    send(res, 200, EXPOSITION_CONTENT_TYPE, writeExposition(families));
  }

  async function probe(req: IncomingMessage, res: ServerResponse, params: URLSearchParams): Promise<void> {
    const header = req.headers['x-prometheus-scrape-timeout-seconds'];
    const resolved = resolveProbeRequest(
      options.modules,
      {
        module: params.get('module'),
        target: params.get('target'),
        scrapeTimeout: Array.isArray(header) ? header[0] : header,
      },
      offset,
    );
    if (!resolved.ok) {
      count('bad_request');
      return send(res, 400, TEXT, `${resolved.reason}\n`);
    }
    if (inFlight >= options.maxConcurrentProbes) {
      count('saturated');
      res.setHeader('Retry-After', '1');
      return send(
        res,
        503,
        TEXT,
        `Too many probes in flight (at most ${options.maxConcurrentProbes}); retry later\n`,
      );
    }
    const { config, module, moduleTimeoutMs } = resolved;
    inFlight++;
    const result = await createProbe(config, options.probeRuntime)
      .run()
      .finally(() => inFlight--);
    count(result.success ? 'success' : 'failure');
    const log = probePhaseLog(result, { module: module.name, timeoutMs: config.timeout_ms });
    if (options.debugLog) for (const line of log) options.debugLog(line);
    const metrics = writeExposition(probeMetricFamilies(result, config));
    if (params.get('debug') === 'true') {
      const body = probeDebugOutput({
        log,
        waterfall: probeWaterfall(result),
        metrics,
        module: moduleSummary(module.name, config, moduleTimeoutMs),
      });
      return send(res, 200, TEXT, body);
    }
    // A failed probe is still a successful scrape: probe_success 0 says what happened.
    send(res, 200, EXPOSITION_CONTENT_TYPE, metrics);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, TEXT, 'Method not allowed\n');
    }
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    switch (url.pathname) {
      case '/healthz':
        return send(res, 200, TEXT, 'ok\n');
      case '/readyz': {
        const readiness = options.readiness();
        if (readiness.ready) return send(res, 200, TEXT, 'ready\n');
        return send(res, 503, TEXT, `not ready: ${readiness.reason}\n`);
      }
      case '/metrics':
        return metrics(res);
      case '/probe':
        return probe(req, res, url.searchParams);
      default:
        return send(res, 404, TEXT, 'Not found: try /healthz, /readyz, /metrics or /probe?target=wss://…\n');
    }
  }

  const server: Server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      // A bug, not a request problem: say so without a stack, and keep serving.
      if (!res.headersSent) send(res, 500, TEXT, `Internal error: ${(error as Error).message}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

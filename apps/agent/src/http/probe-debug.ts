import type { ProbeConfig, ProbeResult } from '@wsmon/contracts';
import { msToSeconds, tlsVersionLabel } from './probe-metrics';

/** A logfmt value: bare when it can be, else quoted with `\`, `"` and line breaks escaped. */
export function logfmtValue(value: string | number | boolean): string {
  const text = String(value);
  if (text !== '' && !/[\s="\\]/.test(text)) return text;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

type Fields = Record<string, string | number | boolean | null | undefined>;

function logfmt(fields: Fields): string {
  return Object.entries(fields)
    .filter(
      (entry): entry is [string, string | number | boolean] => entry[1] !== null && entry[1] !== undefined,
    )
    .map(([key, value]) => `${key}=${logfmtValue(value)}`)
    .join(' ');
}

export interface ProbeLogContext {
  readonly module: string;
  readonly timeoutMs: number;
}

/**
 * The probe's phases as logfmt lines, in the order they happened: what `--debug` logs for each probe
 * and what `/probe?debug=true` shows first. Built from the result, which the engine has already
 * scrubbed of secrets; request headers are never part of it.
 */
export function probePhaseLog(result: ProbeResult, context: ProbeLogContext): string[] {
  const t = result.timings;
  const base = { module: context.module, target: result.url };
  const lines: string[] = [
    logfmt({
      ts: result.started_at,
      level: 'info',
      ...base,
      msg: 'Beginning probe',
      timeout_seconds: msToSeconds(context.timeoutMs),
    }),
  ];
  const debug = (fields: Fields) => lines.push(logfmt({ level: 'debug', ...base, ...fields }));
  const { remote_address: address, remote_port: port, ip_family: family } = result.connection;
  if (t.dns_ms !== null) {
    debug({
      phase: 'resolve',
      duration_ms: t.dns_ms,
      msg: 'Resolved target address',
      ip: address,
      ip_family: family,
    });
  }
  if (t.tcp_connect_ms !== null) {
    debug({
      phase: 'connect',
      duration_ms: t.tcp_connect_ms,
      msg: 'TCP connect',
      remote: `${address}:${port}`,
    });
  }
  const tls = result.tls;
  if (tls) {
    debug({
      phase: 'tls',
      duration_ms: t.tls_handshake_ms,
      msg: 'TLS handshake',
      version: tlsVersionLabel(tls.protocol),
      cipher: tls.cipher,
      authorized: tls.authorized,
      authorization_error: tls.authorization_error,
      subject: tls.certificate?.subject,
      issuer: tls.certificate?.issuer,
      not_after: tls.certificate?.valid_to,
      days_remaining: tls.certificate?.days_remaining,
    });
  }
  if (result.upgrade) {
    debug({
      phase: 'processing',
      duration_ms: t.upgrade_ms,
      msg: 'Upgrade answered',
      status_code: result.upgrade.status_code,
      status: result.upgrade.status_message,
    });
  } else if (t.upgrade_ms !== null) {
    debug({ phase: 'processing', duration_ms: t.upgrade_ms, msg: 'Upgrade not answered' });
  }
  if (t.open_ms !== null) {
    debug({
      msg: 'WebSocket open',
      open_ms: t.open_ms,
      subprotocol: result.subprotocol,
      extensions: result.extensions,
    });
  }
  for (const step of result.steps) {
    if (step.type === 'connect') continue;
    debug({
      phase: 'transfer',
      step: step.index,
      type: step.type,
      passed: step.passed,
      duration_ms: step.duration_ms,
      round_trip_ms: step.round_trip_ms,
      messages_received: step.messages_received,
      pongs_received: step.pongs_received,
      close_code: step.close_code,
      detail: step.detail,
    });
  }
  if (result.close) {
    debug({
      phase: 'close',
      duration_ms: t.close_ms,
      msg: 'Closed',
      code: result.close.code,
      reason: result.close.reason,
      initiator: result.close.initiator,
      clean: result.close.clean,
    });
  }
  for (const assertion of result.assertions) {
    debug({ msg: 'Assertion', type: assertion.type, passed: assertion.passed, detail: assertion.message });
  }
  const end = new Date(Date.parse(result.started_at) + t.total_ms).toISOString();
  const duration = msToSeconds(t.total_ms);
  const failure = result.failure;
  lines.push(
    failure
      ? logfmt({
          ts: end,
          level: 'error',
          ...base,
          msg: 'Probe failed',
          duration_seconds: duration,
          reason: failure.reason,
          cause: failure.cause,
          category: failure.category,
          error_code: failure.error_code,
          err: failure.message,
        })
      : logfmt({ ts: end, level: 'info', ...base, msg: 'Probe succeeded', duration_seconds: duration }),
  );
  return lines;
}

const BAR_WIDTH = 40;

/**
 * A waterfall of the probe: each phase on its own row, offset from the probe's start and drawn to
 * scale. The engine measures phase durations, not their start times; phases follow one another, so
 * each starts where the previous ended (open is where the handshake phases end, close ends the probe).
 */
export function probeWaterfall(result: ProbeResult): string {
  const t = result.timings;
  const rows: { name: string; startMs: number; durationMs: number; note?: string }[] = [];
  let at = 0;
  const add = (name: string, durationMs: number | null, note?: string) => {
    if (durationMs === null) return;
    rows.push({ name, startMs: at, durationMs, ...(note === undefined ? {} : { note }) });
    at += durationMs;
  };
  add('resolve', t.dns_ms);
  add('connect', t.tcp_connect_ms);
  add('tls', t.tls_handshake_ms);
  add('upgrade', t.upgrade_ms, result.upgrade ? `HTTP ${result.upgrade.status_code}` : 'no answer');
  if (t.open_ms !== null) at = t.open_ms;
  for (const step of result.steps) {
    if (step.type !== 'connect')
      add(`${step.type} #${step.index}`, step.duration_ms, step.passed ? 'ok' : 'FAILED');
  }
  if (t.close_ms !== null) {
    at = Math.max(at, t.total_ms - t.close_ms);
    add('close', t.close_ms, result.close ? `code ${result.close.code}` : undefined);
  }
  const total = Math.max(t.total_ms, at, 0.001);
  const scale = BAR_WIDTH / total;
  const lines = [`Waterfall (ms from the probe's start; total ${t.total_ms} ms):`];
  for (const row of rows) {
    const pad = Math.min(BAR_WIDTH - 1, Math.floor(row.startMs * scale));
    const length = Math.max(1, Math.round(row.durationMs * scale));
    const bar = `${' '.repeat(pad)}${'#'.repeat(Math.min(length, BAR_WIDTH - pad))}`.padEnd(BAR_WIDTH);
    const start = row.startMs.toFixed(3).padStart(9);
    const duration = `+${row.durationMs.toFixed(3)}`.padStart(10);
    lines.push(`  ${row.name.padEnd(12)} ${start} ${duration} |${bar}| ${row.note ?? ''}`.trimEnd());
  }
  if (t.open_ms !== null) lines.push(`  ${'open at'.padEnd(12)} ${t.open_ms.toFixed(3).padStart(9)}`);
  if (result.failure)
    lines.push(`  ${'failed'.padEnd(12)} ${result.failure.reason} (${result.failure.cause})`);
  return lines.join('\n');
}

/**
 * What the module asked for, without anything that may be secret: headers, cookies, credentials, CA
 * bundles and messages are counted or left out (blackbox prints its module whole; wsmon's may hold
 * credentials).
 */
export function moduleSummary(name: string, config: ProbeConfig, moduleTimeoutMs: number): string {
  const lines = [
    `module: ${name}`,
    `timeout_ms: ${config.timeout_ms}${config.timeout_ms === moduleTimeoutMs ? '' : ` (module: ${moduleTimeoutMs}, shortened to the scrape timeout)`}`,
    `interpretation: ${config.interpretation}`,
    `ping_mode: ${config.ping_mode}`,
    `ip_version: ${config.ip_version}`,
  ];
  if (config.protocols.length > 0) lines.push(`protocols: ${config.protocols.join(', ')}`);
  const headerCount = Object.keys(config.headers).length;
  if (headerCount > 0) lines.push(`headers: ${headerCount} (values not shown)`);
  if (config.cookies !== undefined) lines.push('cookies: set (not shown)');
  if (config.basic_auth !== undefined) lines.push('basic_auth: set (not shown)');
  if (config.tls) {
    const tls = config.tls;
    lines.push(
      `tls: skip_verify=${tls.skip_verify}${tls.server_name ? ` server_name=${tls.server_name}` : ''}${tls.ca_pem ? ' ca_pem=set' : ''}`,
    );
  }
  if (config.steps) lines.push(`steps: ${config.steps.map((s) => s.type).join(', ')}`);
  if (config.assertions.length > 0)
    lines.push(`assertions: ${config.assertions.map((a) => a.type).join(', ')}`);
  return lines.join('\n');
}

/**
 * The body of `/probe?debug=true`, laid out as blackbox_exporter lays it out: the probe's log, then
 * the metrics that would have been returned, then the module.
 */
export function probeDebugOutput(parts: {
  readonly log: readonly string[];
  readonly waterfall: string;
  readonly metrics: string;
  readonly module: string;
}): string {
  return [
    'Logs for the probe:',
    ...parts.log,
    '',
    parts.waterfall,
    '',
    '',
    '',
    'Metrics that would have been returned:',
    parts.metrics.trimEnd(),
    '',
    '',
    '',
    'Module configuration:',
    parts.module,
    '',
  ].join('\n');
}

import { spawn } from 'node:child_process';
import type { ProbeConfigInput } from '@wsmon/contracts';
import {
  DNS_SERVFAIL_NAME,
  DNS_SILENT_NAME,
  startTargetZoo,
  startTestDnsServer,
  ZOO_SUBPROTOCOL,
  type TargetZoo,
  type TestDnsServer,
} from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const RUNNER = 'libs/probe/e2e/failing-probes.runner.ts';
const PROBES = 1000;
const CONCURRENCY = 50;
/**
 * Resources that belong to the child process itself, not to any probe: its stdio, and tsx
 * writing its transform cache (the engine does no file I/O at all).
 */
const PROCESS_RESOURCES = new Set(['PipeWrap', 'TTYWrap', 'FSReqCallback']);

let zoo: TargetZoo;
let dns: TestDnsServer;

beforeAll(async () => {
  zoo = await startTargetZoo();
  // The TLS targets are named localhost; every other name is unknown to this server.
  dns = await startTestDnsServer({ localhost: '127.0.0.1' });
});

afterAll(async () => {
  await zoo.close();
  await dns.close();
});

/** Every failing path of the zoo, each ending a different way, timeouts kept short. */
function failingConfigs(): ProbeConfigInput[] {
  const rt = (url: string, extra: Partial<ProbeConfigInput> = {}): ProbeConfigInput => ({
    url,
    interpretation: 'round_trip_latency',
    ping_mode: 'message',
    send_message: 'ping',
    timeout_ms: 300,
    ...extra,
  });
  return [
    { url: zoo.refusedUrl },
    { url: zoo.resetUrl },
    { url: 'ws://no-such-host.zoo.test/echo' },
    { url: `ws://${DNS_SILENT_NAME}/echo`, timeout_ms: 150 },
    { url: zoo.url('/status/426') },
    { url: zoo.url('/status/401') },
    rt(zoo.url('/close-1011')),
    rt(zoo.url('/destroy')),
    rt(zoo.url('/silent'), { timeout_ms: 150 }),
    rt(zoo.url('/wrong-reply'), { expect_message: 'pong' }),
    { url: zoo.url('/slow-handshake?delay_ms=1000'), timeout_ms: 150 },
    { url: zoo.blackholeUrl, timeout_ms: 150 },
    { url: zoo.blackholeUrl.replace('ws:', 'wss:'), timeout_ms: 150 },
    { url: zoo.url('/echo').replace('ws:', 'wss:') },
    { url: zoo.tls.selfSigned.url('/echo') },
    { url: zoo.tls.expired.url('/echo'), tls: { ca_pem: zoo.tls.caPem } },
    { url: zoo.url('/bad-accept') },
    { url: zoo.url('/unoffered-subprotocol') },
    { url: `ws://${DNS_SERVFAIL_NAME}/echo` },
    { url: zoo.url('/silent'), steps: [{ type: 'connect' }, { type: 'ping', timeout_ms: 100 }] },
    {
      url: zoo.url('/silent'),
      steps: [{ type: 'connect' }, { type: 'hold', duration_ms: 100, min_messages: 1 }],
    },
    {
      url: zoo.url('/no-close-reply'),
      steps: [{ type: 'connect' }, { type: 'disconnect', timeout_ms: 100 }],
    },
    // Protocol profiles: an echo is no protocol peer; sticky sessions cut by the deadline mid-way.
    { url: zoo.url('/echo'), profile: 'stomp' },
    { url: zoo.url('/echo'), profile: 'json_rpc', json_rpc: { mode: 'call', method: 'eth_chainId' } },
    { url: zoo.url('/silent'), profile: 'socket_io', socket_io: { connect_timeout_ms: 100 } },
    {
      url: zoo.url('/subprotocol'),
      profile: 'graphql',
      protocols: ['graphql-transport-ws', ZOO_SUBPROTOCOL],
    },
    {
      url: zoo.url('/slow-handshake?delay_ms=40'),
      timeout_ms: 150,
      profile: 'sticky_session',
      sticky_session: { connections: 10, server_id_path: '$.server_id', send: '{"server_id":"a"}' },
    },
  ];
}

interface RunnerReport {
  outcomes: Record<string, number>;
  resources: string[];
}

function runChild(
  input: object,
  timeoutMs: number,
): Promise<{ code: number | null; report: RunnerReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`the probe process did not exit by itself: something was left open\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, report: JSON.parse(stdout) as RunnerReport, stderr });
      } catch {
        reject(new Error(`no report from the probe process (exit ${code}): ${stderr}`));
      }
    });
  });
}

describe('the probe engine on failing paths', () => {
  it(`leaves no socket, timer or listener behind after ${PROBES} failing probes`, async () => {
    const configs = failingConfigs();
    const { code, report, stderr } = await runChild(
      { configs, total: PROBES, concurrency: CONCURRENCY, dnsServer: dns.address },
      90_000,
    );

    expect(stderr).toBe('');
    expect(code).toBe(0);
    const counted = Object.values(report.outcomes).reduce((a, b) => a + b, 0);
    expect(counted).toBe(PROBES);
    expect(report.outcomes.success).toBeUndefined();
    // Every configured path failed its own way. The deadline cuts the sticky session's later
    // connections in their upgrade, or under load in their TCP connect: both are that one path.
    const outcomes = Object.keys(report.outcomes).filter(
      (k) => k !== 'ws_handshake_timeout/tcp_connect_timeout',
    );
    expect(outcomes.sort()).toEqual(
      [
        'ws_open_failed/connection_refused',
        'ws_open_failed/connection_reset',
        'ws_open_failed/dns_not_found',
        'ws_handshake_timeout/dns_timeout',
        'ws_open_failed/http_unexpected_status',
        'ws_closed_early/closed_by_server',
        'ws_closed_early/abnormal_closure',
        'ws_reply_timeout/reply_timeout',
        'ws_reply_mismatch/assertion',
        'ws_handshake_timeout/upgrade_timeout',
        'ws_handshake_timeout/tls_handshake_timeout',
        'ws_open_failed/tls_handshake_failed',
        'ws_open_failed/tls_self_signed',
        'ws_open_failed/tls_cert_expired',
        'ws_open_failed/invalid_upgrade_response',
        'ws_open_failed/subprotocol_mismatch',
        'ws_open_failed/dns_failure',
        'ws_reply_timeout/pong_timeout',
        'ws_reply_timeout/hold_too_few_messages',
        'ws_reply_timeout/close_timeout',
        'protocol_error/stomp_invalid_frame',
        'protocol_error/jsonrpc_invalid_response',
        'ws_reply_timeout/socketio_open_timeout',
        'protocol_error/graphql_invalid_message',
      ].sort(),
    );
    expect(report.resources.filter((r) => !PROCESS_RESOURCES.has(r))).toEqual([]);
    // And the servers saw every connection closed.
    await zoo.waitForNoOpenSockets(5000);
    expect(zoo.stats().openSockets).toBe(0);
  }, 120_000);
});

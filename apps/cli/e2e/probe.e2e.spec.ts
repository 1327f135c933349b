import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeResult } from '@wsmon/contracts';
import { startTargetZoo, ZOO_SECRETS, type TargetZoo } from '@wsmon/testing';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'apps/cli/bin/wsmon.js');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the CLI as a real child process. Asynchronous on purpose: the zoo's servers live in this
 * process and must keep answering while the child probes them.
 */
function run(
  command: string,
  args: readonly string[],
  options: { stdin?: string; env?: NodeJS.ProcessEnv } = {},
) {
  return new Promise<Run>((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'pipe' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(options.stdin ?? '');
  });
}

const wsmon = (args: readonly string[], options?: { stdin?: string }) =>
  run(process.execPath, [BIN, ...args], options);

function jsonResult(run: Run): ProbeResult {
  return JSON.parse(run.stdout) as ProbeResult;
}

let zoo: TargetZoo;
let dir: string;

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['scripts/build.mjs'], { cwd: ROOT });
  zoo = await startTargetZoo();
  dir = await mkdtemp(join(tmpdir(), 'wsmon-cli-e2e-'));
});

afterAll(async () => {
  await zoo?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('wsmon probe, end to end', () => {
  it('exits 0 on a healthy echo round trip, and --json prints only the ProbeResult', async () => {
    const result = await wsmon([
      'probe',
      zoo.url('/echo'),
      '--send',
      'hello',
      '--expect',
      'hell',
      '--interpretation',
      'round_trip_latency',
      '--json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const probe = jsonResult(result);
    expect(probe).toMatchObject({
      success: true,
      interpretation: 'round_trip_latency',
      failure: null,
      url: zoo.url('/echo'),
      messages_sent: 1,
      messages_received: 1,
      last_message: { data: 'hello' },
      close: { code: 1000, initiator: 'client', clean: true },
    });
    expect(probe.value).toBe(probe.timings.round_trip_ms);
    expect(probe.value).toBeGreaterThan(0);
  });

  it('prints the waterfall and a PASS verdict, without ANSI colour when stdout is not a terminal', async () => {
    const result = await wsmon([
      'probe',
      zoo.url('/echo'),
      '--ping-mode',
      'protocol',
      '--assert',
      'close_code is 1000',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('\u001b');
    expect(result.stdout.split('\n')[0]).toBe(`${zoo.url('/echo')}  → 127.0.0.1:${zoo.port} (IPv4)`);
    expect(result.stdout).toMatch(/\n {2}tcp connect +\d+\.\d\d ms {2}[█▏▎▍▌▋▊▉]+\n/);
    expect(result.stdout).toMatch(/\n {2}open +\d+\.\d\d ms {2}[█▏▎▍▌▋▊▉]+ {2}\(total to open\)\n/);
    expect(result.stdout).toMatch(/\n {2}ping +\d+\.\d\d ms/);
    expect(result.stdout).toMatch(/\n {2}tls handshake +—\n/);
    expect(result.stdout).toContain('upgrade       HTTP 101 Switching Protocols\n');
    expect(result.stdout).toContain('close         1000 · by client · clean\n');
    expect(result.stdout).toMatch(/ {2}✓ close code: actual 1000 versus expected to be 1000\n/);
    expect(result.stdout).toMatch(/\nPASS {2}handshake_latency = \d+\.\d\d ms\n$/);
  });

  it('exits 1 with the reason on a refused port', async () => {
    const result = await wsmon(['probe', zoo.refusedUrl]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /\nFAIL {2}ws_open_failed · connection_refused \[CONNRESET\] {2}TCP connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/,
    );
    const json = await wsmon(['probe', zoo.refusedUrl, '--json']);
    expect(json.code).toBe(1);
    expect(jsonResult(json).failure).toMatchObject({ reason: 'ws_open_failed', cause: 'connection_refused' });
  });

  it('exits 1 on a 426 and shows the status line, the headers and the body', async () => {
    const result = await wsmon(['probe', zoo.url('/status/426')]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('upgrade       HTTP 426 Upgrade Required\n');
    expect(result.stdout).toContain('              x-zoo-status: 426\n');
    expect(result.stdout).toContain('              upgrade: websocket\n');
    expect(result.stdout).toContain('              │ <html><body>status 426');
    expect(result.stdout).toMatch(
      /\nFAIL {2}ws_open_failed · http_unexpected_status \[INVALID_REQUEST\] {2}the server answered the upgrade with HTTP 426 Upgrade Required instead of 101 Switching Protocols\n$/,
    );
  });

  it('exits 1 when the reply never comes', async () => {
    const result = await wsmon([
      'probe',
      zoo.url('/silent'),
      '--send',
      'ping',
      '--timeout-ms',
      '300',
      '--json',
    ]);
    expect(result.code).toBe(1);
    expect(jsonResult(result).failure).toMatchObject({ reason: 'ws_reply_timeout', category: 'TIMEOUT' });
  });

  it('exits 2 on a bad URL scheme with the field error on stderr, without probing', async () => {
    const result = await wsmon(['probe', 'http://127.0.0.1:1/', '--json']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'wsmon: invalid probe configuration, nothing was probed:\n' +
        '  url: must start with ws:// or wss:// (got http://) [ws_scheme] (the url argument)\n',
    );
  });

  it('exits 2 on an unknown flag, a missing URL and an unreadable --config', async () => {
    const unknown = await wsmon(['probe', zoo.url('/echo'), '--no-such-flag']);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain("wsmon: unknown option '--no-such-flag'");
    expect(await wsmon(['probe'])).toMatchObject({
      code: 2,
      stdout: '',
      stderr: expect.stringMatching(/^wsmon: missing URL/) as unknown,
    });
    const missing = await wsmon(['probe', '--config', join(dir, 'missing.json')]);
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toMatch(/^wsmon: --config: cannot read .*missing\.json \(ENOENT\)\n$/);
  });

  it('reads a whole configuration from standard input with --config -, flags overriding it', async () => {
    const config = {
      url: zoo.url('/echo'),
      interpretation: 'round_trip_latency',
      ping_mode: 'message',
      send_message: '{"op":"ping"}',
      expect_message: '"op":"ping"',
      timeout_ms: 5000,
    };
    const result = await wsmon(
      ['probe', '--config', '-', '--json', '--assert', 'received_message matches ^\\{'],
      {
        stdin: JSON.stringify(config),
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const probe = jsonResult(result);
    expect(probe.success).toBe(true);
    expect(probe.last_message?.data).toBe('{"op":"ping"}');
    expect(probe.assertions).toMatchObject([{ type: 'received_message', passed: true }]);
  });

  it('runs a multi-step scenario given with --step shorthands', async () => {
    const result = await wsmon([
      'probe',
      zoo.url('/greeting'),
      '--step',
      'receive=welcome',
      '--step',
      'send=hi',
      '--step',
      '{"type":"receive","expect_message":"hi","timeout_ms":2000}',
      '--step',
      'hold=100',
      '--step',
      'disconnect=1000',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ {2}✓ #0 connect/);
    expect(result.stdout).toMatch(/ {2}✓ #1 receive/);
    expect(result.stdout).toMatch(/ {2}✓ #5 disconnect +\d+\.\d\d ms {2}close 1000\n/);
  });

  it('never prints a secret header value, cookie or password, even when the server reflects it', async () => {
    const token = 'e2e-secret-token-5be1';
    const cases: string[][] = [
      // The zoo's 401 body reflects the Authorization header it received.
      ['probe', zoo.url('/auth/bearer'), '-H', `Authorization: Bearer ${token}`],
      ['probe', zoo.url('/auth/bearer'), '-H', `Authorization: Bearer ${token}`, '--json'],
      ['probe', zoo.url('/auth/cookie'), '--cookie', `session=${token}`],
      ['probe', zoo.url('/auth/basic'), '--basic-auth', `${ZOO_SECRETS.basicUser}:${token}`, '--json'],
      // Rejected before probing: the usage errors must not echo the values either.
      ['probe', 'http://127.0.0.1:1/', '-H', `X-Api-Key: ${token}`, '--cookie', `s=${token}`],
      ['probe', zoo.url('/echo'), '-H', `Bearer ${token}`],
      ['probe', zoo.url('/echo'), '--basic-auth', token],
    ];
    for (const args of cases) {
      const result = await wsmon(args);
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stdout + result.stderr, args.join(' ')).not.toContain(token);
    }
    const authorized = await wsmon([
      'probe',
      zoo.url('/auth/bearer'),
      '-H',
      `Authorization: Bearer ${ZOO_SECRETS.bearerToken}`,
      '--send',
      'x',
      '--json',
    ]);
    expect(authorized.code).toBe(0);
    expect(authorized.stdout + authorized.stderr).not.toContain(ZOO_SECRETS.bearerToken);
  });

  it('verifies TLS: fails on a self-signed certificate, passes with -k or the CA from --tls-ca', async () => {
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, zoo.tls.caPem);
    const rejected = await wsmon(['probe', zoo.tls.selfSigned.url('/echo'), '--ip-version', 'ipv4']);
    expect(rejected.code).toBe(1);
    expect(rejected.stdout).toMatch(/\nFAIL {2}ws_open_failed · tls_self_signed \[SSL\]/);
    expect(rejected.stdout).toContain('not verified (DEPTH_ZERO_SELF_SIGNED_CERT)');

    const insecure = await wsmon(['probe', zoo.tls.selfSigned.url('/echo'), '--ip-version', 'ipv4', '-k']);
    expect(insecure.code).toBe(0);
    expect(insecure.stdout).toMatch(/\n {2}tls handshake +\d+\.\d\d ms/);

    const trusted = await wsmon([
      'probe',
      zoo.tls.valid.url('/echo'),
      '--ip-version',
      'ipv4',
      '--tls-ca',
      caFile,
      '--assert',
      'certificate_days_remaining greater_than 14',
    ]);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toMatch(/\ntls +TLSv1\.\d · \S+ · verified\n {14}subject {2}CN=localhost/);
    expect(trusted.stdout).toMatch(/ {2}✓ certificate days remaining: actual \d+(\.\d+)? days/);
  });

  it('shows --version and the help of wsmon and of wsmon probe, exiting 0', async () => {
    const version = await wsmon(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
    const help = await wsmon(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('probe [options] [url]');
    const probeHelp = await wsmon(['probe', '--help']);
    expect(probeHelp.code).toBe(0);
    expect(probeHelp.stdout).toContain('Usage: wsmon probe [options] [url]');
    expect(probeHelp.stdout).toContain('Examples:');
  });

  it('exits 2 for a missing or unknown command', async () => {
    const bare = await wsmon([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: wsmon [options] [command]');
    const unknown = await wsmon(['probes']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("wsmon: unknown command 'probes'");
  });

  it('runs as `npx wsmon` through the workspace bin link', async () => {
    const result = await run('npx', ['--no', 'wsmon', 'probe', zoo.url('/echo'), '--json']);
    expect(result.code).toBe(0);
    expect(jsonResult(result).success).toBe(true);
  });
});

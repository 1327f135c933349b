import { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import { getZooTlsMaterial } from './tls-fixtures';
import {
  startTargetZoo,
  ZOO_SECRETS,
  ZOO_SERVER_ID,
  ZOO_SUBPROTOCOL,
  type TargetZoo,
  type TlsTarget,
} from './ws-target-zoo';

interface Received {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

interface HttpRejection {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const noop = (): void => undefined;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const clients = new Set<WebSocket>();
const rawSockets = new Set<net.Socket>();
const inboxes = new WeakMap<WebSocket, Inbox>();

/**
 * Messages of one client, recorded from its creation: ws may emit a message sent right after the 101 in a
 * nextTick, before the code awaiting 'open' resumes.
 */
class Inbox {
  private readonly messages: Received[] = [];
  private readonly waiters: { resolve: (message: Received) => void; reject: (error: Error) => void }[] = [];
  private closeCode: number | undefined;

  constructor(ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const message = { data: toBuffer(data), isBinary };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(message);
      else this.messages.push(message);
    });
    ws.on('close', (code: number) => {
      this.closeCode = code;
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`closed with ${code}`));
    });
  }

  next(): Promise<Received> {
    const message = this.messages.shift();
    if (message) return Promise.resolve(message);
    if (this.closeCode !== undefined) return Promise.reject(new Error(`closed with ${this.closeCode}`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  drain(): Received[] {
    return this.messages.splice(0);
  }
}

function newClient(url: string, options?: ClientOptions, protocols?: string[]): WebSocket {
  const ws = new WebSocket(url, protocols ?? [], options);
  clients.add(ws);
  inboxes.set(ws, new Inbox(ws));
  return ws;
}

function inbox(ws: WebSocket): Inbox {
  const found = inboxes.get(ws);
  if (!found) throw new Error('not a client of this spec');
  return found;
}

async function connect(url: string, options?: ClientOptions, protocols?: string[]): Promise<WebSocket> {
  const ws = newClient(url, options, protocols);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', noop);
  return ws;
}

/** The error a connection attempt ends with; fails if it opens instead. */
function failure(url: string, options?: ClientOptions): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    const ws = newClient(url, options);
    ws.once('open', () => reject(new Error(`${url} unexpectedly opened`)));
    ws.once('error', resolve);
  });
}

/** The complete non-101 HTTP response an upgrade got. */
function rejection(url: string, options?: ClientOptions, protocols?: string[]): Promise<HttpRejection> {
  return new Promise((resolve, reject) => {
    const ws = newClient(url, options, protocols);
    ws.once('open', () => reject(new Error(`${url} unexpectedly opened`)));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        });
        // With a listener, ws leaves the handshake to us: terminate() is what ends it (error, then 1006).
        ws.on('error', noop);
        ws.terminate();
      });
    });
  });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

function nextMessage(ws: WebSocket): Promise<Received> {
  return inbox(ws).next();
}

async function nextJson(ws: WebSocket): Promise<unknown> {
  const { data, isBinary } = await nextMessage(ws);
  expect(isBinary).toBe(false);
  return JSON.parse(data.toString()) as unknown;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed');
  return new Promise((resolve) =>
    ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
  );
}

function pong(ws: WebSocket, payload: string): Promise<string> {
  const received = new Promise<string>((resolve) =>
    ws.once('pong', (data: Buffer) => resolve(data.toString())),
  );
  ws.ping(payload);
  return received;
}

/** Everything the server sends during `ms` milliseconds (messages and pongs). */
async function receivedDuring(ws: WebSocket, ms: number): Promise<string[]> {
  const seen = inbox(ws)
    .drain()
    .map(({ data }) => `message ${data.toString()}`);
  const onPong = (data: Buffer): number => seen.push(`pong ${data.toString()}`);
  ws.on('pong', onPong);
  await sleep(ms);
  ws.off('pong', onPong);
  return [
    ...seen,
    ...inbox(ws)
      .drain()
      .map(({ data }) => `message ${data.toString()}`),
  ];
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    rawSockets.add(socket);
    socket.once('error', reject);
  });
}

function upgradeRequest(path: string): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n');
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Polls, a bounded number of times, until `predicate` holds. */
async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  for (let waited = 0; !predicate(); waited += 10) {
    if (waited >= timeoutMs) throw new Error(`condition still false after ${timeoutMs} ms`);
    await sleep(10);
  }
}

function countResources(kind: string): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === kind).length;
}

describe(startTargetZoo.name, () => {
  let zoo: TargetZoo;

  beforeAll(async () => {
    zoo = await startTargetZoo();
  });

  afterEach(async () => {
    for (const ws of clients) {
      ws.on('error', noop);
      ws.terminate();
    }
    clients.clear();
    for (const socket of rawSockets) socket.destroy();
    rawSockets.clear();
    // Every test must leave the zoo without a server-side socket once its clients are gone.
    await zoo.waitForNoOpenSockets(2000);
  });

  afterAll(async () => {
    await zoo.close();
  });

  it('serves ws:// on 127.0.0.1 and offers unreachable URLs', () => {
    expect(zoo.url('/echo')).toBe(`ws://127.0.0.1:${zoo.port}/echo`);
    expect(zoo.tls.valid.url('/echo')).toBe(`wss://localhost:${zoo.tls.valid.port}/echo`);
    expect(zoo.refusedUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(zoo.resetUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(zoo.blackholeUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    // RFC 6761: never resolves. Not looked up here: tests make no traffic beyond localhost.
    expect(new URL(zoo.unresolvableUrl).hostname).toMatch(/\.invalid$/);
  });

  describe('WebSocket paths', () => {
    it('/echo echoes text as text and binary as binary, and answers pings', async () => {
      const ws = await connect(zoo.url('/echo'));
      ws.send('hello');
      expect(await nextMessage(ws)).toEqual({ data: Buffer.from('hello'), isBinary: false });
      ws.send(Buffer.from([0, 1, 2, 255]));
      expect(await nextMessage(ws)).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true });
      expect(await pong(ws, 'p1')).toBe('p1');
    });

    it('/greeting sends a welcome, then echoes', async () => {
      const ws = await connect(zoo.url('/greeting'));
      expect(await nextJson(ws)).toEqual({ type: 'welcome', server_id: ZOO_SERVER_ID });
      ws.send('after welcome');
      expect((await nextMessage(ws)).data.toString()).toBe('after welcome');
    });

    it('/close-1011 closes with 1011 on the first message, without replying', async () => {
      const ws = await connect(zoo.url('/close-1011'));
      const seen = receivedDuring(ws, 100);
      ws.send('anything');
      expect(await closed(ws)).toEqual({ code: 1011, reason: 'internal error' });
      expect(await seen).toEqual([]);
    });

    it('/destroy drops the TCP connection without a close frame on the first message', async () => {
      const ws = await connect(zoo.url('/destroy'));
      ws.send('anything');
      expect(await closed(ws)).toEqual({ code: 1006, reason: '' });
    });

    it('/silent sends nothing, not even pongs', async () => {
      const ws = await connect(zoo.url('/silent'));
      ws.send('hello?');
      ws.ping('anyone?');
      expect(await receivedDuring(ws, 250)).toEqual([]);
      expect(ws.readyState).toBe(WebSocket.OPEN);
    });

    it('/wrong-reply answers every message with an error message', async () => {
      const ws = await connect(zoo.url('/wrong-reply'));
      for (const message of ['one', 'two']) {
        ws.send(message);
        expect(await nextJson(ws)).toEqual({ type: 'error', message: 'unexpected' });
      }
    });

    it('/slow-handshake completes the upgrade only after delay_ms', async () => {
      const started = Date.now();
      const ws = await connect(zoo.url('/slow-handshake?delay_ms=300'));
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      ws.send('late');
      expect((await nextMessage(ws)).data.toString()).toBe('late');
    });

    it('/slow-handshake lets go of a client that gives up before the upgrade', async () => {
      const socket = await rawConnect(zoo.port);
      socket.write(upgradeRequest('/slow-handshake?delay_ms=5000'));
      await until(() => zoo.stats().openSockets === 1);
      await sleep(50);
      socket.end();
      await zoo.waitForNoOpenSockets(1000);
    });

    it('/subprotocol selects wsmon.v1 when offered', async () => {
      const ws = await connect(zoo.url('/subprotocol'), {}, ['other', ZOO_SUBPROTOCOL]);
      expect(ws.protocol).toBe(ZOO_SUBPROTOCOL);
      ws.send('with protocol');
      expect((await nextMessage(ws)).data.toString()).toBe('with protocol');
    });

    it('/subprotocol rejects an upgrade without wsmon.v1 with a 400', async () => {
      for (const protocols of [[], ['other']]) {
        const response = await rejection(zoo.url('/subprotocol'), {}, protocols);
        expect(response.status).toBe(400);
        expect(response.body).toBe('subprotocol wsmon.v1 required');
      }
    });

    it('/auth/bearer accepts the token and reflects anything else in its 401', async () => {
      const ws = await connect(zoo.url('/auth/bearer'), {
        headers: { authorization: `Bearer ${ZOO_SECRETS.bearerToken}` },
      });
      ws.send('authorized');
      expect((await nextMessage(ws)).data.toString()).toBe('authorized');

      const wrong = await rejection(zoo.url('/auth/bearer'), {
        headers: { authorization: 'Bearer leaked-secret-123' },
      });
      expect(wrong.status).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(wrong.body).toBe('invalid credentials: Bearer leaked-secret-123');

      const missing = await rejection(zoo.url('/auth/bearer'));
      expect(missing.status).toBe(401);
      expect(missing.body).toBe('invalid credentials: (none)');
    });

    it('/auth/basic accepts the user and password, from headers or from the URL', async () => {
      const fromHeader = await connect(zoo.url('/auth/basic'), {
        headers: { authorization: basic(ZOO_SECRETS.basicUser, ZOO_SECRETS.basicPassword) },
      });
      fromHeader.send('basic');
      expect((await nextMessage(fromHeader)).data.toString()).toBe('basic');

      const userInfo = `${ZOO_SECRETS.basicUser}:${ZOO_SECRETS.basicPassword}@`;
      await connect(zoo.url('/auth/basic').replace('ws://', `ws://${userInfo}`));

      const wrongPassword = basic(ZOO_SECRETS.basicUser, 'guess');
      const wrong = await rejection(zoo.url('/auth/basic'), { headers: { authorization: wrongPassword } });
      expect(wrong.status).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic/);
      expect(wrong.body).toBe(`invalid credentials: ${wrongPassword}`);
    });

    it('/auth/cookie finds the session among several cookies and reflects the Cookie header in its 401', async () => {
      const ws = await connect(zoo.url('/auth/cookie'), {
        headers: { cookie: `theme=dark; session=${ZOO_SECRETS.sessionCookie}; lang=en` },
      });
      ws.send('cookie');
      expect((await nextMessage(ws)).data.toString()).toBe('cookie');

      const wrong = await rejection(zoo.url('/auth/cookie'), {
        headers: { cookie: 'theme=dark; session=stale' },
      });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toBe('invalid credentials: theme=dark; session=stale');
    });

    it('/headers adds response headers and reports the lower-cased request headers', async () => {
      const ws = newClient(zoo.url('/headers'), { headers: { 'X-Probe-Id': 'probe-7' } });
      ws.on('error', noop);
      const upgrade = new Promise<IncomingHttpHeaders>((resolve) =>
        ws.once('upgrade', (res) => resolve(res.headers)),
      );
      const first = nextJson(ws);
      const headers = await upgrade;
      expect(headers['x-zoo-server']).toBe('zoo');
      expect(headers['set-cookie']).toEqual(['zoo_sid=abc123; HttpOnly']);
      expect(await first).toEqual({
        type: 'request_headers',
        headers: expect.objectContaining({ 'x-probe-id': 'probe-7', upgrade: 'websocket' }) as unknown,
      });
      ws.send('then echo');
      expect((await nextMessage(ws)).data.toString()).toBe('then echo');
    });

    it('/stream sends count ticks every interval_ms, then stays open, silent and answering pings', async () => {
      const ws = await connect(zoo.url('/stream?interval_ms=20&count=3'));
      for (const seq of [1, 2, 3]) expect(await nextJson(ws)).toEqual({ type: 'tick', seq });
      expect(await receivedDuring(ws, 100)).toEqual([]);
      expect(await pong(ws, 'still there')).toBe('still there');
      expect(ws.readyState).toBe(WebSocket.OPEN);
    });

    it('/stream keeps ticking without a count', async () => {
      const ws = await connect(zoo.url('/stream?interval_ms=5'));
      const ticks: unknown[] = [];
      for (let i = 0; i < 10; i += 1) ticks.push(await nextJson(ws));
      expect(ticks).toEqual(Array.from({ length: 10 }, (_, i) => ({ type: 'tick', seq: i + 1 })));
    });

    it('/close closes with the requested code and reason after after_ms', async () => {
      const started = Date.now();
      const ws = await connect(zoo.url('/close?code=4321&reason=maintenance&after_ms=150'));
      expect(await closed(ws)).toEqual({ code: 4321, reason: 'maintenance' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);

      const defaults = await connect(zoo.url('/close'));
      expect(await closed(defaults)).toEqual({ code: 4000, reason: 'bye' });

      expect((await rejection(zoo.url('/close?code=1006'))).status).toBe(400);
      expect((await rejection(zoo.url('/stream?interval_ms=soon'))).status).toBe(400);
    });

    it('/no-close-reply echoes, answers pings, and never answers a close frame', async () => {
      const ws = await connect(zoo.url('/no-close-reply'));
      ws.send('text');
      expect(await nextMessage(ws)).toEqual({ data: Buffer.from('text'), isBinary: false });
      const big = Buffer.alloc(70_000, 7);
      ws.send(big);
      expect(await nextMessage(ws)).toEqual({ data: big, isBinary: true });
      ws.send('frag', { fin: false });
      ws.send('mented', { fin: true });
      expect((await nextMessage(ws)).data.toString()).toBe('fragmented');
      expect(await pong(ws, 'ping')).toBe('ping');

      const closing = closed(ws);
      ws.close(1000, 'done');
      await sleep(300);
      expect(ws.readyState).toBe(WebSocket.CLOSING);
      expect(zoo.stats().openSockets).toBe(1);
      ws.terminate();
      expect(await closing).toEqual({ code: 1006, reason: '' });
    });
  });

  describe('HTTP answers to the upgrade', () => {
    it.each([426, 400, 401, 200, 404, 503])('/status/%i answers with that status', async (status) => {
      const response = await rejection(zoo.url(`/status/${status}`));
      expect(response.status).toBe(status);
      expect(response.headers['x-zoo-status']).toBe(String(status));
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.headers['connection']).toBe('close');
      expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body));
      expect(response.body.startsWith(`<html><body>status ${status}`)).toBe(true);
      expect(response.body.length).toBeGreaterThan(2048);
      expect(response.headers['upgrade']).toBe(status === 426 ? 'websocket' : undefined);
      expect(response.headers['www-authenticate']).toBe(status === 401 ? 'Bearer realm="zoo"' : undefined);
    });

    it('fails a ws client without an unexpected-response listener with the status', async () => {
      const error = await failure(zoo.url('/status/426'));
      expect(error.message).toBe('Unexpected server response: 426');
    });

    it('answers unknown paths with a 404 of the same shape', async () => {
      const response = await rejection(zoo.url('/no/such/path'));
      expect(response.status).toBe(404);
      expect(response.headers['x-zoo-status']).toBeUndefined();
      expect(response.body.startsWith('<html><body>status 404')).toBe(true);
      expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body));
    });
  });

  describe('TLS targets', () => {
    const withCa = (): ClientOptions => ({ ca: zoo.tls.caPem });

    it('valid: serves the same paths over wss:// to a client trusting the CA', async () => {
      const ws = await connect(zoo.tls.valid.url('/greeting'), withCa());
      expect(await nextJson(ws)).toEqual({ type: 'welcome', server_id: ZOO_SERVER_ID });
      const raw = await connect(zoo.tls.valid.url('/no-close-reply'), withCa());
      raw.send('over tls');
      expect((await nextMessage(raw)).data.toString()).toBe('over tls');
      expect((await rejection(zoo.tls.valid.url('/status/503'), withCa())).status).toBe(503);
    });

    it.each<[string, () => TlsTarget, () => ClientOptions, string]>([
      ['valid, without trusting the CA', () => zoo.tls.valid, () => ({}), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['selfSigned', () => zoo.tls.selfSigned, withCa, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
      ['expired', () => zoo.tls.expired, withCa, 'CERT_HAS_EXPIRED'],
      ['wrongHost', () => zoo.tls.wrongHost, withCa, 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ])('%s: fails verification with %#', async (_name, target, options, code) => {
      const error = await failure(target().url('/echo'), options());
      expect(error.code).toBe(code);
    });

    it('selfSigned: opens for a client pinning its certificate', async () => {
      const ws = await connect(zoo.tls.selfSigned.url('/echo'), { ca: zoo.tls.selfSigned.certPem });
      ws.send('pinned');
      expect((await nextMessage(ws)).data.toString()).toBe('pinned');
    });

    it('presents the documented certificates', () => {
      const now = Date.now();
      const day = 24 * 60 * 60 * 1000;
      const ca = new X509Certificate(zoo.tls.caPem);
      const cert = (target: TlsTarget): X509Certificate => new X509Certificate(target.certPem);
      const { valid, selfSigned, expired, wrongHost } = zoo.tls;

      expect(ca.ca).toBe(true);
      for (const target of [valid, expired, wrongHost]) {
        expect(cert(target).checkIssued(ca)).toBe(true);
        expect(cert(target).verify(ca.publicKey)).toBe(true);
        expect(cert(target).ca).toBe(false);
      }
      expect(cert(selfSigned).checkIssued(ca)).toBe(false);
      expect(cert(selfSigned).verify(cert(selfSigned).publicKey)).toBe(true);

      for (const target of [valid, selfSigned, expired]) {
        expect(cert(target).subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
        expect(cert(target).subject).toContain('CN=localhost');
      }
      expect(cert(wrongHost).subjectAltName).toBe('DNS:wrong-host.example');

      const validity = (target: TlsTarget): [number, number] => [
        Date.parse(cert(target).validFrom),
        Date.parse(cert(target).validTo),
      ];
      const [validFrom, validTo] = validity(valid);
      expect(now - validFrom).toBeGreaterThan(0.9 * day);
      expect(validTo - now).toBeGreaterThan(89 * day);
      const [expiredFrom, expiredTo] = validity(expired);
      expect(now - expiredFrom).toBeGreaterThan(29 * day);
      expect(now - expiredTo).toBeGreaterThan(0.9 * day);

      const pems = [zoo.tls.caPem, valid.certPem, selfSigned.certPem, expired.certPem, wrongHost.certPem];
      expect(new Set(pems.map((pem) => new X509Certificate(pem).serialNumber)).size).toBe(pems.length);
      for (const pem of pems) {
        expect(forge.pki.certificateFromPem(pem).siginfo.algorithmOid).toBe(
          forge.pki.oids['sha256WithRSAEncryption'],
        );
      }
    });

    it('generates the TLS material once per process', async () => {
      const first = await getZooTlsMaterial();
      expect(await getZooTlsMaterial()).toBe(first);
      expect(first.ca.certPem).toBe(zoo.tls.caPem);
    });
  });

  describe('unreachable targets', () => {
    it('refusedUrl: nothing listens', async () => {
      expect((await failure(zoo.refusedUrl)).code).toBe('ECONNREFUSED');
    });

    it('resetUrl: resets every connection', async () => {
      const before = zoo.stats().acceptedSockets;
      expect((await failure(zoo.resetUrl)).code).toBe('ECONNRESET');
      expect(zoo.stats().acceptedSockets).toBe(before + 1);
    });

    it('blackholeUrl: accepts and never answers the upgrade', async () => {
      const ws = newClient(zoo.blackholeUrl);
      ws.on('error', noop);
      await sleep(250);
      expect(ws.readyState).toBe(WebSocket.CONNECTING);
      expect(zoo.stats().openSockets).toBe(1);
      await expect(zoo.waitForNoOpenSockets(50)).rejects.toThrow(/1 zoo socket\(s\) still open .*blackhole/);
    });
  });

  describe('socket accounting', () => {
    it('counts every accepted socket and sees every one closed after failing connections', async () => {
      const before = zoo.stats().acceptedSockets;
      const attempts: Promise<unknown>[] = [];
      for (let i = 0; i < 5; i += 1) {
        attempts.push(
          rejection(zoo.url('/status/426')),
          rejection(zoo.url('/auth/bearer')),
          rejection(zoo.url('/nope')),
          failure(zoo.resetUrl),
          failure(zoo.tls.expired.url('/echo'), { ca: zoo.tls.caPem }),
          failure(zoo.tls.selfSigned.url('/echo')),
          connect(zoo.url('/destroy')).then((ws) => {
            ws.send('x');
            return closed(ws);
          }),
          connect(zoo.url('/close-1011')).then((ws) => {
            ws.send('x');
            return closed(ws);
          }),
        );
      }
      await Promise.all(attempts);
      await zoo.waitForNoOpenSockets(2000);
      expect(zoo.stats()).toEqual({ openSockets: 0, acceptedSockets: before + attempts.length });
    });

    it('close() ends every connection and leaves no handle behind', async () => {
      const servers = countResources('TCPServerWrap');
      const timers = countResources('Timeout');
      const other = await startTargetZoo();
      const options = { ca: other.tls.caPem };
      const open = await Promise.all([
        connect(other.url('/echo')),
        connect(other.url('/no-close-reply')),
        connect(other.url('/stream?interval_ms=10')),
        connect(other.url('/close?after_ms=60000')),
        connect(other.tls.valid.url('/echo'), options),
      ]);
      const pendingHandshake = newClient(other.url('/slow-handshake?delay_ms=60000'));
      const blackholed = newClient(other.blackholeUrl);
      for (const ws of [pendingHandshake, blackholed]) ws.on('error', noop);
      await until(() => other.stats().openSockets === 7);
      await sleep(50);
      expect(other.stats()).toEqual({ openSockets: 7, acceptedSockets: 7 });

      const allClosed = Promise.all([...open, pendingHandshake, blackholed].map(closed));
      await other.close();
      await other.close();
      expect(other.stats().openSockets).toBe(0);
      expect(countResources('TCPServerWrap')).toBe(servers);
      expect((await allClosed).map(({ code }) => code)).toEqual(Array<number>(7).fill(1006));
      expect(countResources('Timeout')).toBeLessThanOrEqual(timers);
      expect((await failure(other.url('/echo'))).code).toBe('ECONNREFUSED');
    });
  });
});

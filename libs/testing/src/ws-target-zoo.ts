import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { getZooTlsMaterial, type CertAndKey, type ZooTlsMaterial } from './tls-fixtures';

/** Credentials the zoo's `/auth/*` paths accept. */
export const ZOO_SECRETS = {
  /** `/auth/bearer` expects `Authorization: Bearer <bearerToken>`. */
  bearerToken: 'zoo-bearer-token-8c1f',
  /** `/auth/basic` expects HTTP basic auth with this user... */
  basicUser: 'zoo-user',
  /** ...and this password. */
  basicPassword: 'zoo-password-51d2',
  /** `/auth/cookie` expects a cookie `session=<sessionCookie>`, possibly among other cookies. */
  sessionCookie: 'zoo-session-77ab',
} as const;

/** The subprotocol `/subprotocol` requires and selects. */
export const ZOO_SUBPROTOCOL = 'wsmon.v1';

/** The `server_id` of the welcome message `/greeting` sends. */
export const ZOO_SERVER_ID = 'zoo-1';

/** One TLS server of the zoo; it serves the same paths as the plain server. */
export interface TlsTarget {
  readonly port: number;
  /** `wss://localhost:<port><path>`; the server listens on 127.0.0.1 only. */
  url(path: string): string;
  /** PEM of the certificate this server presents. */
  readonly certPem: string;
}

/**
 * Real servers on 127.0.0.1, each reproducing one real-world WebSocket behaviour. Start one with
 * {@link startTargetZoo}.
 *
 * Paths, on the plain server and on every TLS server alike:
 * - `/echo`: echoes every message (text as text, binary as binary); answers pings.
 * - `/greeting`: sends `{"type":"welcome","server_id":"zoo-1"}` on open, then echoes.
 * - `/status/<code>`: answers the upgrade with that HTTP status (200-599) and an HTML body over 2 KiB that
 *   starts with `<html><body>status <code>`; header `x-zoo-status: <code>`, plus `Upgrade: websocket` for
 *   426 and `WWW-Authenticate: Bearer realm="zoo"` for 401.
 * - `/close-1011`: closes with 1011 `internal error` on the first message received.
 * - `/destroy`: destroys the TCP socket, without a close frame, on the first message received (1006).
 * - `/silent`: never sends anything, not even pongs.
 * - `/wrong-reply`: answers every message with `{"type":"error","message":"unexpected"}`.
 * - `/slow-handshake?delay_ms=N` (default 2000): completes the upgrade after N ms, then echoes.
 * - `/subprotocol`: requires and selects {@link ZOO_SUBPROTOCOL}, then echoes; else 400.
 * - `/auth/bearer`, `/auth/basic`, `/auth/cookie`: require {@link ZOO_SECRETS}, then echo; else 401 with
 *   a text body that reflects the received `Authorization` (or `Cookie`) header value.
 * - `/headers`: the 101 carries `x-zoo-server: zoo` and `set-cookie: zoo_sid=abc123; HttpOnly`; sends
 *   `{"type":"request_headers","headers":{...}}` (the lower-cased request headers) on open, then echoes.
 * - `/stream?interval_ms=N&count=M` (defaults 50, unlimited): sends `{"type":"tick","seq":i}` for
 *   i = 1..M every N ms, then stays open and silent; answers pings.
 * - `/close?code=C&reason=R&after_ms=T` (defaults 4000, `bye`, 0): closes with that code T ms after open.
 * - `/no-close-reply`: echoes and answers pings but never answers a close frame; the TCP connection stays
 *   open until the client drops it.
 * - anything else: 404, shaped like the `/status/<code>` answers (without `x-zoo-status`).
 *
 * Malformed query parameters get a 400. Plain HTTP requests without an upgrade get a 426.
 */
export interface TargetZoo {
  /** Port of the plain `ws://` server on 127.0.0.1. */
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path: string): string;
  readonly tls: {
    /** PEM of the test CA that signs `valid`, `expired` and `wrongHost`. */
    readonly caPem: string;
    /** CA-signed for DNS:localhost and IP:127.0.0.1, valid from now-1 day to now+90 days. */
    readonly valid: TlsTarget;
    /** Self-signed for DNS:localhost and IP:127.0.0.1; pin its `certPem` as CA to trust it. */
    readonly selfSigned: TlsTarget;
    /** CA-signed for localhost and 127.0.0.1, but expired: valid from now-30 days to now-1 day. */
    readonly expired: TlsTarget;
    /** CA-signed for localhost and 127.0.0.1, but valid only from now+30 days. */
    readonly notYetValid: TlsTarget;
    /** CA-signed, with valid dates, but only for DNS:wrong-host.example, so `localhost` mismatches. */
    readonly wrongHost: TlsTarget;
  };
  /** `ws://127.0.0.1:<port>/` on a port that was bound once and then released: connections are refused. */
  readonly refusedUrl: string;
  /** `ws://127.0.0.1:<port>/` on a TCP server that resets every connection at once (ECONNRESET). */
  readonly resetUrl: string;
  /** `ws://127.0.0.1:<port>/` on a TCP server that accepts connections and never answers. */
  readonly blackholeUrl: string;
  /** A URL whose host can never resolve (RFC 6761 `.invalid`). */
  readonly unresolvableUrl: string;
  /** Server-side connection counters over every server of the zoo (TCP sockets accepted / still open). */
  stats(): { openSockets: number; acceptedSockets: number };
  /**
   * Resolves once every server-side socket of the zoo is closed (or rejects after timeoutMs, default 5000,
   * with an error that lists the sockets still open).
   */
  waitForNoOpenSockets(timeoutMs?: number): Promise<void>;
  /** Terminates every client, closes every server and clears every timer: leaves no handle behind. */
  close(): Promise<void>;
}

/**
 * Starts a fresh zoo: one plain server, four TLS servers, a resetting and a black-hole TCP server, all on
 * 127.0.0.1 with OS-assigned ports. Call {@link TargetZoo.close} when done.
 *
 * TLS material is generated on the first call and shared by every zoo of the process.
 */
export async function startTargetZoo(): Promise<TargetZoo> {
  const material = await getZooTlsMaterial();
  const zoo = new Zoo();
  try {
    return await zoo.start(material);
  } catch (error) {
    await zoo.close();
    throw error;
  }
}

const UNRESOLVABLE_URL = 'ws://wsmon-zoo-does-not-exist.invalid/echo';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_DELAY_MS = 10 * 60 * 1000;
const NO_CLOSE_REPLY_MAX_PAYLOAD = 16 * 1024 * 1024;
const MAX_LISTED_SOCKETS = 20;

const noop = (): void => undefined;

interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

interface TrackedSocket {
  readonly socket: Socket;
  description: string;
}

/** Every server-side TCP socket of one zoo; exact, because the engine's leak test relies on it. */
class SocketTracker {
  private accepted = 0;
  private readonly open = new Map<Socket, TrackedSocket>();
  /** Only to find a socket's description from its TLS wrapper: best effort, never used for counting. */
  private readonly byPorts = new Map<string, TrackedSocket>();
  private readonly idleWaiters = new Set<() => void>();
  private destroyNewSockets = false;

  track(socket: Socket, serverName: string): void {
    this.accepted += 1;
    // Upgraded and hand-served sockets lose the error listeners of http/ws; an ECONNRESET or EPIPE from a
    // misbehaving client must not crash the test process.
    socket.on('error', noop);
    const tracked = { socket, description: `${serverName} ${socket.remoteAddress}:${socket.remotePort}` };
    const ports = SocketTracker.ports(socket);
    this.open.set(socket, tracked);
    this.byPorts.set(ports, tracked);
    socket.once('close', () => {
      this.open.delete(socket);
      if (this.byPorts.get(ports) === tracked) this.byPorts.delete(ports);
      if (this.open.size === 0) {
        for (const resolve of this.idleWaiters) resolve();
        this.idleWaiters.clear();
      }
    });
    if (this.destroyNewSockets) socket.destroy();
  }

  /**
   * Adds the request path to a tracked socket's description. Takes the upgraded socket, which for TLS is
   * the TLSSocket wrapping the tracked TCP socket; both have the same addresses and ports.
   */
  describe(socket: Duplex, path: string): void {
    if (!(socket instanceof net.Socket)) return;
    const tracked = this.open.get(socket) ?? this.byPorts.get(SocketTracker.ports(socket));
    if (tracked) tracked.description += ` ${path}`;
  }

  stats(): { openSockets: number; acceptedSockets: number } {
    return { openSockets: this.open.size, acceptedSockets: this.accepted };
  }

  destroyAll(): void {
    this.destroyNewSockets = true;
    for (const socket of this.open.keys()) socket.destroy();
  }

  waitForNone(timeoutMs: number): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onIdle = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(onIdle);
        reject(
          new Error(`${this.open.size} zoo socket(s) still open after ${timeoutMs} ms: ${this.listOpen()}`),
        );
      }, timeoutMs);
      this.idleWaiters.add(onIdle);
    });
  }

  private listOpen(): string {
    const all = [...this.open.values()].map((tracked) => tracked.description);
    const listed = all.slice(0, MAX_LISTED_SOCKETS).join(', ');
    return all.length > MAX_LISTED_SOCKETS
      ? `${listed}, and ${all.length - MAX_LISTED_SOCKETS} more`
      : listed;
  }

  private static ports(socket: Socket): string {
    return `${socket.localPort}<${socket.remoteAddress}:${socket.remotePort}`;
  }
}

/** Every timer of one zoo, so that close() can clear the ones still pending. */
class TimerRegistry {
  private readonly timers = new Set<NodeJS.Timeout>();

  setTimeout(callback: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      callback();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  setInterval(callback: () => void, ms: number): NodeJS.Timeout {
    const timer = setInterval(callback, ms);
    this.timers.add(timer);
    return timer;
  }

  clear(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  clearAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

class Zoo {
  private readonly tracker = new SocketTracker();
  private readonly timers = new TimerRegistry();
  private readonly servers: net.Server[] = [];

  private readonly standardWss = new WebSocketServer({ noServer: true });
  private readonly silentWss = new WebSocketServer({ noServer: true, autoPong: false });
  private readonly subprotocolWss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(ZOO_SUBPROTOCOL) ? ZOO_SUBPROTOCOL : false),
  });
  private readonly headersWss = new WebSocketServer({ noServer: true });
  private readonly allWss = [this.standardWss, this.silentWss, this.subprotocolWss, this.headersWss];

  private closing: Promise<void> | undefined;

  constructor() {
    this.headersWss.on('headers', (headers: string[]) => {
      headers.push('x-zoo-server: zoo', 'set-cookie: zoo_sid=abc123; HttpOnly');
    });
  }

  async start(material: ZooTlsMaterial): Promise<TargetZoo> {
    const plain = await this.listen(this.createWebServer('ws', http.createServer()));
    const tlsTarget = async (name: string, pair: CertAndKey): Promise<TlsTarget> => {
      const server = https.createServer({ key: pair.keyPem, cert: pair.certPem });
      const port = await this.listen(this.createWebServer(name, server));
      return { port, url: (path) => `wss://localhost:${port}${path}`, certPem: pair.certPem };
    };
    const [valid, selfSigned, expired, wrongHost, notYetValid] = await Promise.all([
      tlsTarget('wss/valid', material.valid),
      tlsTarget('wss/self-signed', material.selfSigned),
      tlsTarget('wss/expired', material.expired),
      tlsTarget('wss/wrong-host', material.wrongHost),
      tlsTarget('wss/not-yet-valid', material.notYetValid),
    ]);

    const resetServer = net.createServer();
    this.trackConnections(resetServer, 'reset');
    resetServer.on('connection', (socket) => socket.resetAndDestroy());
    const resetPort = await this.listen(resetServer);

    const blackholeServer = net.createServer();
    this.trackConnections(blackholeServer, 'blackhole');
    // Discard what arrives: with unread data buffered, Node never emits 'end', so a client's FIN would go
    // unnoticed and the socket would stay open (and counted) forever.
    blackholeServer.on('connection', (socket) => socket.resume());
    const blackholePort = await this.listen(blackholeServer);

    // Bound last, so that no other server of this zoo can be handed the released port.
    const refusedPort = await reserveAndReleasePort();

    const stats = (): { openSockets: number; acceptedSockets: number } => this.tracker.stats();
    return {
      port: plain,
      url: (path) => `ws://127.0.0.1:${plain}${path}`,
      tls: { caPem: material.ca.certPem, valid, selfSigned, expired, wrongHost, notYetValid },
      refusedUrl: `ws://127.0.0.1:${refusedPort}/`,
      resetUrl: `ws://127.0.0.1:${resetPort}/`,
      blackholeUrl: `ws://127.0.0.1:${blackholePort}/`,
      unresolvableUrl: UNRESOLVABLE_URL,
      stats,
      waitForNoOpenSockets: (timeoutMs = 5000) => this.tracker.waitForNone(timeoutMs),
      close: () => this.close(),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.timers.clearAll();
    for (const wss of this.allWss) {
      for (const client of wss.clients) client.terminate();
    }
    this.tracker.destroyAll();
    await Promise.all(this.servers.map(closeServer));
    await Promise.all(this.allWss.map((wss) => new Promise<void>((resolve) => wss.close(() => resolve()))));
    await this.tracker.waitForNone(5000);
    // Socket events during the teardown above may have scheduled new timers.
    this.timers.clearAll();
    // libuv closes server handles in the close phase of the loop, after close() callbacks ran: the second
    // check phase from here is past it, so no handle of the zoo shows in getActiveResourcesInfo().
    await nextCheckPhase();
    await nextCheckPhase();
  }

  private trackConnections(server: net.Server, name: string): void {
    // For TLS servers this is the raw TCP socket, so handshake failures count too.
    server.on('connection', (socket: Socket) => this.tracker.track(socket, name));
    // Accept errors (EMFILE...) show up as failed client connections; they must not crash the process.
    server.on('error', noop);
    this.servers.push(server);
  }

  private createWebServer<T extends http.Server | https.Server>(name: string, server: T): T {
    this.trackConnections(server, name);
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      const answer = statusAnswer(426);
      res.writeHead(answer.status, {
        ...answer.headers,
        'content-type': answer.contentType,
        'content-length': Buffer.byteLength(answer.body),
        connection: 'close',
      });
      res.end(answer.body);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', noop);
      this.tracker.describe(socket, req.url ?? '');
      try {
        this.route(req, socket, head);
      } catch {
        // A request target `new URL()` can't parse, say: throwing here would crash the test process.
        writeAnswer(socket, textAnswer(400, 'bad request'));
      }
    });
    return server;
  }

  private listen(server: net.Server): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve(listeningPort(server));
      });
    });
  }

  private route(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://zoo.invalid');
    const query = new Query(url.searchParams);
    const accept = (wss: WebSocketServer, onOpen: (ws: WebSocket) => void): void => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', noop);
        onOpen(ws);
      });
    };
    const statusMatch = /^\/status\/(\d{3})$/.exec(url.pathname);

    switch (url.pathname) {
      case '/echo':
        return accept(this.standardWss, echo);
      case '/greeting':
        return accept(this.standardWss, (ws) => {
          ws.send(JSON.stringify({ type: 'welcome', server_id: ZOO_SERVER_ID }));
          echo(ws);
        });
      case '/close-1011':
        return accept(this.standardWss, (ws) => {
          ws.once('message', () => ws.close(1011, 'internal error'));
        });
      case '/destroy':
        return accept(this.standardWss, (ws) => {
          ws.once('message', () => ws.terminate());
        });
      case '/silent':
        return accept(this.silentWss, noop);
      case '/wrong-reply':
        return accept(this.standardWss, (ws) => {
          ws.on('message', () => ws.send(JSON.stringify({ type: 'error', message: 'unexpected' })));
        });
      case '/slow-handshake': {
        const delayMs = query.int('delay_ms', 2000, 0, MAX_DELAY_MS);
        if (query.invalid) break;
        // Until the upgrade completes nobody else listens to this socket: a client that gives up must
        // not leave a timer behind, nor a half-open socket.
        const onGone = (): void => {
          this.timers.clear(timer);
          socket.destroy();
        };
        const timer = this.timers.setTimeout(() => {
          socket.off('end', onGone).off('close', onGone);
          accept(this.standardWss, echo);
        }, delayMs);
        socket.once('end', onGone).once('close', onGone);
        return;
      }
      case '/subprotocol': {
        const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
        if (offered.includes(ZOO_SUBPROTOCOL)) return accept(this.subprotocolWss, echo);
        return writeAnswer(socket, textAnswer(400, `subprotocol ${ZOO_SUBPROTOCOL} required`));
      }
      case '/auth/bearer': {
        const authorization = req.headers.authorization;
        const token = /^bearer\s+(.*)$/i.exec(authorization ?? '')?.[1]?.trim();
        if (token === ZOO_SECRETS.bearerToken) return accept(this.standardWss, echo);
        return writeAnswer(socket, credentialsRejected(authorization, 'Bearer realm="zoo"'));
      }
      case '/auth/basic': {
        const authorization = req.headers.authorization;
        if (isValidBasicAuth(authorization)) return accept(this.standardWss, echo);
        return writeAnswer(socket, credentialsRejected(authorization, 'Basic realm="zoo"'));
      }
      case '/auth/cookie': {
        const cookie = req.headers.cookie;
        if (parseCookies(cookie).get('session') === ZOO_SECRETS.sessionCookie) {
          return accept(this.standardWss, echo);
        }
        return writeAnswer(socket, credentialsRejected(cookie, 'Cookie realm="zoo"'));
      }
      case '/headers':
        return accept(this.headersWss, (ws) => {
          ws.send(JSON.stringify({ type: 'request_headers', headers: req.headers }));
          echo(ws);
        });
      case '/stream': {
        const intervalMs = query.int('interval_ms', 50, 1, MAX_DELAY_MS);
        const count = query.int('count', Number.POSITIVE_INFINITY, 0, Number.MAX_SAFE_INTEGER);
        if (query.invalid) break;
        return accept(this.standardWss, (ws) => this.stream(ws, intervalMs, count));
      }
      case '/close': {
        const code = query.int('code', 4000, 1000, 4999);
        const reason = url.searchParams.get('reason') ?? 'bye';
        const afterMs = query.int('after_ms', 0, 0, MAX_DELAY_MS);
        if (query.invalid || !isSendableCloseCode(code) || Buffer.byteLength(reason) > 123) {
          return writeAnswer(socket, textAnswer(400, 'invalid close parameters'));
        }
        return accept(this.standardWss, (ws) => {
          const timer = this.timers.setTimeout(() => ws.close(code, reason), afterMs);
          ws.once('close', () => this.timers.clear(timer));
        });
      }
      case '/no-close-reply':
        return serveNoCloseReply(req, socket, head);
      case '/bad-accept':
        // A broken proxy or server: 101 with a Sec-WebSocket-Accept that does not answer the key.
        return answerSwitchingProtocols(socket, 'bm90LXRoZS1yaWdodC1hbnN3ZXI=');
      case '/unoffered-subprotocol':
        // A server that picks a subprotocol the client never offered (RFC 6455 §4.1: the client must fail).
        return answerSwitchingProtocols(
          socket,
          acceptKeyFor(req.headers['sec-websocket-key'] ?? ''),
          'surprise.v1',
        );
      default:
        if (statusMatch?.[1] !== undefined) {
          const status = Number(statusMatch[1]);
          if (status < 200) return writeAnswer(socket, textAnswer(400, 'status must be 200-599'));
          return writeAnswer(socket, statusAnswer(status, { 'x-zoo-status': String(status) }));
        }
        return writeAnswer(socket, statusAnswer(404));
    }
    writeAnswer(socket, textAnswer(400, `invalid query: ${url.search}`));
  }

  private stream(ws: WebSocket, intervalMs: number, count: number): void {
    if (count === 0) return;
    let seq = 0;
    const timer = this.timers.setInterval(() => {
      seq += 1;
      ws.send(JSON.stringify({ type: 'tick', seq }));
      if (seq >= count) this.timers.clear(timer);
    }, intervalMs);
    ws.once('close', () => this.timers.clear(timer));
  }
}

/** Integer query parameters; remembers whether any of them was malformed or out of range. */
class Query {
  invalid = false;

  constructor(private readonly params: URLSearchParams) {}

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.params.get(name);
    if (raw === null || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) this.invalid = true;
    return value;
  }
}

function echo(ws: WebSocket): void {
  ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }));
}

/** The codes ws lets an endpoint send (RFC 6455 7.4): 1005, 1006 and 1015 are never sent on the wire. */
function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999)
  );
}

function isValidBasicAuth(authorization: string | undefined): boolean {
  const encoded = /^basic\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  if (encoded === undefined) return false;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return (
    colon >= 0 &&
    decoded.slice(0, colon) === ZOO_SECRETS.basicUser &&
    decoded.slice(colon + 1) === ZOO_SECRETS.basicPassword
  );
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return cookies;
}

function statusAnswer(status: number, headers: Record<string, string> = {}): HttpAnswer {
  const reason = http.STATUS_CODES[status] ?? 'Unknown';
  const extra: Record<string, string> = { ...headers };
  if (status === 426) extra['Upgrade'] = 'websocket';
  if (status === 401) extra['WWW-Authenticate'] = 'Bearer realm="zoo"';
  // Long on purpose: real error pages are, and the engine must truncate what it records.
  const filler =
    '<p>The wsmon target zoo answered this WebSocket upgrade with a plain HTTP error page.</p>\n';
  return {
    status,
    contentType: 'text/html; charset=utf-8',
    body: `<html><body>status ${status} ${reason}\n${filler.repeat(32)}</body></html>\n`,
    headers: extra,
  };
}

function textAnswer(status: number, body: string, headers: Record<string, string> = {}): HttpAnswer {
  return { status, contentType: 'text/plain; charset=utf-8', body, headers };
}

function credentialsRejected(received: string | undefined, challenge: string): HttpAnswer {
  // Reflecting the secret is the point: such servers exist, and the engine must scrub what it records.
  return textAnswer(401, `invalid credentials: ${received ?? '(none)'}`, { 'WWW-Authenticate': challenge });
}

/** Writes a complete HTTP/1.1 response on an upgrade socket, then ends it. */
function writeAnswer(socket: Duplex, answer: HttpAnswer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const bodyAllowed = answer.status !== 204 && answer.status !== 304;
  const body = bodyAllowed ? answer.body : '';
  const lines = [`HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(answer.headers ?? {})) lines.push(`${name}: ${value}`);
  if (bodyAllowed) {
    lines.push(`Content-Type: ${answer.contentType}`, `Content-Length: ${Buffer.byteLength(body)}`);
  }
  lines.push('Connection: close', '', '');
  socket.end(lines.join('\r\n') + body);
}

/**
 * `/no-close-reply`, served by a minimal hand-written RFC 6455 endpoint on the raw socket: ws always answers
 * a close frame, and patching its internals would break on upgrades. Data frames are echoed frame by frame
 * (so fragmentation is preserved), pings get pongs, close frames are read and ignored. The socket is only
 * ended once the client ends its side.
 */
function serveNoCloseReply(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const key = req.headers['sec-websocket-key'];
  const valid =
    req.method === 'GET' &&
    req.headers.upgrade?.toLowerCase() === 'websocket' &&
    req.headers['sec-websocket-version'] === '13' &&
    typeof key === 'string' &&
    /^[+/0-9A-Za-z]{22}==$/.test(key);
  if (!valid || typeof key !== 'string') {
    writeAnswer(socket, textAnswer(400, 'invalid WebSocket upgrade request'));
    return;
  }
  const acceptKey = acceptKeyFor(key);
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey}\r\n\r\n`,
  );
  socket.on('end', () => socket.end());

  let pending = head;
  const onData = (chunk: Buffer): void => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      const frame = parseClientFrame(pending);
      if (frame === 'incomplete') return;
      if (frame === 'invalid') {
        socket.destroy();
        return;
      }
      pending = pending.subarray(frame.length);
      switch (frame.opcode) {
        case 0x0:
        case 0x1:
        case 0x2:
          socket.write(encodeFrame(frame.fin, frame.opcode, frame.payload));
          break;
        case 0x9:
          socket.write(encodeFrame(true, 0xa, frame.payload));
          break;
        case 0x8:
        case 0xa:
          break;
        default:
          socket.destroy();
          return;
      }
    }
  };
  socket.on('data', onData);
  if (head.length > 0) onData(Buffer.alloc(0));
}

interface ClientFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
  /** Bytes the frame took in the buffer. */
  readonly length: number;
}

function parseClientFrame(buffer: Buffer): ClientFrame | 'incomplete' | 'invalid' {
  if (buffer.length < 2) return 'incomplete';
  const first = buffer.readUInt8(0);
  const second = buffer.readUInt8(1);
  // RFC 6455 5.1: clients must mask; no extension was negotiated, so RSV bits must be clear.
  if ((second & 0x80) === 0 || (first & 0x70) !== 0) return 'invalid';
  let payloadLength = second & 0x7f;
  let offset = 2;
  if (payloadLength === 126) {
    if (buffer.length < 4) return 'incomplete';
    payloadLength = buffer.readUInt16BE(2);
    offset = 4;
  } else if (payloadLength === 127) {
    if (buffer.length < 10) return 'incomplete';
    const long = buffer.readBigUInt64BE(2);
    if (long > BigInt(NO_CLOSE_REPLY_MAX_PAYLOAD)) return 'invalid';
    payloadLength = Number(long);
    offset = 10;
  }
  if (payloadLength > NO_CLOSE_REPLY_MAX_PAYLOAD) return 'invalid';
  const end = offset + 4 + payloadLength;
  if (buffer.length < end) return 'incomplete';
  const mask = buffer.subarray(offset, offset + 4);
  const payload = Buffer.from(buffer.subarray(offset + 4, end));
  for (let i = 0; i < payload.length; i += 1) {
    payload.writeUInt8(payload.readUInt8(i) ^ mask.readUInt8(i % 4), i);
  }
  return { fin: (first & 0x80) !== 0, opcode: first & 0x0f, payload, length: end };
}

function encodeFrame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([first, payload.length]);
  } else if (payload.length < 0x10000) {
    header = Buffer.alloc(4);
    header.writeUInt8(first, 0);
    header.writeUInt8(126, 1);
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(first, 0);
    header.writeUInt8(127, 1);
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

function listeningPort(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('zoo server is not listening on TCP');
  return address.port;
}

/** A port nothing listens on: bound once by the OS's choice, then released. */
async function reserveAndReleasePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = listeningPort(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function nextCheckPhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function closeServer(server: net.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}

function acceptKeyFor(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/**
 * Writes a raw 101 answer; the socket then stays open until the client, which must reject the
 * answer, closes it. Incoming bytes are discarded: a paused socket never sees the client's FIN.
 */
function answerSwitchingProtocols(socket: Duplex, acceptKey: string, subprotocol?: string): void {
  const protocolLine = subprotocol ? `Sec-WebSocket-Protocol: ${subprotocol}\r\n` : '';
  socket.on('error', noop);
  socket.once('end', () => socket.destroy());
  socket.resume();
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey}\r\n${protocolLine}\r\n`,
  );
}

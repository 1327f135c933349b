// The demo target of docker/compose.yaml: a WebSocket echo server on Node's standard library alone (RFC 6455:
// text and binary messages, fragments, ping/pong, the close handshake), so it runs on the plain Node image.
// Every path accepts the upgrade; GET /healthz answers `ok`. PORT (default 8765) sets the port.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const PORT = Number(process.env.PORT ?? 8765);
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE_BYTES = 1024 * 1024;
const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.end('ok\n');
    return;
  }
  response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
  response.end('a WebSocket echo server: connect with ws://\n');
});

server.on('upgrade', (request, socket) => {
  const key = request.headers['sec-websocket-key'];
  if (String(request.headers.upgrade).toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(`${key}${ACCEPT_GUID}`).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  socket.setNoDelay(true);
  serve(socket);
});

function serve(socket) {
  let buffered = Buffer.alloc(0);
  let fragments = [];
  let fragmentOpcode = 0;
  let closing = false;

  const send = (opcode, payload) => {
    if (socket.destroyed) return;
    const length = payload.length;
    const header =
      length < 126
        ? Buffer.from([0x80 | opcode, length])
        : length < 65536
          ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
          : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(length)]);
    socket.write(Buffer.concat([header, payload]));
  };
  const close = (code) => {
    if (!closing) send(OP.close, Buffer.from([code >> 8, code & 0xff]));
    closing = true;
    socket.end();
  };

  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const frame = readFrame(buffered);
      if (frame === undefined) return;
      if (frame === 'too_big') return close(1009);
      if (frame === 'unmasked') return close(1002);
      buffered = buffered.subarray(frame.size);
      switch (frame.opcode) {
        case OP.text:
        case OP.binary:
          if (frame.fin) send(frame.opcode, frame.payload);
          else [fragmentOpcode, fragments] = [frame.opcode, [frame.payload]];
          break;
        case OP.continuation:
          fragments.push(frame.payload);
          if (frame.fin) send(fragmentOpcode, Buffer.concat(fragments.splice(0)));
          break;
        case OP.ping:
          send(OP.pong, frame.payload);
          break;
        case OP.pong:
          break;
        case OP.close:
          // Answer with the peer's code (the first two bytes), then end the TCP connection.
          if (!closing) send(OP.close, frame.payload.subarray(0, 2));
          closing = true;
          socket.end();
          return;
        default:
          return close(1002);
      }
    }
  });
}

/** One complete frame from the start of `bytes`, or undefined until more bytes arrive. */
function readFrame(bytes) {
  if (bytes.length < 2) return undefined;
  const fin = (bytes[0] & 0x80) !== 0;
  const opcode = bytes[0] & 0x0f;
  if ((bytes[1] & 0x80) === 0) return 'unmasked';
  let length = bytes[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    const long = bytes.readBigUInt64BE(2);
    if (long > BigInt(MAX_MESSAGE_BYTES)) return 'too_big';
    length = Number(long);
    offset = 10;
  }
  if (length > MAX_MESSAGE_BYTES) return 'too_big';
  if (bytes.length < offset + 4 + length) return undefined;
  const mask = bytes.subarray(offset, offset + 4);
  const payload = Buffer.from(bytes.subarray(offset + 4, offset + 4 + length));
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return { fin, opcode, payload, size: offset + 4 + length };
}

function bigLength(length) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(length));
  return bytes;
}

server.listen(PORT, () => process.stdout.write(`echo: listening on port ${server.address().port}\n`));
// PID 1 in its container: without handlers the signals would be ignored. Nothing here needs draining.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

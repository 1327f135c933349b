import { createSocket, type RemoteInfo } from 'node:dgram';

/** A name the test DNS server never answers: lookups of it time out. */
export const DNS_SILENT_NAME = 'silent.zoo.test';
/** A name the test DNS server answers with SERVFAIL: a broken resolver, not a missing name. */
export const DNS_SERVFAIL_NAME = 'servfail.zoo.test';

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, ready for `dns.Resolver#setServers`. */
  readonly address: string;
  /** Queries received, for asserting that a lookup really went over the wire. */
  queries(): number;
  close(): Promise<void>;
}

const TYPE_A = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

/**
 * A real DNS server on 127.0.0.1 (UDP, RFC 1035): answers A queries for the given names,
 * SERVFAIL for {@link DNS_SERVFAIL_NAME}, nothing at all for {@link DNS_SILENT_NAME}, and NXDOMAIN for
 * every other name. Tests of the
 * DNS phase use it so that no query ever leaves the machine.
 */
export async function startTestDnsServer(records: Readonly<Record<string, string>>): Promise<TestDnsServer> {
  const socket = createSocket('udp4');
  let count = 0;
  socket.on('message', (query: Buffer, peer: RemoteInfo) => {
    count++;
    const question = readQuestion(query);
    if (!question || question.name === DNS_SILENT_NAME) return;
    const address = records[question.name];
    const answers = address && question.type === TYPE_A ? [address] : [];
    const rcode = address ? 0 : question.name === DNS_SERVFAIL_NAME ? RCODE_SERVFAIL : RCODE_NXDOMAIN;
    socket.send(buildResponse(query, question.end, answers, rcode), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries: () => count,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function readQuestion(query: Buffer): { name: string; type: number; end: number } | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length) {
    const length = query[offset]!;
    offset++;
    if (length === 0) break;
    labels.push(query.toString('ascii', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > query.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(offset), end: offset + 4 };
}

function buildResponse(
  query: Buffer,
  questionEnd: number,
  answers: readonly string[],
  rcode: number,
): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const recursionDesired = query[2]! & 0x01;
  header.writeUInt16BE(0x8080 | (recursionDesired << 8) | rcode, 2); // QR, RA, RD echoed
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((address) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // name: pointer to the question
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(1, 4); // class IN
    record.writeUInt32BE(60, 6); // TTL
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
    return record;
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
}

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TestAssignment } from '@wsmon/proto/agent';
import { errorCode, writeFileDurably } from '../storage/durable-file';

/**
 * The configuration the agent applied last, as it keeps it across restarts: it probes from it while
 * the control plane is unreachable, and names it in its Hello so that the control plane can answer
 * with a delta.
 */
export interface KeptConfig {
  /** The revision of the last ConfigAck. */
  readonly revision: number;
  /**
   * Set by a Drain, cleared by the next synchronisation: a drained agent runs nothing, not even
   * this configuration, until a later session ends a synchronisation with an EndOfSnapshot.
   */
  readonly drained: boolean;
  /** Every test held, as the control plane sent it. SECRET-BEARING: probes carry resolved secrets. */
  readonly tests: readonly TestAssignment[];
}

export type KeptConfigLoad =
  | { readonly kind: 'none' }
  | { readonly kind: 'loaded'; readonly config: KeptConfig }
  /** A file that exists but cannot be used: the agent starts with nothing. Never holds a config value. */
  | { readonly kind: 'unreadable'; readonly reason: string };

/** Names the file format, and is authenticated with the ciphertext (GCM additional data). */
const FORMAT = 'wsmon-agent-config/1';
const HKDF_INFO = Buffer.from('wsmon agent kept configuration, AES-256-GCM key');
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface Envelope {
  readonly format: typeof FORMAT;
  readonly kdf: 'HKDF-SHA256';
  readonly cipher: 'AES-256-GCM';
  /** Base64 of the HKDF salt: random, new at every write, stored beside the ciphertext. */
  readonly salt: string;
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
}

/**
 * Keeps the last applied configuration in one file, only ever encrypted: AES-256-GCM under a key
 * derived with HKDF-SHA256 from the agent's token (`WSMON_TOKEN`, a high-entropy credential) and a
 * random salt stored beside the ciphertext. Without the token the file is noise; with another token
 * (the agent moved to another location) it cannot be read, and the agent starts with nothing rather
 * than running another location's tests. The file is replaced atomically (temporary file, fsync,
 * rename, fsync of the directory), so a crash leaves the old configuration or the new one.
 *
 * Writes are serialised; saves that come while one is written are coalesced into one write of the
 * latest configuration.
 */
export class ConfigStore {
  private latest: KeptConfig | undefined;
  private written: KeptConfig | undefined;
  /** Writes run one after another. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    /** The encrypted file. */
    readonly path: string,
    private readonly token: string,
  ) {}

  /** Reads and decrypts the kept configuration. Never throws: a bad file is `unreadable`, with why. */
  async load(): Promise<KeptConfigLoad> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { kind: 'none' };
      return { kind: 'unreadable', reason: `cannot read it (${errorCode(error) ?? 'error'})` };
    }
    const envelope = parseEnvelope(text);
    if (envelope === undefined)
      return { kind: 'unreadable', reason: 'damaged: not a kept configuration file' };
    let plaintext: Buffer;
    try {
      plaintext = decrypt(envelope, this.token);
    } catch {
      return {
        kind: 'unreadable',
        reason: 'cannot be decrypted with this WSMON_TOKEN (the token changed, or the file is damaged)',
      };
    }
    const config = parseKeptConfig(plaintext);
    if (config === undefined) return { kind: 'unreadable', reason: 'damaged: unexpected content' };
    return { kind: 'loaded', config };
  }

  /**
   * Encrypts and writes `config`, replacing the file; resolves once it (or a configuration saved
   * after it) is durable. Rejects when the write fails; the next save tries again.
   */
  save(config: KeptConfig): Promise<void> {
    this.latest = config;
    const write = this.chain.then(async () => {
      const latest = this.latest;
      if (latest === undefined || latest === this.written) return;
      await writeFileDurably(this.path, encrypt(latest, this.token));
      this.written = latest;
    });
    this.chain = write.catch(() => undefined);
    return write;
  }
}

function deriveKey(token: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), salt, HKDF_INFO, 32));
}

function encrypt(config: KeptConfig, token: string): string {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(token, salt), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(FORMAT));
  const plaintext = Buffer.from(JSON.stringify(config), 'utf8');
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  plaintext.fill(0);
  const envelope: Envelope = {
    format: FORMAT,
    kdf: 'HKDF-SHA256',
    cipher: 'AES-256-GCM',
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
  return `${JSON.stringify(envelope)}\n`;
}

function decrypt(envelope: Envelope, token: string): Buffer {
  const salt = Buffer.from(envelope.salt, 'base64');
  const decipher = createDecipheriv(
    'aes-256-gcm',
    deriveKey(token, salt),
    Buffer.from(envelope.iv, 'base64'),
    {
      authTagLength: TAG_BYTES,
    },
  );
  decipher.setAAD(Buffer.from(FORMAT));
  decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, 'base64')), decipher.final()]);
}

function parseEnvelope(text: string): Envelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || value.format !== FORMAT) return undefined;
  const fields = ['salt', 'iv', 'tag', 'ciphertext'] as const;
  if (!fields.every((field) => typeof value[field] === 'string')) return undefined;
  if (Buffer.from(value.iv as string, 'base64').length !== IV_BYTES) return undefined;
  if (Buffer.from(value.tag as string, 'base64').length !== TAG_BYTES) return undefined;
  return value as unknown as Envelope;
}

/** Checks the shape only: each test is validated again by the shared schema before it runs. */
function parseKeptConfig(plaintext: Buffer): KeptConfig | undefined {
  let value: unknown;
  try {
    value = JSON.parse(plaintext.toString('utf8'));
  } catch {
    return undefined;
  } finally {
    plaintext.fill(0);
  }
  if (
    !isRecord(value) ||
    !Number.isSafeInteger(value.revision) ||
    typeof value.drained !== 'boolean' ||
    !Array.isArray(value.tests) ||
    !value.tests.every(
      (test) => isRecord(test) && typeof test.test_id === 'string' && Number.isSafeInteger(test.revision),
    )
  ) {
    return undefined;
  }
  return value as unknown as KeptConfig;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

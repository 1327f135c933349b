import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigStore, type KeptConfig } from './config-store';

const TOKEN = 'wsa_store_spec_4f1c0a9e7d3b2a1f';
const SECRETS = ['Bearer resolved-secret-3c9f1e', 'p4ssw0rd-of-the-basic-auth', 'session=cookie-secret-a81d'];

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-config-store-'));
  path = join(dir, 'config.enc');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function keptConfig(revision = 12): KeptConfig {
  return {
    revision,
    drained: false,
    tests: [
      {
        test_id: 'a1b2c3',
        revision: 4,
        name: 'price feed',
        probe: {
          url: 'wss://feed.example.com/ws',
          headers: { Authorization: SECRETS[0] },
          basic_auth: { username: 'monitor', password: SECRETS[1] },
          cookies: SECRETS[2],
        },
        schedule: { interval_s: 30 },
        retry: { attempts: 1, delay_ms: 500 },
      },
    ],
  };
}

describe(ConfigStore.name, () => {
  it('reads back what it wrote', async () => {
    const store = new ConfigStore(path, TOKEN);
    expect(await store.load()).toEqual({ kind: 'none' });
    await store.save(keptConfig());
    expect(await new ConfigStore(path, TOKEN).load()).toEqual({ kind: 'loaded', config: keptConfig() });
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });

  it('never writes a secret in plaintext, nor anything of the configuration', async () => {
    await new ConfigStore(path, TOKEN).save(keptConfig());
    const raw = readFileSync(path);
    const envelope = JSON.parse(raw.toString('utf8')) as Record<string, string>;
    const ciphertext = Buffer.from(envelope.ciphertext!, 'base64');
    for (const text of [...SECRETS, 'price feed', 'feed.example.com', 'a1b2c3', TOKEN]) {
      expect(raw.includes(text)).toBe(false);
      expect(ciphertext.includes(text)).toBe(false);
    }
    expect(envelope).toMatchObject({
      format: 'wsmon-agent-config/1',
      kdf: 'HKDF-SHA256',
      cipher: 'AES-256-GCM',
    });
  });

  it('cannot be read with another token: the agent starts with nothing', async () => {
    await new ConfigStore(path, TOKEN).save(keptConfig());
    const loaded = await new ConfigStore(path, 'wsa_another_location_token_99').load();
    expect(loaded).toEqual({
      kind: 'unreadable',
      reason: 'cannot be decrypted with this WSMON_TOKEN (the token changed, or the file is damaged)',
    });
  });

  it('reports a damaged file without throwing', async () => {
    const store = new ConfigStore(path, TOKEN);
    await store.save(keptConfig());
    const envelope = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    const flipped = Buffer.from(envelope.ciphertext!, 'base64');
    flipped[0]! ^= 1;
    writeFileSync(path, JSON.stringify({ ...envelope, ciphertext: flipped.toString('base64') }));
    expect((await store.load()).kind).toBe('unreadable');

    writeFileSync(path, '{"format":"wsmon-agent-config/1"');
    expect(await store.load()).toEqual({
      kind: 'unreadable',
      reason: 'damaged: not a kept configuration file',
    });
  });

  it('keeps the latest of saves that come while one is written', async () => {
    const store = new ConfigStore(path, TOKEN);
    await Promise.all([store.save(keptConfig(1)), store.save(keptConfig(2)), store.save(keptConfig(3))]);
    const loaded = await store.load();
    expect(loaded.kind === 'loaded' && loaded.config.revision).toBe(3);
  });
});

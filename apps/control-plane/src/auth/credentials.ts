import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys and agent tokens: `<kind>_<prefix>_<secret>`. The prefix finds the row; only a
 * SHA-256 of the secret is stored (256 random bits need no slow hash: nothing to brute-force).
 */
export interface MintedCredential {
  readonly token: string;
  readonly prefix: string;
  readonly secretHash: string;
}

export type CredentialKind = 'wsk' | 'wsa';

export function mintCredential(kind: CredentialKind): MintedCredential {
  const prefix = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `${kind}_${prefix}_${secret}`, prefix, secretHash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function parseCredential(
  token: string,
  kind: CredentialKind,
): { prefix: string; secret: string } | undefined {
  const match = /^([a-z]+)_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match || match[1] !== kind) return undefined;
  return { prefix: match[2]!, secret: match[3]! };
}

export function secretMatches(secret: string, expectedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(expectedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

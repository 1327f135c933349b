import type { ProbeConfig } from '@wsmon/contracts';

export const REDACTED = '[redacted]';

/** Header and query parameter names whose values are credentials. */
const SENSITIVE_NAME = /auth|token|secret|key|session|password|passwd|cookie|signature|sig$|credential/i;
/** Shorter values are not worth scrubbing and would mangle ordinary text. */
const MIN_SECRET_CHARS = 4;

/**
 * Removes every credential of a probe configuration from text the probe records: servers
 * reflect Authorization headers in 401 bodies and echo cookies in messages, so a result or a
 * log line would otherwise leak them.
 */
export class SecretScrubber {
  private readonly secrets: string[];

  /** `extra`: credentials of a profile's options (auth payloads, passcodes). */
  constructor(
    config: Pick<ProbeConfig, 'url' | 'headers' | 'cookies' | 'basic_auth'>,
    extra: readonly string[] = [],
  ) {
    const found = new Set<string>();
    const add = (value: string | undefined) => {
      if (value && value.length >= MIN_SECRET_CHARS) found.add(value);
    };
    for (const value of extra) {
      add(value);
      add(value.split(/\s+/).slice(1).join(' '));
    }
    for (const [name, value] of Object.entries(config.headers)) {
      if (!SENSITIVE_NAME.test(name)) continue;
      add(value);
      // "Bearer abc": the credential alone may be echoed without its scheme.
      add(value.split(/\s+/).slice(1).join(' '));
    }
    for (const pair of config.cookies?.split(';') ?? []) {
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      add(value);
      add(value.replace(/^"|"$/g, ''));
    }
    if (config.basic_auth) {
      const { username, password } = config.basic_auth;
      add(password);
      add(Buffer.from(`${username}:${password}`).toString('base64'));
    }
    const url = new URL(config.url);
    add(decodeURIComponent(url.password));
    for (const [name, value] of url.searchParams) if (SENSITIVE_NAME.test(name)) add(value);
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...found].sort((a, b) => b.length - a.length);
  }

  get isEmpty(): boolean {
    return this.secrets.length === 0;
  }

  scrub = (text: string): string => {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  };
}

/** The URL as it may be shown: no user:password, credential query values masked. */
export function displayUrl(raw: string): string {
  const url = new URL(raw);
  url.username = '';
  url.password = '';
  for (const name of [...url.searchParams.keys()]) {
    if (SENSITIVE_NAME.test(name)) url.searchParams.set(name, REDACTED);
  }
  return url.toString();
}

/**
 * The strings of a JSON value found under a credential-like key at any depth (`authToken`,
 * `headers.Authorization`, `session.key`): the secrets of a payload that also holds plain settings.
 * With `underSensitive`, every string: for a payload that is a credential as a whole (Socket.IO's auth).
 */
export function sensitiveLeaves(value: unknown, underSensitive = false): string[] {
  if (typeof value === 'string') return underSensitive ? [value] : [];
  if (Array.isArray(value)) return value.flatMap((v) => sensitiveLeaves(v, underSensitive));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, v]) =>
      sensitiveLeaves(v, underSensitive || SENSITIVE_NAME.test(key)),
    );
  }
  return [];
}

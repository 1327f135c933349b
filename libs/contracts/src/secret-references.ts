import type { ProbeConfig } from './probe-config.schema';

/**
 * `{{ secrets.NAME }}` inside headers, cookies, basic auth, messages and the credentials of protocol
 * profiles (STOMP passcode, Socket.IO auth, GraphQL init payload). The control plane keeps secrets
 * encrypted and resolves references only for the agents that run the test.
 */
export const SECRET_REFERENCE = /\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/g;

/** Replaces every secret reference; validation uses it to check the shape around references. */
export function withoutSecretReferences(text: string, placeholder = 'secret'): string {
  return text.replace(SECRET_REFERENCE, placeholder);
}

function secretBearingTexts(config: ProbeConfig): string[] {
  const texts: string[] = [...Object.values(config.headers)];
  if (config.cookies !== undefined) texts.push(config.cookies);
  if (config.basic_auth) texts.push(config.basic_auth.password);
  if (config.send_message !== undefined) texts.push(config.send_message);
  for (const step of config.steps ?? []) if (step.type === 'send') texts.push(step.message);
  if (config.stomp?.passcode !== undefined) texts.push(config.stomp.passcode);
  texts.push(...jsonStrings(config.socket_io?.auth), ...jsonStrings(config.graphql?.init_payload));
  if (config.sticky_session?.send !== undefined) texts.push(config.sticky_session.send);
  return texts;
}

/** Every string inside a JSON value. */
function jsonStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(jsonStrings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(jsonStrings);
  return [];
}

/** A copy of a JSON value with `resolve` applied to every string in it. */
function mapJsonStrings<T>(value: T, resolve: (text: string) => string): T {
  if (typeof value === 'string') return resolve(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => mapJsonStrings(v, resolve)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapJsonStrings(v, resolve)])) as T;
  }
  return value;
}

/** The names of the secrets a probe configuration references, sorted, each once. */
export function secretReferences(config: ProbeConfig): string[] {
  const names = new Set<string>();
  for (const text of secretBearingTexts(config)) {
    for (const match of text.matchAll(SECRET_REFERENCE)) names.add(match[1]!);
  }
  return [...names].sort();
}

/** A reference to a secret that does not exist (deleted since the test was saved). */
export class MissingSecretError extends Error {
  constructor(readonly names: readonly string[]) {
    super(`unknown secret(s): ${names.join(', ')}`);
    this.name = 'MissingSecretError';
  }
}

/**
 * The configuration with every `{{ secrets.NAME }}` replaced by its value, for delivery to the
 * agents that run the test (and nowhere else: the result is secret-bearing and must never be
 * logged). Returns a new object; the stored configuration keeps its references. Throws
 * {@link MissingSecretError} naming every reference without a value.
 */
export function resolveSecretReferences(
  config: ProbeConfig,
  values: ReadonlyMap<string, string>,
): ProbeConfig {
  const missing = secretReferences(config).filter((name) => !values.has(name));
  if (missing.length) throw new MissingSecretError(missing);
  const resolve = (text: string) =>
    text.replace(SECRET_REFERENCE, (_match, name: string) => values.get(name)!);
  return {
    ...config,
    headers: Object.fromEntries(
      Object.entries(config.headers).map(([name, value]) => [name, resolve(value)]),
    ),
    ...(config.cookies === undefined ? {} : { cookies: resolve(config.cookies) }),
    ...(config.basic_auth
      ? { basic_auth: { ...config.basic_auth, password: resolve(config.basic_auth.password) } }
      : {}),
    ...(config.send_message === undefined ? {} : { send_message: resolve(config.send_message) }),
    ...(config.steps
      ? {
          steps: config.steps.map((step) =>
            step.type === 'send' ? { ...step, message: resolve(step.message) } : step,
          ),
        }
      : {}),
    ...(config.stomp?.passcode === undefined
      ? {}
      : { stomp: { ...config.stomp, passcode: resolve(config.stomp.passcode) } }),
    ...(config.socket_io?.auth === undefined
      ? {}
      : { socket_io: { ...config.socket_io, auth: mapJsonStrings(config.socket_io.auth, resolve) } }),
    ...(config.graphql?.init_payload === undefined
      ? {}
      : {
          graphql: { ...config.graphql, init_payload: mapJsonStrings(config.graphql.init_payload, resolve) },
        }),
    ...(config.sticky_session?.send === undefined
      ? {}
      : { sticky_session: { ...config.sticky_session, send: resolve(config.sticky_session.send) } }),
  };
}

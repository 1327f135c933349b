import type { ProbeConfig } from './probe-config.schema';

/**
 * `{{ secrets.NAME }}` inside headers, cookies, basic auth and messages. The control plane keeps
 * secrets encrypted and resolves references only for the agents that run the test.
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
  return texts;
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
  };
}

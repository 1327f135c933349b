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

import type { z } from 'zod';
import { parseInput } from './resources.schema';

/** One line per bad variable, for a start-up error that an operator can act on. */
export class EnvironmentError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid environment:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'EnvironmentError';
  }
}

/**
 * Validates process environment variables with a schema keyed by variable name. Empty variables
 * count as unset (`FOO= cmd` clears one); each error names the variable and shows the raw text
 * that was set, except for `sensitive` variables (credentials, URLs that may carry passwords).
 */
export function parseEnvironment<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv,
  sensitive: ReadonlySet<string> = new Set(),
): z.output<S> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = parseInput(schema, present);
  if (parsed.ok) return parsed.value;
  throw new EnvironmentError(
    parsed.errors.map((e) => {
      // The raw text as set: a coerced value (NaN for "eighty") would say less.
      const raw = present[e.path];
      return raw === undefined || sensitive.has(e.path)
        ? e.message
        : `${e.message} (got ${JSON.stringify(raw)})`;
    }),
  );
}

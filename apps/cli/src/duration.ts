import { UsageError } from './cli-io';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `500ms`, `90s`, `15m`, `1h`, `7d`, or a plain number of seconds, as milliseconds; `flag` names the
 * option in the usage error for anything else.
 */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a duration such as 90s, 15m, 1h or 7d`);
  }
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? 's']!;
  if (ms <= 0) throw new UsageError(`${flag}: must be longer than 0`);
  return ms;
}

import { parseInput } from '@wsmon/contracts';
import type { z } from 'zod';
import { InvalidArgumentError } from './errors';

/** Validates a request with a shared schema; every violation becomes a field error. */
export function validated<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const outcome = parseInput(schema, input ?? {});
  if (!outcome.ok) throw new InvalidArgumentError(outcome.errors);
  return outcome.value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string): boolean => UUID.test(value);

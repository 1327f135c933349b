import type { ApiClient } from './api-client';
import { CommandError } from './cli-io';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A test as the REST API lists it, with the fields the listings use. */
export interface TestSummary {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly locations: readonly string[];
}

/** The test a command line names: by its id, or by its exact name (which must be unique). */
export async function findTest(api: ApiClient, key: string): Promise<TestSummary> {
  if (UUID.test(key)) return api.get<TestSummary>(`/tests/${key.toLowerCase()}`);
  // The API's text filter is a case-insensitive substring: the exact name is picked from its answer.
  const matches = (await api.all<TestSummary>('/tests', { q: key })).filter((t) => t.name === key);
  if (matches.length === 1) return matches[0]!;
  if (!matches.length)
    throw new CommandError(`no test is named ${JSON.stringify(key)} (give its name or id)`);
  throw new CommandError(
    `${matches.length} tests are named ${JSON.stringify(key)}: give one's id`,
    matches.map((t) => t.id),
  );
}

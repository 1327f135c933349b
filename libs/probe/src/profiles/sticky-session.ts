import { selectJsonPath, stickySessionOptionsSchema, type StickySessionOptions } from '@wsmon/contracts';
import type { RegexCache } from '../assertions';
import { fail } from '../failure';
import { now } from '../wait';
import {
  quote,
  text,
  timedOut,
  type ProfileCompiler,
  type ProfileConnection,
  type ProfileSession,
} from './profile';

/**
 * Sticky sessions: `connections` connections one after the other, each reading the server id from
 * its first message; they must all reach the same server. Phases `connection_1` … `connection_N`.
 */
export const compileStickySession: ProfileCompiler = (config, regexes) => {
  const options = config.sticky_session ?? stickySessionOptionsSchema.parse({});
  return {
    name: 'sticky_session',
    secrets: [],
    run: (session) => runStickySession(session, options, regexes),
  };
};

/** The server id in a first message, or undefined when it has none where the options say. */
export function serverIdOf(
  message: string,
  options: StickySessionOptions,
  regexes: RegexCache,
): string | undefined {
  if (options.server_id_regex !== undefined) {
    const match = regexes.get(options.server_id_regex).exec(message);
    return match ? (match[1] ?? match[0]) : undefined;
  }
  const document = parseJson(message);
  const selected = selectJsonPath(document, regexes.path(options.server_id_path ?? '$'));
  if (!selected.found || selected.value === null || selected.value === '') return undefined;
  return typeof selected.value === 'string' ? selected.value : JSON.stringify(selected.value);
}

function parseJson(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

async function runStickySession(
  session: ProfileSession,
  options: StickySessionOptions,
  regexes: RegexCache,
): Promise<void> {
  const ids: string[] = [];
  const where =
    options.server_id_regex !== undefined ? `regex ${options.server_id_regex}` : options.server_id_path;
  try {
    for (let n = 1; n <= options.connections; n++) {
      await session.phase(`connection_${n}`, async () => {
        const connection: ProfileConnection = n === 1 ? session : await session.connectAgain();
        try {
          const startMs = now();
          if (options.send !== undefined) connection.send(options.send);
          const first = await connection.next(session.endAfter(options.message_timeout_ms));
          if (!first) throw timedOut('reply_timeout', `connection ${n}: no first message`, startMs);
          const body = text(first);
          if (n === 1) session.subject(body, first.atMs);
          const id = serverIdOf(body, options, regexes);
          if (id === undefined) {
            throw fail(
              'ws_reply_mismatch',
              'sticky_server_id_missing',
              `connection ${n}: the first message names no server at ${where}: ${quote(body)}`,
            );
          }
          ids.push(id);
        } finally {
          // Each connection ends before the next opens, as a user's reconnection would.
          await (connection === session ? session.closeOwn() : session.release(connection));
        }
      });
    }
  } finally {
    session.fact('server_ids', [...ids]);
    session.fact('distinct_servers', new Set(ids).size);
  }
  const distinct = [...new Set(ids)];
  if (distinct.length > 1) {
    throw fail(
      'assertion_failed',
      'sticky_session_broken',
      `${ids.length} connections reached ${distinct.length} servers (${ids.join(', ')}): the session is not sticky`,
    );
  }
}

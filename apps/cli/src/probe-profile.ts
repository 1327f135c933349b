import { UsageError } from './cli-io';

/**
 * `--option key=value` of `wsmon probe --profile …`: sets one field of the profile's options object
 * (`graphql`, `socket_io`, …) in the shared schema's JSON form. Whether the field and value are allowed
 * is for `parseProbeConfig` to say, so the CLI and the APIs reject the same things.
 */

/** Grammar of `--option`, as printed in help and usage errors. */
export const OPTION_GRAMMAR = '<key>[.<key>…]=<value>';

const KEY = /^[a-z_][a-z0-9_]*$/;
/** Keys that would reach an object's prototype instead of a field. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Values read as JSON: objects, arrays, quoted strings, numbers, true, false, null. */
const JSON_VALUE = /^(\{|\[|"|-?\d|true$|false$|null$)/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `subscribe.query=subscription { a }` becomes `{path: ['subscribe', 'query'], value: 'subscription { a }'}`;
 * `notifications=3` a number, `auth={"token":"…"}` an object, `passcode="1234"` the string `1234`.
 * `n` (1-based) numbers the flag in errors; the value itself is never echoed (it may be a credential).
 */
export function parseProfileOption(text: string, n: number): { path: string[]; value: unknown } {
  const eq = text.indexOf('=');
  const path = (eq === -1 ? '' : text.slice(0, eq)).split('.');
  if (eq === -1 || !path.every((key) => KEY.test(key) && !FORBIDDEN_KEYS.has(key))) {
    throw new UsageError(
      `--option #${n}: expected ${OPTION_GRAMMAR}, such as subscribe.query='subscription { ticks }'`,
    );
  }
  const raw = text.slice(eq + 1);
  if (!JSON_VALUE.test(raw)) return { path, value: raw };
  try {
    return { path, value: JSON.parse(raw) as unknown };
  } catch {
    // Text that merely starts like JSON ("1 minute", "{{ secrets.X }}") is taken as it is.
    return { path, value: raw };
  }
}

/** The options object with each `--option` applied in order, on a copy of what `--config` gave. */
export function withProfileOptions(fromConfig: unknown, options: readonly string[]): Record<string, unknown> {
  const root: Record<string, unknown> = isPlainObject(fromConfig) ? structuredClone(fromConfig) : {};
  options.forEach((text, i) => {
    const { path, value } = parseProfileOption(text, i + 1);
    let node = root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      node[key] = isPlainObject(next) ? next : {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  });
  return root;
}

/** The options of each profile, for `wsmon probe --help` (docs/probe.md has the rules). */
export const PROFILE_HELP = `
Profiles (--profile NAME, with --option KEY=VALUE for its options, or "NAME": {…} in --config):
  graphql         protocol (graphql-transport-ws | subscriptions-transport-ws), init_payload={…},
                  ack_timeout_ms, subscribe.query, subscribe.variables={…}, subscribe.operation_name,
                  subscribe.timeout_ms, ping=true, ping_timeout_ms
  socket_io       path (/socket.io/), namespace (/), auth={…}, connect_timeout_ms, emit.event,
                  emit.args=[…], emit.ack=false, emit.timeout_ms, expect_event.event,
                  expect_event.timeout_ms, hold_ms
  stomp           host, login, passcode, heart_beat.send_ms, heart_beat.receive_ms,
                  connect_timeout_ms, subscribe.destination, subscribe.send, subscribe.timeout_ms,
                  receipt_timeout_ms
  json_rpc        mode (subscribe | call), method (eth_subscribe), params=[…], response_timeout_ms,
                  notifications, notification_timeout_ms, unsubscribe_method,
                  freshness.increasing_block_number=true, freshness.max_age_s,
                  freshness.block_number_path, freshness.timestamp_path
  sticky_session  connections (3), server_id_path (such as $.server_id) or server_id_regex, send,
                  message_timeout_ms
  Values that look like JSON ({…}, […], numbers, true, false, null, "quoted") are read as JSON.
  Credentials (init_payload, auth, passcode) are never printed.`;

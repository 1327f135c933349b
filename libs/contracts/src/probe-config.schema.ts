import { z } from 'zod';
import { parseJsonPath } from './json-path';
import { withoutSecretReferences } from './secret-references';
import { RULE_PARAM, toFieldErrors, type ParseOutcome, ConfigValidationError } from './config-errors';

/**
 * The one schema of a WebSocket probe configuration. REST, gRPC, the CLI and the agent all
 * validate through {@link parseProbeConfig}; field names and defaults follow the reference
 * "Configure WebSocket probes" page (seed 001), extended with assertions and steps.
 */

export const INTERPRETATIONS = ['handshake_latency', 'round_trip_latency', 'connection_success'] as const;
export type Interpretation = (typeof INTERPRETATIONS)[number];

export const PING_MODES = ['none', 'message', 'protocol'] as const;
export type PingMode = (typeof PING_MODES)[number];

export const IP_VERSIONS = ['any', 'ipv4', 'ipv6'] as const;
export type IpVersion = (typeof IP_VERSIONS)[number];

export const TIMEOUT_MS = { default: 10_000, min: 100, max: 30_000 } as const;
export const MAX_ASSERTIONS = 20;
export const MAX_STEPS = 50;
export const MAX_MESSAGE_CHARS = 65_536;
/** RFC 6455 §5.5: control frame payloads are at most 125 bytes; the close reason gets 123. */
export const MAX_PING_PAYLOAD_BYTES = 125;
export const MAX_CLOSE_REASON_BYTES = 123;

export const STRING_OPERATORS = [
  'contains',
  'does_not_contain',
  'is',
  'is_not',
  'matches',
  'does_not_match',
] as const;
export type StringOperator = (typeof STRING_OPERATORS)[number];
/** Operators of `json_path` assertions, on the value a JSON path selects in a message. */
export const JSON_PATH_OPERATORS = ['exists', 'equals', 'matches', 'less_than', 'greater_than'] as const;
export type JsonPathOperator = (typeof JSON_PATH_OPERATORS)[number];
export const RESPONSE_TIME_PROPERTIES = ['connect', 'round_trip', 'total'] as const;
export type ResponseTimeProperty = (typeof RESPONSE_TIME_PROPERTIES)[number];

/**
 * Reports a custom rule. `rejected`, when given, is the value the error echoes (secret paths are never
 * echoed); without it the error echoes the value being refined, which for an object is nothing.
 */
function custom(
  ctx: z.RefinementCtx,
  path: PropertyKey[],
  rule: string,
  message: string,
  ...rejected: [unknown?]
) {
  ctx.addIssue({
    code: 'custom',
    path,
    message,
    params: { [RULE_PARAM]: rule },
    ...(rejected.length > 0 ? { input: rejected[0] } : {}),
  });
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** RFC 7230 token: header names and subprotocol names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the WebSocket client itself owns; overriding them breaks the handshake. */
const HANDSHAKE_HEADERS = new Set([
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);
const HOSTNAME =
  /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

function isValidRegex(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const closeCode = z
  .number()
  .int()
  .min(1000)
  .max(4999)
  .superRefine((code, ctx) => {
    // 1005, 1006 and 1015 are reserved for reporting; they never appear in a close frame.
    if ([1004, 1005, 1006, 1015].includes(code) || (code >= 1016 && code < 3000)) {
      custom(ctx, [], 'close_code', `${code} is not a close code an endpoint can send`);
    }
  });

const sendableCloseCode = z
  .number()
  .int()
  .superRefine((code, ctx) => {
    if (code !== 1000 && (code < 3000 || code > 4999)) {
      custom(ctx, [], 'close_code', 'a client may close with 1000 or an application code from 3000 to 4999');
    }
  });

const timeoutWithin = z.number().int().min(1).max(TIMEOUT_MS.max);

// ---------- assertions ----------

const stringTarget = z.string().max(4096);

const responseTimeAssertion = z.strictObject({
  type: z.literal('response_time'),
  operator: z.enum(['less_than']),
  property: z.enum(RESPONSE_TIME_PROPERTIES),
  target: z.number().positive().max(300_000),
});
const receivedMessageAssertion = z.strictObject({
  type: z.literal('received_message'),
  operator: z.enum(STRING_OPERATORS),
  target: stringTarget,
});
const headerAssertion = z.strictObject({
  type: z.literal('header'),
  operator: z.enum(STRING_OPERATORS),
  property: z.string().refine((name) => TOKEN.test(name), {
    message: 'must be an HTTP header name',
    params: { [RULE_PARAM]: 'header_name' },
  }),
  target: stringTarget,
});
const closeCodeAssertion = z.strictObject({
  type: z.literal('close_code'),
  operator: z.enum(['is', 'is_not']),
  target: z.number().int().min(1000).max(4999),
});
const subprotocolAssertion = z.strictObject({
  type: z.literal('subprotocol'),
  operator: z.enum(['is', 'is_not']),
  target: z.string().max(256),
});
const certificateDaysAssertion = z.strictObject({
  type: z.literal('certificate_days_remaining'),
  operator: z.enum(['greater_than']),
  target: z.number().min(0).max(36_500),
});

/** A JSON path of the subset {@link parseJsonPath} reads: `$.data.id`, `$[0].ok`, `$['x-id']`. */
export const jsonPathSchema = z
  .string()
  .max(1024)
  .superRefine((path, ctx) => {
    const parsed = parseJsonPath(path);
    if (!parsed.ok) custom(ctx, [], 'json_path', `is not a JSON path: ${parsed.problem}`);
  });

/**
 * `json_path`: parses the message as JSON and checks the value the path (`property`) selects.
 * `exists` takes no target; `equals` any JSON value (deep equality); `matches` a regex (tested against
 * strings as they are, other values as JSON text); `less_than` and `greater_than` a number (the value
 * must be a number or a numeric string, `0x` hex included: block numbers are hex).
 */
const jsonPathAssertion = z.strictObject({
  type: z.literal('json_path'),
  operator: z.enum(JSON_PATH_OPERATORS),
  property: jsonPathSchema,
  target: z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]).optional(),
});

function checkJsonPathTarget(
  a: { type: string; operator: string; target?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (a.type !== 'json_path') return;
  if (a.operator === 'exists') {
    if (a.target !== undefined) custom(ctx, ['target'], 'no_target', 'exists takes no target', a.target);
    return;
  }
  if (a.target === undefined) {
    custom(ctx, ['target'], 'required', `is required for ${a.operator}`, undefined);
    return;
  }
  if ((a.operator === 'less_than' || a.operator === 'greater_than') && typeof a.target !== 'number') {
    custom(ctx, ['target'], 'number', `must be a number for ${a.operator}`, a.target);
  }
  if (a.operator === 'matches' && typeof a.target !== 'string') {
    custom(ctx, ['target'], 'regex', 'must be a regular expression (a string) for matches', a.target);
  }
}

/** Checks a regex target once, at validation time: a bad pattern is a config error, never a probe failure. */
function checkRegexTarget(a: { operator: string; target?: unknown }, ctx: z.RefinementCtx) {
  if ((a.operator === 'matches' || a.operator === 'does_not_match') && typeof a.target === 'string') {
    const problem = isValidRegex(a.target);
    if (problem) custom(ctx, ['target'], 'regex', `is not a valid regular expression (${problem})`, a.target);
  }
}

function checkAssertionTarget(a: { type: string; operator: string; target?: unknown }, ctx: z.RefinementCtx) {
  checkRegexTarget(a, ctx);
  checkJsonPathTarget(a, ctx);
}

export const assertionSchema = z
  .discriminatedUnion('type', [
    responseTimeAssertion,
    receivedMessageAssertion,
    headerAssertion,
    closeCodeAssertion,
    subprotocolAssertion,
    certificateDaysAssertion,
    jsonPathAssertion,
  ])
  .superRefine(checkAssertionTarget);
export type Assertion = z.infer<typeof assertionSchema>;
export type AssertionType = Assertion['type'];
export const ASSERTION_TYPES = [
  'response_time',
  'received_message',
  'header',
  'close_code',
  'subprotocol',
  'certificate_days_remaining',
  'json_path',
] as const satisfies readonly AssertionType[];

/** Assertions a receive step makes about the message it received: its text, or a value of its JSON. */
export const messageAssertionSchema = z
  .discriminatedUnion('type', [receivedMessageAssertion, jsonPathAssertion])
  .superRefine(checkAssertionTarget);
export type MessageAssertion = z.infer<typeof messageAssertionSchema>;

// ---------- steps ----------

export const connectStepSchema = z.strictObject({
  type: z.literal('connect'),
  /** Fail unless the connection is open within this many ms of the probe's start. */
  within_ms: timeoutWithin.optional(),
});
export const sendStepSchema = z.strictObject({
  type: z.literal('send'),
  message: z.string().max(MAX_MESSAGE_CHARS),
});
export const receiveStepSchema = z.strictObject({
  type: z.literal('receive'),
  timeout_ms: timeoutWithin.optional(),
  /** Substring the message must contain; blank accepts any message. */
  expect_message: z.string().max(MAX_MESSAGE_CHARS).optional(),
  /** Skip messages that do not match (heartbeats, unrelated pushes) instead of failing on the first. */
  skip_non_matching: z.boolean().default(false),
  assertions: z.array(messageAssertionSchema).max(MAX_ASSERTIONS).default([]),
});
export const pingStepSchema = z.strictObject({
  type: z.literal('ping'),
  timeout_ms: timeoutWithin.optional(),
  payload: z
    .string()
    .refine((p) => utf8Bytes(p) <= MAX_PING_PAYLOAD_BYTES, {
      message: `must be at most ${MAX_PING_PAYLOAD_BYTES} bytes (a control frame limit)`,
      params: { [RULE_PARAM]: 'max_bytes' },
    })
    .optional(),
});
export const holdStepSchema = z.strictObject({
  type: z.literal('hold'),
  duration_ms: z.number().int().min(1).max(TIMEOUT_MS.max),
  /** At least this many messages must arrive while holding: the silent-drop check. */
  min_messages: z.number().int().min(0).max(1_000_000).default(0),
  /** At least this many pongs must answer the pings sent while holding. */
  min_pongs: z.number().int().min(0).max(10_000).default(0),
  /** Protocol pings sent while holding; defaults to 1000 ms when min_pongs is set. */
  ping_interval_ms: z.number().int().min(10).max(TIMEOUT_MS.max).optional(),
});
export const disconnectStepSchema = z.strictObject({
  type: z.literal('disconnect'),
  /** `client` sends a close frame and awaits the answer; `server` waits for the endpoint to close. */
  initiator: z.enum(['client', 'server']).default('client'),
  code: sendableCloseCode.default(1000),
  reason: z
    .string()
    .refine((r) => utf8Bytes(r) <= MAX_CLOSE_REASON_BYTES, {
      message: `must be at most ${MAX_CLOSE_REASON_BYTES} bytes`,
      params: { [RULE_PARAM]: 'max_bytes' },
    })
    .optional(),
  expected_close_code: closeCode.optional(),
  timeout_ms: timeoutWithin.optional(),
});

export const stepSchema = z.discriminatedUnion('type', [
  connectStepSchema,
  sendStepSchema,
  receiveStepSchema,
  pingStepSchema,
  holdStepSchema,
  disconnectStepSchema,
]);
export type Step = z.infer<typeof stepSchema>;
export type StepType = Step['type'];
export type ConnectStep = z.infer<typeof connectStepSchema>;
export type SendStep = z.infer<typeof sendStepSchema>;
export type ReceiveStep = z.infer<typeof receiveStepSchema>;
export type PingStep = z.infer<typeof pingStepSchema>;
export type HoldStep = z.infer<typeof holdStepSchema>;
export type DisconnectStep = z.infer<typeof disconnectStepSchema>;

// ---------- the configuration ----------

const wsUrl = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      custom(ctx, [], 'url', 'must be an absolute URL such as wss://example.com/socket');
      return;
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      custom(ctx, [], 'ws_scheme', `must start with ws:// or wss:// (got ${url.protocol}//)`);
    }
    if (!url.hostname) custom(ctx, [], 'url', 'must name a host');
    // RFC 6455 §3: fragments are meaningless in WebSocket URIs and clients must reject them.
    if (url.hash) custom(ctx, [], 'no_fragment', 'must not contain a #fragment');
  });

const headersSchema = z.record(z.string(), z.string().max(8192)).superRefine((headers, ctx) => {
  const seen = new Set<string>();
  const names = Object.keys(headers);
  if (names.length > 100) custom(ctx, [], 'max_items', 'must have at most 100 headers');
  for (const name of names) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) custom(ctx, [name], 'header_name', 'is not a valid HTTP header name');
    else if (HANDSHAKE_HEADERS.has(lower)) {
      const hint = lower === 'sec-websocket-protocol' ? '; use protocols' : '';
      custom(ctx, [name], 'reserved_header', `is set by the WebSocket handshake itself${hint}`);
    }
    if (seen.has(lower)) custom(ctx, [name], 'duplicate_header', 'is given twice (header names ignore case)');
    seen.add(lower);
    if (!HEADER_VALUE.test(headers[name] ?? '')) {
      custom(
        ctx,
        [name],
        'header_value',
        'must not contain line breaks, control characters or characters beyond Latin-1',
      );
    }
  }
});

/** `NAME1=VALUE1; NAME2=VALUE2`, the form of the reference's Cookies option. */
const COOKIE_PAIR = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=("?)([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)\2$/;
const cookiesSchema = z
  .string()
  .max(8192)
  .superRefine((value, ctx) => {
    // A `{{ secrets.NAME }}` value is checked as the token it will be replaced with.
    const pairs = withoutSecretReferences(value)
      .split(';')
      .map((p) => p.trim());
    pairs.forEach((pair, i) => {
      if (!COOKIE_PAIR.test(pair)) {
        custom(
          ctx,
          [],
          'cookie_format',
          `cookie ${i + 1} must look like NAME=VALUE (form NAME1=VALUE1; NAME2=VALUE2)`,
        );
      }
    });
  });

const basicAuthSchema = z.strictObject({
  username: z
    .string()
    .min(1)
    .max(256)
    .refine((u) => !u.includes(':'), {
      message: 'must not contain ":" (RFC 7617)',
      params: { [RULE_PARAM]: 'no_colon' },
    }),
  password: z.string().max(1024),
});

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const tlsSchema = z.strictObject({
  /** Accept any certificate. The probe still records the certificate and why it would fail. */
  skip_verify: z.boolean().default(false),
  /** PEM bundle of CAs trusted in addition to the system roots (private PKI). */
  ca_pem: z
    .string()
    .max(256 * 1024)
    .refine((v) => PEM_CERTIFICATE.test(v), {
      message: 'must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)',
      params: { [RULE_PARAM]: 'pem' },
    })
    .optional(),
  /** SNI and the name the certificate is checked against, when it differs from the URL's host. */
  server_name: z
    .string()
    .refine((name) => HOSTNAME.test(name), {
      message: 'must be a DNS host name such as api.example.com',
      params: { [RULE_PARAM]: 'hostname' },
    })
    .optional(),
});

export const MAX_PROTOCOLS = 16;
/** `"a, b"` (the form of a Sec-WebSocket-Protocol header) or `["a", "b"]`; both become an array. */
const protocolsSchema = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (typeof v === 'string' ? v.split(',').map((p) => p.trim()) : v))
  .superRefine((list, ctx) => {
    // Checked after normalising, so the string form obeys the same bound as the array form.
    if (list.length > MAX_PROTOCOLS) {
      custom(ctx, [], 'max_items', `must have at most ${MAX_PROTOCOLS} items`, undefined);
    }
    const seen = new Set<string>();
    list.forEach((p, i) => {
      if (!TOKEN.test(p))
        custom(ctx, [i], 'token', `subprotocol ${JSON.stringify(p)} is not a valid token`, p);
      if (seen.has(p)) custom(ctx, [i], 'unique', `subprotocol ${JSON.stringify(p)} is offered twice`, p);
      seen.add(p);
    });
  });

/** What browsers send: `null`, or scheme://host[:port] with nothing after it (RFC 6454). */
const ORIGIN = /^https?:\/\/[^/?#@\s]+$/i;
const originSchema = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    let ok = value === 'null';
    if (!ok && ORIGIN.test(value)) {
      try {
        new URL(value);
        ok = true;
      } catch {
        /* not a URL */
      }
    }
    if (!ok) {
      custom(
        ctx,
        [],
        'origin_format',
        'must be an origin such as https://app.example.com (no path), or null',
      );
    }
  });

// ---------- protocol profiles ----------

/**
 * What the probe speaks once the WebSocket is open. `raw` (the default, also when `profile` is left
 * out) runs the single-message form or the steps; every other profile runs its protocol's own
 * conversation, configured by the options object of the same name.
 */
export const PROFILES = ['raw', 'graphql', 'socket_io', 'stomp', 'json_rpc', 'sticky_session'] as const;
export type ProbeProfile = (typeof PROFILES)[number];
/** The profiles with an options object, named after the profile. */
export const PROFILE_OPTION_FIELDS = ['graphql', 'socket_io', 'stomp', 'json_rpc', 'sticky_session'] as const;
export type ProfileOptionField = (typeof PROFILE_OPTION_FIELDS)[number];

export const GRAPHQL_PROTOCOLS = ['graphql-transport-ws', 'subscriptions-transport-ws'] as const;
export type GraphqlProtocol = (typeof GRAPHQL_PROTOCOLS)[number];
/** The subprotocol each GraphQL protocol is negotiated as (the legacy one is confusingly `graphql-ws`). */
export const GRAPHQL_SUBPROTOCOLS: Record<GraphqlProtocol, string> = {
  'graphql-transport-ws': 'graphql-transport-ws',
  'subscriptions-transport-ws': 'graphql-ws',
};
export const MAX_PAYLOAD_JSON_BYTES = 65_536;
export const MAX_STICKY_CONNECTIONS = 10;

/** A JSON object (auth payloads, GraphQL variables), at most 64 KiB as JSON. */
const jsonObject = z.record(z.string(), z.json()).superRefine((value, ctx) => {
  if (utf8Bytes(JSON.stringify(value)) > MAX_PAYLOAD_JSON_BYTES) {
    custom(ctx, [], 'max_bytes', `must be at most ${MAX_PAYLOAD_JSON_BYTES} bytes as JSON`, undefined);
  }
});
const jsonArray = z.array(z.json()).superRefine((value, ctx) => {
  if (utf8Bytes(JSON.stringify(value)) > MAX_PAYLOAD_JSON_BYTES) {
    custom(ctx, [], 'max_bytes', `must be at most ${MAX_PAYLOAD_JSON_BYTES} bytes as JSON`, undefined);
  }
});
const nonBlank = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => v.trim().length > 0, {
      message: 'must not be blank',
      params: { [RULE_PARAM]: 'not_blank' },
    });

export const graphqlOptionsSchema = z.strictObject({
  /** `graphql-transport-ws` (the graphql-ws library) or the legacy `subscriptions-transport-ws`. */
  protocol: z.enum(GRAPHQL_PROTOCOLS).default('graphql-transport-ws'),
  /** The `connection_init` payload (connection params, typically auth); secret-bearing. */
  init_payload: jsonObject.optional(),
  /** `connection_ack` must arrive within this many ms of `connection_init`. */
  ack_timeout_ms: timeoutWithin.optional(),
  /** Subscribe, expect a first result without errors, then complete the subscription. */
  subscribe: z
    .strictObject({
      query: nonBlank(MAX_MESSAGE_CHARS),
      variables: jsonObject.optional(),
      operation_name: z.string().max(256).optional(),
      /** The first `next` (legacy: `data`) must arrive within this many ms of the subscribe. */
      timeout_ms: timeoutWithin.optional(),
    })
    .optional(),
  /** Time an application ping/pong round trip (graphql-transport-ws only). */
  ping: z.boolean().default(false),
  ping_timeout_ms: timeoutWithin.optional(),
});
export type GraphqlOptions = z.infer<typeof graphqlOptionsSchema>;

const SOCKET_IO_PATH = /^\/[!$&'()*+,;=:@A-Za-z0-9._~%/-]*$/;
export const socketIoOptionsSchema = z.strictObject({
  /** The Engine.IO path; else the URL's path when it is not `/`; else `/socket.io/`. */
  path: z
    .string()
    .max(512)
    .refine((p) => SOCKET_IO_PATH.test(p), {
      message: 'must be a URL path starting with /',
      params: { [RULE_PARAM]: 'path' },
    })
    .optional(),
  namespace: z
    .string()
    .max(256)
    .refine((n) => n.startsWith('/') && !n.includes(','), {
      message: 'must start with / and contain no comma',
      params: { [RULE_PARAM]: 'namespace' },
    })
    .default('/'),
  /** The namespace CONNECT packet's auth object; secret-bearing. */
  auth: jsonObject.optional(),
  /** The Engine.IO open packet and the namespace's CONNECT answer must arrive within this many ms. */
  connect_timeout_ms: timeoutWithin.optional(),
  /** Emit an event once connected; with `ack`, await its acknowledgement (the emit-to-ack round trip). */
  emit: z
    .strictObject({
      event: nonBlank(256),
      args: jsonArray.default([]),
      ack: z.boolean().default(true),
      timeout_ms: timeoutWithin.optional(),
    })
    .optional(),
  /** Await an event of this name (after the emit, if any). */
  expect_event: z
    .strictObject({
      event: nonBlank(256),
      timeout_ms: timeoutWithin.optional(),
    })
    .optional(),
  /** Stay connected this long answering the server's pings; fail when none arrives within pingInterval + pingTimeout. */
  hold_ms: z.number().int().min(1).max(TIMEOUT_MS.max).optional(),
});
export type SocketIoOptions = z.infer<typeof socketIoOptionsSchema>;

/** STOMP 1.2 §2.2: CONNECT frames are not escaped, so their header values cannot hold line breaks or NUL. */
const STOMP_CONNECT_VALUE = /^[^\r\n\0]*$/;
const stompHeaderValue = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => STOMP_CONNECT_VALUE.test(withoutSecretReferences(v)), {
      message: 'must not contain line breaks or NUL (a STOMP CONNECT header value)',
      params: { [RULE_PARAM]: 'stomp_header' },
    });
export const stompOptionsSchema = z.strictObject({
  /** The CONNECT `host` header (the virtual host); the URL's host by default. */
  host: stompHeaderValue(256).optional(),
  login: stompHeaderValue(256).optional(),
  /** Secret-bearing. */
  passcode: stompHeaderValue(1024).optional(),
  /** The CONNECT `heart-beat`: what the probe can send and would like to receive, in ms (0: none). */
  heart_beat: z
    .strictObject({
      send_ms: z.number().int().min(0).max(3_600_000).default(0),
      receive_ms: z.number().int().min(0).max(3_600_000).default(0),
    })
    .default({ send_ms: 0, receive_ms: 0 }),
  /** CONNECTED (or ERROR) must arrive within this many ms of CONNECT. */
  connect_timeout_ms: timeoutWithin.optional(),
  /** SUBSCRIBE to a destination and expect a MESSAGE from it. */
  subscribe: z
    .strictObject({
      destination: nonBlank(1024),
      /** A body SENT to the destination once subscribed: a self-test for destinations without traffic. */
      send: z.string().max(MAX_MESSAGE_CHARS).optional(),
      timeout_ms: timeoutWithin.optional(),
    })
    .optional(),
  /** The RECEIPT of the DISCONNECT must arrive within this many ms. */
  receipt_timeout_ms: timeoutWithin.optional(),
});
export type StompOptions = z.infer<typeof stompOptionsSchema>;

export const JSON_RPC_MODES = ['subscribe', 'call'] as const;
export type JsonRpcMode = (typeof JSON_RPC_MODES)[number];
export const JSON_RPC_DEFAULTS = {
  subscribeMethod: 'eth_subscribe',
  subscribeParams: ['newHeads'],
  unsubscribeMethod: 'eth_unsubscribe',
  blockNumberPath: '$.number',
  timestampPath: '$.timestamp',
} as const;
const JSON_RPC_METHOD = /^[A-Za-z0-9_.:/-]{1,128}$/;
const jsonRpcMethod = z.string().refine((m) => JSON_RPC_METHOD.test(m), {
  message: 'must be a method name (letters, digits, _ . : / -; at most 128)',
  params: { [RULE_PARAM]: 'method' },
});
export const jsonRpcOptionsSchema = z.strictObject({
  /** `subscribe`: a subscription and its notifications; `call`: one request and its response. */
  mode: z.enum(JSON_RPC_MODES).default('subscribe'),
  /** Default `eth_subscribe` in subscribe mode; required in call mode. */
  method: jsonRpcMethod.optional(),
  /** Default `["newHeads"]` with the default method, else `[]`. */
  params: z.union([jsonArray, jsonObject]).optional(),
  /** The response must arrive within this many ms of the request. */
  response_timeout_ms: timeoutWithin.optional(),
  /** Subscribe mode: how many notifications to await (default 1), all within notification_timeout_ms. */
  notifications: z.number().int().min(1).max(100).optional(),
  notification_timeout_ms: timeoutWithin.optional(),
  /** Subscribe mode: unsubscribed before closing with this method (default eth_unsubscribe). */
  unsubscribe_method: jsonRpcMethod.optional(),
  /** Checks that the data is current, on each notification's `params.result` (or the call's `result`). */
  freshness: z
    .strictObject({
      /** Each notification's block number must be greater than the one before (needs 2 notifications). */
      increasing_block_number: z.boolean().default(false),
      block_number_path: jsonPathSchema.default(JSON_RPC_DEFAULTS.blockNumberPath),
      /** The timestamp (Unix seconds, decimal or 0x hex) must be at most this many seconds old. */
      max_age_s: z
        .number()
        .positive()
        .max(86_400 * 365)
        .optional(),
      timestamp_path: jsonPathSchema.default(JSON_RPC_DEFAULTS.timestampPath),
    })
    .optional(),
});
export type JsonRpcOptions = z.infer<typeof jsonRpcOptionsSchema>;

export const stickySessionOptionsSchema = z.strictObject({
  /** Connections opened one after the other; each must reach the same server. */
  connections: z.number().int().min(2).max(MAX_STICKY_CONNECTIONS).default(3),
  /** Where the server id is in the first message: a JSON path... */
  server_id_path: jsonPathSchema.optional(),
  /** ...or a regex (its first capture group, else the whole match). Exactly one of the two. */
  server_id_regex: z.string().max(1024).optional(),
  /** Sent after each open, for servers that speak only when spoken to. */
  send: z.string().max(MAX_MESSAGE_CHARS).optional(),
  /** The first message of each connection must arrive within this many ms of its open. */
  message_timeout_ms: timeoutWithin.optional(),
});
export type StickySessionOptions = z.infer<typeof stickySessionOptionsSchema>;

const probeConfigObject = z.strictObject({
  url: wsUrl,
  timeout_ms: z.number().int().min(TIMEOUT_MS.min).max(TIMEOUT_MS.max).default(TIMEOUT_MS.default),
  interpretation: z.enum(INTERPRETATIONS).default('handshake_latency'),
  ping_mode: z.enum(PING_MODES).default('none'),
  send_message: z.string().max(MAX_MESSAGE_CHARS).optional(),
  expect_message: z.string().max(MAX_MESSAGE_CHARS).optional(),
  protocols: protocolsSchema.default([]),
  headers: headersSchema.default({}),
  cookies: cookiesSchema.optional(),
  basic_auth: basicAuthSchema.optional(),
  origin: originSchema.optional(),
  ip_version: z.enum(IP_VERSIONS).default('any'),
  tls: tlsSchema.optional(),
  assertions: z.array(assertionSchema).max(MAX_ASSERTIONS).default([]),
  steps: z.array(stepSchema).min(1).max(MAX_STEPS).optional(),
  /** Left out means `raw`: a configuration written before profiles existed parses unchanged. */
  profile: z.enum(PROFILES).optional(),
  graphql: graphqlOptionsSchema.optional(),
  socket_io: socketIoOptionsSchema.optional(),
  stomp: stompOptionsSchema.optional(),
  json_rpc: jsonRpcOptionsSchema.optional(),
  sticky_session: stickySessionOptionsSchema.optional(),
});

type ProbeConfigShape = z.infer<typeof probeConfigObject>;

/** The names under which a header is given, whatever their case. */
function headerKeys(headers: Record<string, string>, lowerName: string): string[] {
  return Object.keys(headers).filter((h) => h.toLowerCase() === lowerName);
}

/** The URL's scheme (`ws:`, `wss:`), read as the URL parser reads it: `WSS://` is secure too. */
function urlScheme(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}

/**
 * Whether the scenario measures a round trip: the default form with a ping mode, steps that do, or a
 * profile with a request and its answer (every profile but `sticky_session`).
 */
export function scenarioHasRoundTrip(
  config: Pick<ProbeConfigShape, 'ping_mode' | 'steps'> & { profile?: ProbeProfile | undefined },
): boolean {
  if (config.profile !== undefined && config.profile !== 'raw') return config.profile !== 'sticky_session';
  if (!config.steps) return config.ping_mode !== 'none';
  let sent = false;
  for (const step of config.steps) {
    if (step.type === 'ping') return true;
    if (step.type === 'send') sent = true;
    if (step.type === 'receive' && sent) return true;
  }
  return false;
}

function checkCrossFieldRules(config: ProbeConfigShape, ctx: z.RefinementCtx) {
  // An unparseable URL or a non-WebSocket scheme is already reported at url; only ws:// is "not wss".
  const plainWs = urlScheme(config.url) === 'ws:';
  if (config.tls && plainWs) custom(ctx, ['tls'], 'requires_wss', 'only applies to wss:// URLs');

  const conflicts = [
    [config.origin !== undefined, 'origin', 'origin'],
    [config.cookies !== undefined, 'cookie', 'cookies'],
    [config.basic_auth !== undefined, 'authorization', 'basic_auth'],
  ] as const;
  for (const [given, header, field] of conflicts) {
    if (!given) continue;
    for (const key of headerKeys(config.headers, header)) {
      custom(ctx, ['headers', key], 'conflict', `is also set by ${field}; keep one`);
    }
  }

  const profile = config.profile ?? 'raw';
  checkProfileRules(config, profile, ctx);
  if (profile !== 'raw') {
    // The profile's conversation replaces the raw scenario: its own rules were checked above.
  } else if (config.steps) {
    for (const field of ['send_message', 'expect_message'] as const) {
      if (config[field] !== undefined) {
        custom(
          ctx,
          [field],
          'conflicts_with_steps',
          'cannot be combined with steps; use send and receive steps',
          config[field],
        );
      }
    }
    if (config.ping_mode !== 'none') {
      const instead = config.ping_mode === 'message' ? 'send and receive steps' : 'a ping step';
      custom(
        ctx,
        ['ping_mode'],
        'conflicts_with_steps',
        `cannot be combined with steps; use ${instead}`,
        config.ping_mode,
      );
    }
    checkStepOrder(config.steps, ctx);
    config.steps.forEach((step, i) => {
      if (step.type === 'hold' && step.duration_ms >= config.timeout_ms) {
        custom(
          ctx,
          ['steps', i, 'duration_ms'],
          'within_timeout',
          `must be less than timeout_ms (${config.timeout_ms})`,
          step.duration_ms,
        );
      }
    });
  } else {
    if (config.ping_mode === 'message' && config.send_message === undefined) {
      custom(
        ctx,
        ['send_message'],
        'required_for_ping_mode',
        'is required when ping_mode is message',
        undefined,
      );
    }
    if (config.send_message !== undefined && config.ping_mode !== 'message') {
      custom(
        ctx,
        ['ping_mode'],
        'required_for_send_message',
        'must be message when send_message is set',
        config.ping_mode,
      );
    }
    if (config.expect_message !== undefined && config.ping_mode !== 'message') {
      custom(
        ctx,
        ['expect_message'],
        'requires_ping_mode_message',
        'only applies when ping_mode is message',
        config.expect_message,
      );
    }
  }

  const roundTrip = scenarioHasRoundTrip(config);
  if (config.interpretation === 'round_trip_latency' && !roundTrip) {
    if (profile !== 'raw') {
      custom(
        ctx,
        ['interpretation'],
        'required_for_round_trip',
        `round_trip_latency needs a profile with a round trip; ${profile} has none`,
        config.interpretation,
      );
    } else if (config.steps) {
      custom(
        ctx,
        ['steps'],
        'required_for_round_trip',
        'must contain a ping step or a send step followed by a receive step for round_trip_latency',
      );
    } else {
      custom(
        ctx,
        ['ping_mode'],
        'required_for_round_trip',
        'must be message or protocol for round_trip_latency',
        config.ping_mode,
      );
    }
  }
  config.assertions.forEach((a, i) => {
    if (a.type === 'response_time' && a.property === 'round_trip' && !roundTrip) {
      custom(
        ctx,
        ['assertions', i, 'property'],
        'requires_round_trip',
        'round_trip needs a probe that makes a round trip',
        a.property,
      );
    }
    if (a.type === 'certificate_days_remaining' && plainWs) {
      custom(
        ctx,
        ['assertions', i, 'type'],
        'requires_wss',
        'certificate assertions need a wss:// URL',
        a.type,
      );
    }
  });
}

const RAW_SCENARIO_FIELDS = ['steps', 'send_message', 'expect_message'] as const;

function checkProfileRules(config: ProbeConfigShape, profile: ProbeProfile, ctx: z.RefinementCtx) {
  for (const field of PROFILE_OPTION_FIELDS) {
    if (config[field] !== undefined && field !== profile) {
      custom(ctx, [field], 'requires_profile', `only applies when profile is ${field}`, undefined);
    }
  }
  if (profile === 'raw') return;
  for (const field of RAW_SCENARIO_FIELDS) {
    if (config[field] !== undefined) {
      custom(
        ctx,
        [field],
        'conflicts_with_profile',
        `cannot be combined with profile ${profile}, which runs its own conversation`,
        undefined,
      );
    }
  }
  if (config.ping_mode !== 'none') {
    custom(
      ctx,
      ['ping_mode'],
      'conflicts_with_profile',
      `must be none with profile ${profile}, which runs its own conversation`,
      config.ping_mode,
    );
  }
  const expected = profileSubprotocol(config);
  if (expected !== undefined && config.protocols.length > 0 && !config.protocols.includes(expected)) {
    custom(
      ctx,
      ['protocols'],
      'profile_subprotocol',
      `must include ${expected} (the subprotocol of profile ${profile}), or be left empty`,
      undefined,
    );
  }
  switch (profile) {
    case 'graphql': {
      const graphql = config.graphql;
      if (graphql?.ping && graphql.protocol !== 'graphql-transport-ws') {
        custom(
          ctx,
          ['graphql', 'ping'],
          'requires_graphql_transport_ws',
          'subscriptions-transport-ws has no ping message (only server keep-alives)',
          graphql.ping,
        );
      }
      if (graphql?.ping_timeout_ms !== undefined && !graphql.ping) {
        custom(ctx, ['graphql', 'ping_timeout_ms'], 'requires_ping', 'only applies when ping is true');
      }
      break;
    }
    case 'socket_io': {
      const options = config.socket_io;
      const urlPath = urlPathOf(config.url);
      if (
        options?.path !== undefined &&
        urlPath !== undefined &&
        urlPath !== '/' &&
        urlPath !== options.path
      ) {
        custom(
          ctx,
          ['socket_io', 'path'],
          'conflicts_with_url',
          `differs from the URL's path (${urlPath}); give the Engine.IO path in one place`,
          options.path,
        );
      }
      if (options?.hold_ms !== undefined && options.hold_ms >= config.timeout_ms) {
        custom(
          ctx,
          ['socket_io', 'hold_ms'],
          'within_timeout',
          `must be less than timeout_ms (${config.timeout_ms})`,
          options.hold_ms,
        );
      }
      if (options?.emit?.ack === false && options.emit.timeout_ms !== undefined) {
        custom(ctx, ['socket_io', 'emit', 'timeout_ms'], 'requires_ack', 'only applies when ack is true');
      }
      break;
    }
    case 'json_rpc': {
      const options = config.json_rpc;
      const mode = options?.mode ?? 'subscribe';
      if (mode === 'call') {
        if (options?.method === undefined) {
          custom(ctx, ['json_rpc', 'method'], 'required_for_call', 'is required when mode is call');
        }
        for (const field of ['notifications', 'notification_timeout_ms', 'unsubscribe_method'] as const) {
          if (options?.[field] !== undefined) {
            custom(ctx, ['json_rpc', field], 'requires_subscribe', 'only applies when mode is subscribe');
          }
        }
        if (options?.freshness?.increasing_block_number) {
          custom(
            ctx,
            ['json_rpc', 'freshness', 'increasing_block_number'],
            'requires_subscribe',
            'needs notifications: only applies when mode is subscribe',
          );
        }
      } else if (options?.freshness?.increasing_block_number && (options.notifications ?? 1) < 2) {
        custom(
          ctx,
          ['json_rpc', 'notifications'],
          'required_for_increasing',
          'must be at least 2 to compare block numbers (increasing_block_number)',
          options.notifications,
        );
      }
      break;
    }
    case 'sticky_session': {
      const options = config.sticky_session;
      const given = [options?.server_id_path, options?.server_id_regex].filter((v) => v !== undefined);
      if (given.length !== 1) {
        custom(
          ctx,
          ['sticky_session'],
          'server_id_source',
          given.length === 0
            ? 'needs server_id_path or server_id_regex: where the first message names the server'
            : 'takes server_id_path or server_id_regex, not both',
        );
      }
      if (options?.server_id_regex !== undefined) {
        const problem = isValidRegex(options.server_id_regex);
        if (problem) {
          custom(
            ctx,
            ['sticky_session', 'server_id_regex'],
            'regex',
            `is not a valid regular expression (${problem})`,
            options.server_id_regex,
          );
        }
      }
      break;
    }
    case 'stomp':
      break;
  }
}

/** The subprotocol a profile negotiates, where it has one. */
export function profileSubprotocol(
  config: Pick<ProbeConfigShape, 'profile' | 'graphql'>,
): string | undefined {
  if (config.profile !== 'graphql') return undefined;
  return GRAPHQL_SUBPROTOCOLS[config.graphql?.protocol ?? 'graphql-transport-ws'];
}

function urlPathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

function checkStepOrder(steps: readonly Step[], ctx: z.RefinementCtx) {
  const first = steps[0];
  if (first && first.type !== 'connect') {
    custom(ctx, ['steps', 0, 'type'], 'connect_first', 'the first step must be connect', first.type);
  }
  steps.forEach((step, i) => {
    if (step.type === 'connect' && i > 0) {
      custom(ctx, ['steps', i, 'type'], 'connect_first', 'connect may only be the first step', step.type);
    }
    if (step.type === 'disconnect' && i !== steps.length - 1) {
      custom(ctx, ['steps', i, 'type'], 'disconnect_last', 'disconnect must be the last step', step.type);
    }
  });
}

export const probeConfigSchema = probeConfigObject.superRefine(checkCrossFieldRules);

/** A validated probe configuration with every default applied. */
export type ProbeConfig = z.output<typeof probeConfigSchema>;
/** What a user may write: defaults may be left out. */
export type ProbeConfigInput = z.input<typeof probeConfigSchema>;

/** Validates a probe configuration; every error names the field and the rule. */
export function parseProbeConfig(input: unknown): ParseOutcome<ProbeConfig> {
  const parsed = probeConfigSchema.safeParse(input, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, errors: toFieldErrors(parsed.error.issues) };
}

/** Like {@link parseProbeConfig} but throws a {@link ConfigValidationError}. */
export function assertProbeConfig(input: unknown): ProbeConfig {
  const outcome = parseProbeConfig(input);
  if (!outcome.ok) throw new ConfigValidationError(outcome.errors);
  return outcome.value;
}

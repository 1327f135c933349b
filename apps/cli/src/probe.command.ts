import { Command, Option } from 'commander';
import {
  INTERPRETATIONS,
  IP_VERSIONS,
  PING_MODES,
  PROFILES,
  parseProbeConfig,
  type ConfigFieldError,
  type ProbeConfig,
  type ProbeResult,
} from '@wsmon/contracts';
import { createProbe } from '@wsmon/probe';
import { EXIT, UsageError, useColor, type CliIo } from './cli-io';
import {
  ASSERT_GRAMMAR,
  jsonErrorWhere,
  numberOrText,
  parseAssertion,
  parseStep,
  STEP_SHORTHANDS,
} from './probe-shorthand';
import { OPTION_GRAMMAR, PROFILE_HELP, withProfileOptions } from './probe-profile';
import { renderProbeResult } from './waterfall';

/** The options of `wsmon probe` as commander parses them: text, translated by {@link probeInputFromFlags}. */
export interface ProbeFlags {
  readonly config?: string;
  readonly timeoutMs?: string;
  readonly interpretation?: string;
  readonly pingMode?: string;
  readonly send?: string;
  readonly expect?: string;
  readonly protocol?: readonly string[];
  readonly header?: readonly string[];
  readonly cookie?: readonly string[];
  readonly basicAuth?: string;
  readonly origin?: string;
  readonly ipVersion?: string;
  readonly tlsSkipVerify?: boolean;
  readonly insecure?: boolean;
  readonly tlsCa?: string;
  readonly tlsServerName?: string;
  readonly assert?: readonly string[];
  readonly step?: readonly string[];
  readonly profile?: string;
  readonly option?: readonly string[];
  readonly json?: boolean;
}

/** A probe configuration in the schema's JSON form, not yet validated, and where its fields came from. */
export interface ProbeInput {
  readonly input: Record<string, unknown>;
  /** The flag each top-level field was taken from, for pointing field errors back at the command line. */
  readonly flagOf: ReadonlyMap<string, string>;
  /** 1 when a connect step was added in front of the --step list. */
  readonly stepOffset: number;
}

type Reader = Pick<CliIo, 'readFile' | 'readStdin'>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readConfigFile(path: string, io: Reader): Promise<Record<string, unknown>> {
  const from = path === '-' ? 'standard input' : path;
  let text: string;
  try {
    text = path === '-' ? await io.readStdin() : await io.readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw new UsageError(`--config: cannot read ${from}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config: ${from} is not valid JSON${jsonErrorWhere(error)}`);
  }
  if (!isPlainObject(parsed)) {
    throw new UsageError(`--config: ${from} must hold a JSON object (a probe configuration)`);
  }
  return parsed;
}

/** `Name: value`, split at the first colon like curl does; the value is never echoed in errors. */
function parseHeader(text: string, n: number): [string, string] {
  const colon = text.indexOf(':');
  const name = colon === -1 ? '' : text.slice(0, colon).trim();
  if (!name) throw new UsageError(`-H/--header #${n}: expected "Name: value"`);
  return [name, text.slice(colon + 1).trim()];
}

function headersFromFlags(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    const [name, value] = parseHeader(line, i + 1);
    if (seen.has(name.toLowerCase())) {
      throw new UsageError(`-H/--header: ${JSON.stringify(name)} is given twice (header names ignore case)`);
    }
    seen.add(name.toLowerCase());
    headers[name] = value;
  });
  return headers;
}

/** Flag headers replace the file's headers of the same name, whatever their case; the others stay. */
function mergeHeaders(fromFile: unknown, fromFlags: Record<string, string>): unknown {
  if (!isPlainObject(fromFile)) return fromFlags;
  const replaced = new Set(Object.keys(fromFlags).map((name) => name.toLowerCase()));
  const kept = Object.entries(fromFile).filter(([name]) => !replaced.has(name.toLowerCase()));
  return { ...Object.fromEntries(kept), ...fromFlags };
}

function parseBasicAuth(text: string): { username: string; password: string } {
  const colon = text.indexOf(':');
  if (colon === -1) throw new UsageError('--basic-auth: expected user:password');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Translates the command line into a probe configuration in the shared schema's JSON form: the
 * `--config` file (if any), overridden field by field by explicit flags. Throws a {@link UsageError}
 * for what cannot even be expressed in JSON (a header without a colon, a missing URL); everything
 * else is left to `parseProbeConfig`, so the CLI rejects exactly what the APIs reject.
 */
export async function probeInputFromFlags(
  url: string | undefined,
  flags: ProbeFlags,
  io: Reader,
): Promise<ProbeInput> {
  const input: Record<string, unknown> =
    flags.config === undefined ? {} : await readConfigFile(flags.config, io);
  const flagOf = new Map<string, string>();
  const set = (field: string, value: unknown, flag: string) => {
    input[field] = value;
    flagOf.set(field, flag);
  };

  if (url !== undefined) set('url', url, 'the url argument');
  if (input.url === undefined) {
    throw new UsageError('missing URL: give it as "wsmon probe <url>" or as "url" in --config');
  }
  if (flags.timeoutMs !== undefined) set('timeout_ms', numberOrText(flags.timeoutMs), '--timeout-ms');
  if (flags.interpretation !== undefined) set('interpretation', flags.interpretation, '--interpretation');
  if (flags.pingMode !== undefined) set('ping_mode', flags.pingMode, '--ping-mode');
  if (flags.send !== undefined) {
    set('send_message', flags.send, '--send');
    // The CLI may be friendlier than the API: a message to send only makes sense in message mode.
    if (flags.pingMode === undefined) set('ping_mode', 'message', '--send');
  }
  if (flags.expect !== undefined) set('expect_message', flags.expect, '--expect');
  if (flags.protocol?.length) {
    const protocols = flags.protocol.flatMap((p) => p.split(',')).map((p) => p.trim());
    set('protocols', protocols, '--protocol');
  }
  if (flags.header?.length) set('headers', mergeHeaders(input.headers, headersFromFlags(flags.header)), '-H');
  if (flags.cookie?.length) set('cookies', flags.cookie.join('; '), '--cookie');
  if (flags.basicAuth !== undefined) set('basic_auth', parseBasicAuth(flags.basicAuth), '--basic-auth');
  if (flags.origin !== undefined) set('origin', flags.origin, '--origin');
  if (flags.ipVersion !== undefined) set('ip_version', flags.ipVersion, '--ip-version');

  const tls: Record<string, unknown> = {};
  if (flags.tlsSkipVerify || flags.insecure) tls.skip_verify = true;
  if (flags.tlsCa !== undefined) {
    try {
      tls.ca_pem = await io.readFile(flags.tlsCa);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      throw new UsageError(
        `--tls-ca: cannot read ${flags.tlsCa}${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
  }
  if (flags.tlsServerName !== undefined) tls.server_name = flags.tlsServerName;
  if (Object.keys(tls).length > 0) {
    set('tls', { ...(isPlainObject(input.tls) ? input.tls : {}), ...tls }, 'the --tls-* flags');
  }

  if (flags.assert?.length) {
    set(
      'assertions',
      flags.assert.map((text, i) => parseAssertion(text, i + 1)),
      '--assert',
    );
  }
  if (flags.profile !== undefined) set('profile', flags.profile, '--profile');
  if (flags.option?.length) {
    const profile = typeof input.profile === 'string' ? input.profile : 'raw';
    if (profile === 'raw') {
      throw new UsageError(
        '--option: sets an option of a protocol profile; give --profile (or "profile" in --config)',
      );
    }
    // The options object is named after its profile: --profile stomp --option passcode=… sets stomp.passcode.
    set(profile, withProfileOptions(input[profile], flags.option), '--option');
  }
  let stepOffset = 0;
  if (flags.step?.length) {
    const steps = flags.step.map((text, i) => parseStep(text, i + 1));
    // Every scenario starts by connecting; saying so on the command line is optional.
    if (steps[0]?.type !== 'connect') {
      steps.unshift({ type: 'connect' });
      stepOffset = 1;
    }
    set('steps', steps, '--step');
  }
  return { input, flagOf, stepOffset };
}

const INDEXED_FLAGS: Record<string, string> = { assertions: '--assert', steps: '--step' };

/**
 * `timeout_ms: must be at most 30000 [max] (--timeout-ms)`: the schema's field error, pointed back at
 * the flag it came from when it came from one. The message already names the path.
 */
export function formatFieldError(error: ConfigFieldError, from: Omit<ProbeInput, 'input'>): string {
  const text = error.message.startsWith(`${error.path}: `)
    ? error.message
    : `${error.path}: ${error.message}`;
  const root = /^[A-Za-z_]+/.exec(error.path)?.[0] ?? '';
  const flag = from.flagOf.get(root);
  if (!flag) return `${text} [${error.rule}]`;
  const index = Number(/^[A-Za-z_]+\[(\d+)\]/.exec(error.path)?.[1] ?? NaN);
  const nth =
    INDEXED_FLAGS[root] === flag && Number.isInteger(index)
      ? index + 1 - (root === 'steps' ? from.stepOffset : 0)
      : 0;
  return `${text} [${error.rule}] (${nth > 0 ? `${flag} #${nth}` : flag})`;
}

/** Translates and validates; every field error of the shared schema becomes one usage error line. */
export async function probeConfigFromFlags(
  url: string | undefined,
  flags: ProbeFlags,
  io: Reader,
): Promise<ProbeConfig> {
  const from = await probeInputFromFlags(url, flags, io);
  const parsed = parseProbeConfig(from.input);
  if (!parsed.ok) {
    throw new UsageError(
      'invalid probe configuration, nothing was probed:',
      parsed.errors.map((error) => formatFieldError(error, from)),
    );
  }
  return parsed.value;
}

/** Runs a validated probe; replaced in specs. */
export type ProbeRunner = (config: ProbeConfig) => Promise<ProbeResult>;

const runWithEngine: ProbeRunner = (config) => createProbe(config).run();

const collect = (value: string, previous: readonly string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

const STEP_HELP = STEP_SHORTHANDS.map(([grammar, what]) => `    ${grammar.padEnd(38)}${what}`).join('\n');

const HELP_AFTER = `
Assertions (--assert, repeatable, at most 20):
  "${ASSERT_GRAMMAR}"; the target is the rest of the text (wrap it in
  double quotes, JSON style, to keep surrounding spaces or to give an empty string).
    response_time.<connect|round_trip|total> less_than <ms>
    received_message <operator> <text>        operators: contains, does_not_contain, is,
    header.<name> <operator> <text>             is_not, matches, does_not_match (regex)
    close_code <is|is_not> <code>
    subprotocol <is|is_not> <name>
    certificate_days_remaining greater_than <days>
    json_path.<$.path> <exists|equals|matches|less_than|greater_than> [<JSON or text>]

Steps (--step, repeatable, in order): a JSON step such as '{"type":"receive","timeout_ms":500}'
  or a shorthand:
${STEP_HELP}
  A connect step is added in front when the first --step is not one. Steps replace
  --send/--expect/--ping-mode: a scenario says itself what it sends and awaits.

${PROFILE_HELP.trim()}

Configuration file (--config FILE, or - for standard input):
  The probe configuration as JSON, in the form the REST and gRPC APIs take. Flags override its
  fields; -H adds headers or replaces those of the same name; --protocol, --assert and --step
  replace the file's lists; the url argument replaces its url.

Output: a phase waterfall and the verdict, or with --json the ProbeResult object only.
Header values, cookies and passwords are never printed.

Exit codes: 0 healthy, 1 the probe failed, 2 bad usage or an invalid configuration (nothing probed).

Examples:
  # echo round trip: send a message, require the reply to contain it, report the round trip
  $ wsmon probe wss://echo.example.com/ --send hello --expect hello --interpretation round_trip_latency

  # protocol-level ping/pong round trip, with a latency budget
  $ wsmon probe wss://stream.example.com/socket --ping-mode protocol --assert "response_time.round_trip less_than 200"

  # scenario: subscribe, await the ack, stay connected 5 s expecting ticks, close with 1000
  $ wsmon probe wss://stream.example.com/socket -H "Authorization: Bearer $TOKEN" \\
      --step 'send={"op":"subscribe","channel":"ticks"}' --step receive=ack \\
      --step hold=5000:3 --step disconnect=1000 --timeout-ms 15000

  # GraphQL subscription: connection_init with a token, a first result without errors, then complete
  $ wsmon probe wss://api.example.com/graphql --profile graphql --option 'init_payload={"token":"'$TOKEN'"}' \\
      --option 'subscribe.query=subscription { ticks { price } }' --assert 'json_path.$.data.ticks exists'

  # Ethereum node: newHeads notifications with increasing block numbers, at most 60 s old
  $ wsmon probe wss://node.example.com/ws --profile json_rpc --option notifications=2 \\
      --option freshness.increasing_block_number=true --option freshness.max_age_s=60

  # a configuration in the API's JSON form, from standard input; print the result as JSON
  $ cat probe.json | wsmon probe --config - --json
`;

/** `wsmon probe [url]`: runs one probe and prints its timings and verdict. */
export function createProbeCommand(io: CliIo, run: ProbeRunner = runWithEngine): Command {
  const command = new Command('probe')
    .summary('run one probe against a WebSocket endpoint and print its timings and verdict')
    .description(
      'Run ONE probe against a ws:// or wss:// endpoint: like wscat, but with monitoring-grade phase ' +
        'timings and a verdict. Every field of the probe configuration has a flag named after its ' +
        'snake_case JSON field; defaults are those of the configuration schema.',
    )
    .argument('[url]', 'ws:// or wss:// endpoint (or "url" in --config)');

  command
    .optionsGroup('Probe:')
    .option('--timeout-ms <ms>', 'deadline for the whole probe, 100 to 30000 (default 10000)')
    .addOption(
      new Option('--interpretation <name>', 'what the value measures (default handshake_latency)').choices(
        INTERPRETATIONS,
      ),
    )
    .addOption(
      new Option('--ping-mode <mode>', 'round trip after opening (default none)').choices(PING_MODES),
    )
    .option('--send <text>', 'send_message; sets --ping-mode message unless --ping-mode is given')
    .option('--expect <substring>', 'expect_message: text the reply must contain (with --send)')
    .option('--assert <assertion>', `assertion "${ASSERT_GRAMMAR}" (repeatable)`, collect)
    .option('--step <spec>', 'scenario step: JSON or a shorthand, see below (repeatable)', collect)
    .addOption(
      new Option('--profile <name>', 'protocol spoken once open (default raw: --send or --step)').choices(
        PROFILES,
      ),
    )
    .option('--option <key=value>', `an option of the profile, "${OPTION_GRAMMAR}" (repeatable)`, collect)
    .optionsGroup('Handshake request:')
    .option('--protocol <name>', 'subprotocol to offer (repeatable, or comma-separated)', collect)
    .option('-H, --header <header>', 'request header "Name: value" (repeatable)', collect)
    .option('--cookie <cookies>', 'cookies "A=1; B=2" (repeatable)', collect)
    .option('--basic-auth <user:password>', 'HTTP basic authentication')
    .option('--origin <origin>', 'Origin header, such as https://app.example.com')
    .addOption(
      new Option('--ip-version <version>', 'address family to connect over (default any)').choices(
        IP_VERSIONS,
      ),
    )
    .optionsGroup('TLS (wss:// only):')
    .option('--tls-skip-verify', 'accept any certificate (it is still shown, with why it would fail)')
    .option('-k, --insecure', 'same as --tls-skip-verify')
    .option('--tls-ca <file>', 'PEM file of CA certificates to trust besides the system roots')
    .option('--tls-server-name <name>', 'SNI and certificate name, when not the URL host')
    .optionsGroup('Input and output:')
    .option('--config <file>', 'probe configuration as JSON (the API form); "-" reads standard input')
    .option('--json', 'print the ProbeResult as JSON instead of the waterfall')
    .addHelpOption(new Option('-h, --help', 'display this help').helpGroup('Input and output:'))
    .addHelpText('after', HELP_AFTER)
    .action(async (url: string | undefined, flags: ProbeFlags) => {
      const config = await probeConfigFromFlags(url, flags, io);
      const result = await run(config);
      io.stdout.write(
        flags.json
          ? `${JSON.stringify(result, null, 2)}\n`
          : renderProbeResult(result, { color: useColor(io) }),
      );
      io.exitCode = result.success ? EXIT.ok : EXIT.failed;
    });
  return command;
}

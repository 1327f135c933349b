import type {
  AssertionResult,
  CloseInfo,
  ProbeResult,
  ProbeTimings,
  ProfileFact,
  ProfileResult,
  StepResult,
  TlsDetails,
  UpgradeResponse,
} from '@wsmon/contracts';

/** How {@link renderProbeResult} draws. */
export interface RenderOptions {
  /** ANSI colour; only for a terminal. */
  readonly color: boolean;
  /** Width of the longest bar, in characters. */
  readonly barWidth?: number;
}

const ANSI = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const;
type Style = keyof typeof ANSI;

const NONE = '—';
const PASS_MARK = '✓';
const FAIL_MARK = '✗';
const LABEL_WIDTH = 14;
const STEP_LABEL_WIDTH = 16;
const BODY_PREVIEW_LINES = 12;
const MESSAGE_PREVIEW_CHARS = 120;
const DEFAULT_BAR_WIDTH = 40;

/** The phases in the order they happen, with what the bar means where it is not obvious. */
const PHASES: readonly { key: keyof ProbeTimings; label: string; note?: string }[] = [
  { key: 'dns_ms', label: 'dns' },
  { key: 'tcp_connect_ms', label: 'tcp connect' },
  { key: 'tls_handshake_ms', label: 'tls handshake' },
  { key: 'upgrade_ms', label: 'upgrade' },
  { key: 'open_ms', label: 'open', note: 'total to open' },
  { key: 'round_trip_ms', label: 'round trip' },
  { key: 'ping_ms', label: 'ping' },
  { key: 'close_ms', label: 'close' },
  { key: 'total_ms', label: 'total' },
];

/** Durations keep the microseconds the engine measured, to two decimals. */
export function formatMs(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

/** Eighth blocks: sub-character precision, so 0.3 ms and 0.4 ms differ on a 40-column bar. */
const PARTIAL_BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `value / max` of `width` characters; anything that took time gets at least a sliver. */
export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return '';
  const eighths = Math.max(1, Math.round((Math.min(value, max) / max) * width * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + (PARTIAL_BLOCKS[eighths % 8] ?? '');
}

/**
 * Server-supplied text (headers, bodies, messages, close reasons) is shown with every control
 * character escaped: a hostile endpoint must not be able to drive the terminal.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\n') return keepNewlines ? '\n' : '\\n';
    if (c === '\t') return keepNewlines ? '\t' : '\\t';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A string as a JSON literal, with the controls JSON leaves alone (DEL, C1) escaped too. */
function quoted(text: string): string {
  return printable(JSON.stringify(text));
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

type Paint = (style: Style, text: string) => string;

/** Collects the lines of one rendering, with the styles of the chosen colour mode. */
class Sheet {
  readonly lines: string[] = [];
  readonly none: string;

  constructor(readonly paint: Paint) {
    this.none = paint('dim', NONE);
  }

  /** `label         value`; a label without a value heads the indented lines that follow. */
  field(label: string, value: string): void {
    this.lines.push(
      value ? `${this.paint('dim', label.padEnd(LABEL_WIDTH))}${value}` : this.paint('dim', label),
    );
  }

  /** A line under the value of the field above. */
  detail(text: string): void {
    this.lines.push(`${' '.repeat(LABEL_WIDTH)}${text}`);
  }

  mark(passed: boolean): string {
    return passed ? this.paint('green', PASS_MARK) : this.paint('red', FAIL_MARK);
  }
}

function renderTitle(sheet: Sheet, result: ProbeResult): void {
  const { remote_address: address, remote_port: port, ip_family: family } = result.connection;
  const where =
    address === null
      ? ''
      : `  → ${address.includes(':') ? `[${address}]` : address}:${port ?? ''}` +
        (family === null ? '' : ` (IPv${family})`);
  sheet.lines.push(`${sheet.paint('bold', printable(result.url))}${where}`);
}

function renderPhases(sheet: Sheet, timings: ProbeTimings, width: number): void {
  const max = Math.max(0, ...PHASES.map(({ key }) => timings[key] ?? 0));
  for (const { key, label, note } of PHASES) {
    const ms = timings[key];
    const duration = ms === null ? sheet.paint('dim', NONE.padStart(11)) : formatMs(ms).padStart(11);
    const drawn = ms === null ? '' : sheet.paint('cyan', bar(ms, max, width));
    const suffix = note && ms !== null ? `  ${sheet.paint('dim', `(${note})`)}` : '';
    sheet.lines.push(`  ${label.padEnd(LABEL_WIDTH)}${duration}  ${drawn}${suffix}`.trimEnd());
  }
}

function renderUpgrade(sheet: Sheet, upgrade: UpgradeResponse | null): void {
  if (!upgrade) return sheet.field('upgrade', sheet.none);
  const status = `HTTP ${upgrade.status_code} ${printable(upgrade.status_message)}`.trimEnd();
  if (upgrade.status_code === 101) return sheet.field('upgrade', status);
  // A refused handshake is shown whole: what the server said is the evidence of why.
  sheet.field('upgrade', sheet.paint('red', status));
  for (const [name, value] of Object.entries(upgrade.headers))
    sheet.detail(`${printable(name)}: ${printable(value)}`);
  if (!upgrade.body_preview) return;
  const lines = printable(upgrade.body_preview, true).split('\n');
  const shown = lines.slice(0, BODY_PREVIEW_LINES);
  const cut = upgrade.body_truncated === true || lines.length > shown.length;
  sheet.detail(sheet.paint('dim', `body${cut ? ' (truncated)' : ''}:`));
  for (const line of shown) sheet.detail(`${sheet.paint('dim', '│')} ${line}`);
  if (cut) sheet.detail(sheet.paint('dim', '│ …'));
}

function renderTls(sheet: Sheet, tls: TlsDetails | null): void {
  if (!tls) return sheet.field('tls', sheet.none);
  const verified = tls.authorized
    ? sheet.paint('green', 'verified')
    : sheet.paint('yellow', `not verified (${printable(tls.authorization_error ?? 'unknown')})`);
  sheet.field('tls', [tls.protocol ?? '?', tls.cipher ?? '?', verified].join(' · '));
  const cert = tls.certificate;
  if (!cert) return;
  sheet.detail(`subject  ${printable(cert.subject)}`);
  sheet.detail(`issuer   ${printable(cert.issuer)}`);
  const days = `${cert.days_remaining.toFixed(1)} days remaining`;
  sheet.detail(`expires  ${cert.valid_to}  (${cert.days_remaining < 0 ? sheet.paint('red', days) : days})`);
}

function renderClose(sheet: Sheet, close: CloseInfo | null): void {
  if (!close) return sheet.field('close', sheet.none);
  const reason = close.reason ? ` ${quoted(close.reason)}` : '';
  const by = close.initiator === 'none' ? 'no close frame' : `by ${close.initiator}`;
  sheet.field('close', `${close.code}${reason} · ${by} · ${close.clean ? 'clean' : 'not clean'}`);
}

function renderMessages(sheet: Sheet, result: ProbeResult): void {
  const last = result.last_message;
  let shown = '';
  if (last?.binary) shown = ` · last: binary, ${last.size_bytes} bytes`;
  else if (last) {
    const cut = last.truncated || last.data.length > MESSAGE_PREVIEW_CHARS;
    shown = ` · last: ${quoted(truncate(last.data, MESSAGE_PREVIEW_CHARS))}${cut ? ` (${last.size_bytes} bytes)` : ''}`;
  }
  sheet.field('messages', `${result.messages_sent} sent · ${result.messages_received} received${shown}`);
}

function stepFacts(step: StepResult): string[] {
  return [
    step.round_trip_ms === undefined ? '' : `round trip ${formatMs(step.round_trip_ms)}`,
    // A receive step always gets one message and a ping step one pong: only holds have counts to tell.
    step.messages_received === undefined || step.type === 'receive'
      ? ''
      : `${step.messages_received} messages`,
    step.pongs_received === undefined || step.type === 'ping' ? '' : `${step.pongs_received} pongs`,
    step.close_code === undefined ? '' : `close ${step.close_code}`,
    step.detail === undefined ? '' : printable(step.detail),
  ].filter(Boolean);
}

function renderSteps(sheet: Sheet, steps: readonly StepResult[]): void {
  if (steps.length === 0) return sheet.field('steps', sheet.none);
  sheet.field('steps', '');
  for (const step of steps) {
    const name = `#${step.index} ${step.type}`.padEnd(STEP_LABEL_WIDTH);
    const facts = stepFacts(step);
    sheet.lines.push(
      `  ${sheet.mark(step.passed)} ${name}${formatMs(step.duration_ms).padStart(11)}` +
        (facts.length ? `  ${facts.join(' · ')}` : ''),
    );
  }
}

function showFact(value: ProfileFact): string {
  if (value === null) return NONE;
  if (Array.isArray(value))
    return `[${value.map((v) => (typeof v === 'string' ? quoted(v) : String(v))).join(', ')}]`;
  return typeof value === 'string' ? quoted(truncate(value, MESSAGE_PREVIEW_CHARS)) : String(value);
}

/** A protocol profile's phases, like steps, then what the protocol said. */
function renderProfile(sheet: Sheet, profile: ProfileResult | undefined): void {
  if (!profile) return;
  sheet.field('profile', profile.name);
  for (const phase of profile.phases) {
    const name = phase.name.padEnd(STEP_LABEL_WIDTH);
    const detail = phase.detail === undefined ? '' : `  ${printable(phase.detail)}`;
    sheet.lines.push(
      `  ${sheet.mark(phase.passed)} ${name}${formatMs(phase.duration_ms).padStart(11)}${detail}`,
    );
  }
  for (const [name, value] of Object.entries(profile.facts))
    sheet.detail(`${printable(name)}: ${showFact(value)}`);
}

function renderAssertions(sheet: Sheet, assertions: readonly AssertionResult[]): void {
  if (assertions.length === 0) return sheet.field('assertions', sheet.none);
  sheet.field('assertions', '');
  for (const assertion of assertions) {
    const where = assertion.step === undefined ? '' : `step #${assertion.step} `;
    sheet.lines.push(`  ${sheet.mark(assertion.passed)} ${where}${printable(assertion.message)}`);
  }
}

/**
 * Renders one probe result for a person: the phase waterfall, what the handshake negotiated, the
 * TLS certificate, the close, the steps and assertions, and the verdict line last.
 */
export function renderProbeResult(result: ProbeResult, options: RenderOptions): string {
  const paint: Paint = (style, text) => (options.color ? `\u001b[${ANSI[style]}m${text}\u001b[0m` : text);
  const sheet = new Sheet(paint);
  renderTitle(sheet, result);
  sheet.lines.push('');
  renderPhases(sheet, result.timings, options.barWidth ?? DEFAULT_BAR_WIDTH);
  sheet.lines.push('');
  renderUpgrade(sheet, result.upgrade);
  sheet.field('subprotocol', result.subprotocol === null ? sheet.none : printable(result.subprotocol));
  sheet.field('extensions', result.extensions === null ? sheet.none : printable(result.extensions));
  renderTls(sheet, result.tls);
  renderClose(sheet, result.close);
  renderMessages(sheet, result);
  renderSteps(sheet, result.steps);
  renderProfile(sheet, result.profile);
  renderAssertions(sheet, result.assertions);
  sheet.lines.push('', verdictLine(result, paint));
  return `${sheet.lines.join('\n')}\n`;
}

function formatValue(result: ProbeResult): string {
  if (result.value === null) return NONE;
  return result.interpretation === 'connection_success' ? String(result.value) : formatMs(result.value);
}

/** `PASS  handshake_latency = 1.93 ms` or `FAIL  ws_open_failed · http_unexpected_status [INVALID_REQUEST]  …`. */
export function verdictLine(result: ProbeResult, paint: Paint = (_style, text) => text): string {
  const failure = result.failure;
  const value = `${result.interpretation} = ${formatValue(result)}`;
  if (result.success) return `${paint('green', paint('bold', 'PASS'))}  ${value}`;
  if (!failure) return `${paint('red', paint('bold', 'FAIL'))}  ${value}`;
  return (
    `${paint('red', paint('bold', 'FAIL'))}  ${failure.reason} · ${failure.cause} [${failure.category}]  ` +
    printable(failure.message)
  );
}

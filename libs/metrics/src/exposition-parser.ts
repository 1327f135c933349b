/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for the specs (`@wsmon/metrics/parser`;
 * lint keeps shipped code from importing it): every `/metrics` and `/probe` body of both apps must pass it. Written here because the npm candidate (parse-prometheus-text-format)
 * accepts anything, unterminated label values and non-numeric values included. It follows the rules of
 * Prometheus' own text parser (expfmt) and is stricter where the format document is: a family's lines
 * must form one group, and TYPE must come before the family's first sample.
 */

export type ParsedType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs?: number;
}

export interface ParsedFamily {
  readonly name: string;
  help: string | undefined;
  type: ParsedType | undefined;
  readonly samples: ParsedSample[];
}

export class ExpositionParseError extends Error {
  constructor(
    readonly lineNumber: number,
    message: string,
  ) {
    super(`line ${lineNumber}: ${message}`);
    this.name = 'ExpositionParseError';
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<string>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** What Go's ParseFloat reads and Prometheus writes: decimals, exponents, NaN and signed infinities. */
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Inf)$/;
const TIMESTAMP = /^-?\d+$/;

function parseFloatStrict(text: string, line: number): number {
  if (!FLOAT.test(text))
    throw new ExpositionParseError(line, `${JSON.stringify(text)} is not a sample value`);
  if (text === 'NaN') return Number.NaN;
  if (text.endsWith('Inf')) return text.startsWith('-') ? -Infinity : Infinity;
  return Number(text);
}

/** Unescapes `\\` and `\n` (and `\"` in label values); any other escape is an error, as in expfmt. */
function unescape(text: string, allowQuote: boolean, line: number): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === '"' && allowQuote) out += '"';
    else throw new ExpositionParseError(line, `invalid escape sequence \\${next ?? ''}`);
  }
  return out;
}

interface Cursor {
  readonly text: string;
  pos: number;
  readonly line: number;
}

function skipBlanks(c: Cursor): void {
  while (c.text[c.pos] === ' ' || c.text[c.pos] === '\t') c.pos++;
}

function readWhile(c: Cursor, pattern: RegExp): string {
  const start = c.pos;
  while (c.pos < c.text.length && pattern.test(c.text[c.pos] ?? '')) c.pos++;
  return c.text.slice(start, c.pos);
}

function parseLabels(c: Cursor): Record<string, string> {
  const labels: Record<string, string> = {};
  c.pos++; // '{'
  for (;;) {
    skipBlanks(c);
    if (c.text[c.pos] === '}') {
      c.pos++;
      return labels;
    }
    const name = readWhile(c, /[a-zA-Z0-9_]/);
    if (!LABEL_NAME.test(name))
      throw new ExpositionParseError(c.line, `invalid label name ${JSON.stringify(name)}`);
    if (name.startsWith('__')) throw new ExpositionParseError(c.line, `label name ${name} is reserved`);
    if (name in labels) throw new ExpositionParseError(c.line, `label ${name} is given twice`);
    skipBlanks(c);
    if (c.text[c.pos++] !== '=') throw new ExpositionParseError(c.line, `expected = after label ${name}`);
    skipBlanks(c);
    if (c.text[c.pos++] !== '"')
      throw new ExpositionParseError(c.line, `expected " to open the value of ${name}`);
    const start = c.pos;
    while (c.pos < c.text.length && c.text[c.pos] !== '"') c.pos += c.text[c.pos] === '\\' ? 2 : 1;
    if (c.pos >= c.text.length) throw new ExpositionParseError(c.line, `unterminated value of label ${name}`);
    labels[name] = unescape(c.text.slice(start, c.pos), true, c.line);
    c.pos++; // closing quote
    skipBlanks(c);
    const next = c.text[c.pos];
    if (next === ',') c.pos++;
    else if (next !== '}') throw new ExpositionParseError(c.line, `expected , or } after label ${name}`);
  }
}

function parseSampleLine(text: string, line: number): ParsedSample {
  const c: Cursor = { text, pos: 0, line };
  const name = readWhile(c, /[a-zA-Z0-9_:]/);
  if (!METRIC_NAME.test(name))
    throw new ExpositionParseError(line, `invalid metric name in ${JSON.stringify(text)}`);
  const labels = c.text[c.pos] === '{' ? parseLabels(c) : {};
  const rest = text.slice(c.pos);
  if (!/^[ \t]/.test(rest))
    throw new ExpositionParseError(line, `expected a blank before the value of ${name}`);
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length > 2 || fields[0] === '') {
    throw new ExpositionParseError(line, `expected a value and an optional timestamp after ${name}`);
  }
  const value = parseFloatStrict(fields[0] ?? '', line);
  const timestamp = fields[1];
  if (timestamp === undefined) return { name, labels, value };
  if (!TIMESTAMP.test(timestamp)) throw new ExpositionParseError(line, `invalid timestamp ${timestamp}`);
  return { name, labels, value, timestampMs: Number(timestamp) };
}

/** The family a sample name belongs to, given the current family's type (histograms and summaries add suffixes). */
function belongsTo(family: ParsedFamily, sampleName: string): boolean {
  if (sampleName === family.name) return true;
  const suffixes =
    family.type === 'histogram'
      ? ['_bucket', '_sum', '_count']
      : family.type === 'summary'
        ? ['_sum', '_count']
        : [];
  return suffixes.some((s) => sampleName === family.name + s);
}

/** Parses a whole exposition or throws {@link ExpositionParseError} naming the first offending line. */
export function parseExposition(text: string): ParsedFamily[] {
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new ExpositionParseError(0, 'the exposition must end with a line feed');
  const lines = text.slice(0, -1).split('\n');
  const families: ParsedFamily[] = [];
  const closed = new Set<string>();
  let current: ParsedFamily | undefined;
  const series = new Set<string>();

  const open = (name: string, line: number): ParsedFamily => {
    if (current?.name === name) return current;
    if (current) closed.add(current.name);
    if (closed.has(name)) throw new ExpositionParseError(line, `the lines of ${name} do not form one group`);
    current = { name, help: undefined, type: undefined, samples: [] };
    families.push(current);
    return current;
  };

  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.includes('\r'))
      throw new ExpositionParseError(line, 'carriage return in a line (LF line endings only)');
    if (raw.trim() === '') return;
    const meta = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(raw);
    if (raw.startsWith('#') && !meta) {
      if (/^#[ \t]+(HELP|TYPE)\b/.test(raw)) throw new ExpositionParseError(line, `malformed ${raw}`);
      return; // a comment
    }
    if (meta) {
      const [, keyword, name = '', rest = ''] = meta;
      if (!METRIC_NAME.test(name))
        throw new ExpositionParseError(line, `invalid metric name ${JSON.stringify(name)}`);
      const family = open(name, line);
      if (keyword === 'HELP') {
        if (family.help !== undefined) throw new ExpositionParseError(line, `second HELP line for ${name}`);
        family.help = unescape(rest, false, line);
      } else {
        if (family.type !== undefined) throw new ExpositionParseError(line, `second TYPE line for ${name}`);
        if (family.samples.length > 0)
          throw new ExpositionParseError(line, `TYPE line for ${name} after its samples`);
        if (!TYPES.has(rest.trim()))
          throw new ExpositionParseError(line, `unknown type ${JSON.stringify(rest)}`);
        family.type = rest.trim() as ParsedType;
      }
      return;
    }
    const sample = parseSampleLine(raw, line);
    const family = current && belongsTo(current, sample.name) ? current : open(sample.name, line);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    if (series.has(key)) throw new ExpositionParseError(line, `duplicate series ${raw}`);
    series.add(key);
    family.samples.push(sample);
  });
  for (const family of families) {
    family.type ??= 'untyped';
    if (family.type === 'histogram') checkHistogram(family);
  }
  return families;
}

/**
 * What a scrape needs of a histogram: each series' buckets have an `le`, count cumulatively (never
 * decreasing as `le` grows), end with `le="+Inf"`, and that bucket equals the series' `_count`.
 */
function checkHistogram(family: ParsedFamily): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined || !FLOAT.test(le)) {
        throw new ExpositionParseError(0, `${family.name}_bucket ${key} has no valid le label`);
      }
      entry.buckets.push([parseFloatStrict(le, 0), sample.value]);
    } else if (sample.name === `${family.name}_count`) {
      entry.count = sample.value;
    } else if (sample.name !== `${family.name}_sum`) {
      throw new ExpositionParseError(0, `histogram ${family.name} has a sample ${sample.name}`);
    }
  }
  for (const [key, { buckets, count }] of series) {
    buckets.sort(([a], [b]) => a - b);
    const last = buckets[buckets.length - 1];
    if (!last || last[0] !== Infinity) {
      throw new ExpositionParseError(0, `histogram ${family.name} ${key} has no le="+Inf" bucket`);
    }
    buckets.forEach(([le, value], i) => {
      if (i > 0 && value < buckets[i - 1]![1]) {
        throw new ExpositionParseError(0, `histogram ${family.name} ${key}: bucket le=${le} decreases`);
      }
    });
    if (count !== undefined && count !== last[1]) {
      throw new ExpositionParseError(
        0,
        `histogram ${family.name} ${key}: _count differs from the +Inf bucket`,
      );
    }
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is not exactly one. */
export function sampleValue(
  families: readonly ParsedFamily[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const matches = families
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length !== 1)
    throw new Error(`expected one sample ${name} ${JSON.stringify(labels)}, found ${matches.length}`);
  return matches[0]?.value ?? Number.NaN;
}

export function familyNamed(families: readonly ParsedFamily[], name: string): ParsedFamily | undefined {
  return families.find((f) => f.name === name);
}

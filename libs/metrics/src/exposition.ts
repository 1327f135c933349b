/**
 * A small writer of the Prometheus text exposition format 0.0.4, the format Prometheus and
 * VictoriaMetrics scrape from exporters such as blackbox_exporter. Hand-written rather than
 * prom-client: neither app needs a registry or default process metrics, only families built on
 * demand (from a probe result, the agent's state, the control plane's latest results and counters),
 * and a few hundred lines keep the footprint small.
 */

/** The Content-Type of a text exposition, as Prometheus negotiates it. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The types this writer emits; summaries are not needed. */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'untyped';

/** The sample name suffixes of a histogram family. */
export type HistogramSuffix = '_bucket' | '_sum' | '_count';
const HISTOGRAM_SUFFIXES: readonly string[] = ['_bucket', '_sum', '_count'] satisfies HistogramSuffix[];

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
  /** Histograms only, where every sample has one: `_bucket` (with an `le` label), `_sum` or `_count`. */
  readonly suffix?: HistogramSuffix;
}

/** One metric family: every sample shares the name, the help text and the type. */
export interface MetricFamily {
  /** For a counter, the full name ending in `_total` (as client_golang writes it in format 0.0.4). */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A family that breaks the format: a programming error, never a consequence of probed data. */
export class ExpositionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpositionError';
  }
}

/** A one-sample gauge, the shape of most probe metrics. */
export function gauge(name: string, help: string, value: number, labels?: Labels): MetricFamily {
  return { name, help, type: 'gauge', samples: [labels ? { labels, value } : { value }] };
}

/** A one-sample counter; `name` must end in `_total`. */
export function counter(name: string, help: string, value: number, labels?: Labels): MetricFamily {
  return { name, help, type: 'counter', samples: [labels ? { labels, value } : { value }] };
}

/**
 * A sample value as Prometheus parses it: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads
 * back as the same double (`0.156`, `1e-7`, `1700000000`).
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** A label value inside double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A HELP docstring: backslash and line feed are escaped (a double quote is not, in format 0.0.4). */
export function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** The same labels in another order are the same series. */
function seriesKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function labelSet(labels: Labels | undefined, family: string): string {
  const names = labels ? Object.keys(labels) : [];
  if (names.length === 0) return '';
  const pairs = names.map((name) => {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new ExpositionError(`${family}: invalid label name ${JSON.stringify(name)}`);
    }
    return `${name}="${escapeLabelValue(labels?.[name] ?? '')}"`;
  });
  return `{${pairs.join(',')}}`;
}

function checkHistogram(family: MetricFamily): void {
  const infinite = new Set<string>();
  const series = new Set<string>();
  for (const sample of family.samples) {
    if (sample.suffix === undefined || !HISTOGRAM_SUFFIXES.includes(sample.suffix)) {
      throw new ExpositionError(
        `histogram ${family.name}: every sample needs a suffix _bucket, _sum or _count`,
      );
    }
    const { le, ...rest } = sample.labels ?? {};
    const key = seriesKey(rest);
    series.add(key);
    if (sample.suffix === '_bucket') {
      if (le === undefined) throw new ExpositionError(`histogram ${family.name}: a bucket without le`);
      if (le === '+Inf') infinite.add(key);
    } else if (le !== undefined) {
      throw new ExpositionError(`histogram ${family.name}: le on a ${sample.suffix} sample`);
    }
  }
  if ([...series].some((key) => !infinite.has(key))) {
    throw new ExpositionError(`histogram ${family.name}: every series needs an le="+Inf" bucket`);
  }
}

function checkFamily(family: MetricFamily): void {
  if (!METRIC_NAME.test(family.name)) {
    throw new ExpositionError(`invalid metric name ${JSON.stringify(family.name)}`);
  }
  if (family.type === 'histogram') checkHistogram(family);
  else if (family.samples.some((s) => s.suffix !== undefined)) {
    throw new ExpositionError(`${family.name}: only histogram samples have a suffix`);
  }
  if (family.type === 'counter') {
    if (!family.name.endsWith('_total')) {
      throw new ExpositionError(`counter ${family.name} must be named with the suffix _total`);
    }
    const negative = family.samples.find((s) => s.value < 0);
    if (negative) throw new ExpositionError(`counter ${family.name} has a negative value ${negative.value}`);
  }
}

/**
 * Writes families in the order given, each as `# HELP`, `# TYPE` and its samples, every line ending
 * in a line feed. A family without samples is written as metadata only, which the format allows.
 * Throws {@link ExpositionError} on a name the format cannot carry, a family given twice, or a label
 * set repeated within a family: a scrape would otherwise fail as a whole.
 */
export function writeExposition(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const family of families) {
    checkFamily(family);
    if (seen.has(family.name)) throw new ExpositionError(`metric family ${family.name} is given twice`);
    seen.add(family.name);
    out += `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`;
    const series = new Set<string>();
    for (const sample of family.samples) {
      const name = family.name + (sample.suffix ?? '');
      const labels = labelSet(sample.labels, family.name);
      const key = name + seriesKey(sample.labels ?? {});
      if (series.has(key)) throw new ExpositionError(`${name}${labels} is given twice`);
      series.add(key);
      out += `${name}${labels} ${formatValue(sample.value)}\n`;
    }
  }
  return out;
}

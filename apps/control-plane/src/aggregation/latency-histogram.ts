/**
 * The mergeable latency histogram of the rollups: logarithmic buckets of constant relative width, so that
 * a percentile read from any sum of histograms (any window, any set of locations) is within
 * {@link LATENCY_PRECISION} of the exact one.
 *
 * Bucket 0 holds [0, 1 µs]; bucket i ≥ 1 holds (MIN·γ^(i-1), MIN·γ^i] with MIN = 1 µs and
 * γ = (1 + α) / (1 − α), α = 1 %: each bucket is read as 2·MIN·γ^i / (γ + 1), at most α away from any value
 * in it (relative). Values above 10⁷ ms land in the last bucket (1152); the maximum is kept exactly beside.
 * A histogram is stored sparse: two arrays, the bucket indexes in increasing order and their counts.
 *
 * Percentiles are nearest-rank, as PostgreSQL's percentile_disc: the p-th percentile of n values is the
 * k-th smallest, k = ⌈p·n⌉ (at least 1). The histogram answers the value of the bucket holding it, clamped
 * to the exact maximum (which only brings it closer).
 */

/** Relative precision α of every percentile read from a histogram. */
export const LATENCY_PRECISION = 0.01;

const GAMMA = (1 + LATENCY_PRECISION) / (1 - LATENCY_PRECISION);
const LN_GAMMA = Math.log(GAMMA);
/** The upper bound of bucket 0, milliseconds. */
export const HISTOGRAM_MIN_MS = 0.001;
/** Values above this many milliseconds share the last bucket. */
export const HISTOGRAM_MAX_MS = 1e7;
export const HISTOGRAM_LAST_BUCKET = Math.ceil(Math.log(HISTOGRAM_MAX_MS / HISTOGRAM_MIN_MS) / LN_GAMMA);

/** The bucket of a latency, as {@link latencyBucketSql} computes it in PostgreSQL. */
export function latencyBucket(ms: number): number {
  if (ms <= HISTOGRAM_MIN_MS) return 0;
  return Math.min(Math.ceil(Math.log(ms / HISTOGRAM_MIN_MS) / LN_GAMMA), HISTOGRAM_LAST_BUCKET);
}

/** The value a bucket stands for, milliseconds. */
export function bucketValue(bucket: number): number {
  if (bucket <= 0) return HISTOGRAM_MIN_MS / 2;
  return (HISTOGRAM_MIN_MS * 2 * GAMMA ** bucket) / (GAMMA + 1);
}

/** SQL: whether the float8 expression is a counted latency (NaN sorts above infinity in PostgreSQL). */
export const isLatencySql = (column: string): string => `(${column} >= 0 AND ${column} < 'Infinity'::float8)`;

/** SQL: the bucket (smallint) of the float8 expression, NULL when it is not a counted latency. */
export function latencyBucketSql(column: string): string {
  return (
    `CASE WHEN ${isLatencySql(column)} THEN CASE WHEN ${column} <= ${HISTOGRAM_MIN_MS} THEN 0::smallint ` +
    `ELSE least(ceil(ln(${column} / ${HISTOGRAM_MIN_MS}) / ${LN_GAMMA.toPrecision(17)}), ` +
    `${HISTOGRAM_LAST_BUCKET})::smallint END END`
  );
}

/** Percentiles and maximum of a set of latencies, milliseconds; null when there is none. */
export interface LatencyStats {
  /** How many latencies were measured. */
  count: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export const PERCENTILES = [0.5, 0.9, 0.95, 0.99] as const;

/** Nearest rank: the k-th smallest of n values is the p-th percentile, k = ⌈p·n⌉ ≥ 1. */
export const percentileRank = (p: number, n: number): number => Math.max(1, Math.ceil(p * n));

const COMMA = 44;
const ZERO = 48;

/** Buckets a histogram makes room for at first: a factor of 13 in latency. */
const INITIAL_SPAN = 128;
const BUCKETS = HISTOGRAM_LAST_BUCKET + 1;

/**
 * A histogram being summed: counts by bucket, the total and the exact maximum. Dense over the buckets in
 * use (an Int32Array whose first element is bucket `offset`, grown when a bucket outside it comes):
 * adding, merging and reading percentiles are tight loops, with no allocation per latency and little per
 * histogram.
 */
export class LatencyHistogram {
  private counts: Int32Array | undefined;
  private offset = 0;
  private lowest = BUCKETS;
  private highest = -1;
  count = 0;
  max: number | null = null;

  private add(bucket: number, n: number): void {
    let counts = this.counts;
    if (!counts) {
      this.offset = Math.max(0, Math.min(bucket - INITIAL_SPAN / 2, BUCKETS - INITIAL_SPAN));
      counts = this.counts = new Int32Array(INITIAL_SPAN);
    } else if (bucket < this.offset || bucket >= this.offset + counts.length) {
      counts = this.grow(bucket);
    }
    const at = bucket - this.offset;
    counts[at] = counts[at]! + n;
    if (bucket < this.lowest) this.lowest = bucket;
    if (bucket > this.highest) this.highest = bucket;
    this.count += n;
  }

  /** Makes room for `bucket`: twice the span at least, centred on what is in use. */
  private grow(bucket: number): Int32Array {
    const old = this.counts!;
    const low = Math.min(bucket, this.offset);
    const high = Math.max(bucket, this.offset + old.length - 1);
    const span = Math.min(BUCKETS, Math.max(old.length * 2, high - low + 1 + INITIAL_SPAN));
    const offset = Math.max(0, Math.min(low - ((span - (high - low + 1)) >> 1), BUCKETS - span));
    const counts = new Int32Array(span);
    counts.set(old, this.offset - offset);
    this.counts = counts;
    this.offset = offset;
    return counts;
  }

  private addMax(max: number | null): void {
    if (max !== null && (this.max === null || max > this.max)) this.max = max;
  }

  /** Adds a stored histogram: parallel arrays of buckets and counts, and its maximum. */
  addBuckets(buckets: readonly number[], counts: readonly number[], max: number | null): void {
    for (let i = 0; i < buckets.length; i++) this.add(buckets[i]!, counts[i]!);
    this.addMax(max);
  }

  /**
   * Adds a stored histogram written as text: buckets and counts as comma-separated decimal integers
   * (PostgreSQL's array_to_string), read in place.
   */
  addText(buckets: string, counts: string, max: number | null): void {
    let i = 0;
    let j = 0;
    while (i < buckets.length) {
      let bucket = 0;
      for (let c = buckets.charCodeAt(i); c !== COMMA && i < buckets.length; c = buckets.charCodeAt(++i)) {
        bucket = bucket * 10 + c - ZERO;
      }
      let n = 0;
      for (let c = counts.charCodeAt(j); c !== COMMA && j < counts.length; c = counts.charCodeAt(++j)) {
        n = n * 10 + c - ZERO;
      }
      this.add(bucket, n);
      i++;
      j++;
    }
    this.addMax(max);
  }

  /** Adds one latency of a bucket computed elsewhere (by PostgreSQL). */
  addOne(bucket: number, ms: number): void {
    this.add(bucket, 1);
    this.addMax(ms);
  }

  merge(other: LatencyHistogram): void {
    const counts = other.counts;
    if (counts) {
      for (let bucket = other.lowest; bucket <= other.highest; bucket++) {
        const n = counts[bucket - other.offset]!;
        if (n) this.add(bucket, n);
      }
    }
    this.addMax(other.max);
  }

  stats(): LatencyStats {
    const counts = this.counts;
    if (!counts || this.count === 0) {
      return { count: 0, p50: null, p90: null, p95: null, p99: null, max: null };
    }
    const values: number[] = [];
    let bucket = this.lowest;
    let seen = counts[bucket - this.offset]!;
    for (const p of PERCENTILES) {
      const rank = percentileRank(p, this.count);
      while (seen < rank) seen += counts[++bucket - this.offset]!;
      values.push(Math.min(bucketValue(bucket), this.max!));
    }
    const [p50, p90, p95, p99] = values as [number, number, number, number];
    return { count: this.count, p50, p90, p95, p99, max: this.max };
  }
}

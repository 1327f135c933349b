import { describe, expect, it } from 'vitest';
import {
  bucketValue,
  HISTOGRAM_LAST_BUCKET,
  HISTOGRAM_MAX_MS,
  HISTOGRAM_MIN_MS,
  LATENCY_PRECISION,
  LatencyHistogram,
  latencyBucket,
  percentileRank,
} from './latency-histogram';

/** Nearest rank, as percentile_disc: the ⌈p·n⌉-th smallest. */
function exactPercentile(sorted: readonly number[], p: number): number {
  return sorted[percentileRank(p, sorted.length) - 1]!;
}

describe(LatencyHistogram.name, () => {
  it('reads every bucket as a value within 1 % of anything it holds', () => {
    for (let bucket = 1; bucket <= HISTOGRAM_LAST_BUCKET; bucket++) {
      const value = bucketValue(bucket);
      expect(latencyBucket(value)).toBe(bucket);
      const lower = bucketValue(bucket - 1) * 1.0001;
      for (const ms of [lower, value, value * (1 + LATENCY_PRECISION * 0.99)]) {
        if (latencyBucket(ms) !== bucket) continue;
        expect(Math.abs(value - ms) / ms).toBeLessThanOrEqual(LATENCY_PRECISION * (1 + 1e-9));
      }
    }
    expect(HISTOGRAM_LAST_BUCKET).toBe(1152);
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(HISTOGRAM_MIN_MS)).toBe(0);
    expect(latencyBucket(HISTOGRAM_MAX_MS * 10)).toBe(HISTOGRAM_LAST_BUCKET);
  });

  it('gives percentiles within its precision of the exact ones, for any way of splitting and merging', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 50; round++) {
      const n = 1 + Math.floor(random() * 2000);
      const values = Array.from({ length: n }, () => 0.05 * Math.exp(random() * 14));
      const parts = [new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram()];
      for (const ms of values) parts[Math.floor(random() * parts.length)]!.addOne(latencyBucket(ms), ms);
      const merged = new LatencyHistogram();
      for (const part of parts) merged.merge(part);
      const stats = merged.stats();
      const sorted = [...values].sort((a, b) => a - b);
      expect(stats.count).toBe(n);
      expect(stats.max).toBe(sorted[n - 1]);
      for (const [key, p] of [
        ['p50', 0.5],
        ['p90', 0.9],
        ['p95', 0.95],
        ['p99', 0.99],
      ] as const) {
        const exact = exactPercentile(sorted, p);
        expect(Math.abs(stats[key]! - exact) / exact).toBeLessThanOrEqual(LATENCY_PRECISION * (1 + 1e-9));
      }
    }
  });

  it('adds stored sparse histograms as it adds single values', () => {
    const one = new LatencyHistogram();
    one.addBuckets([10, 200, 201], [3, 1, 2], 12.5);
    one.addBuckets([200], [4], 11);
    const stats = one.stats();
    expect(stats.count).toBe(10);
    expect(stats.max).toBe(12.5);
    expect(stats.p50).toBe(Math.min(bucketValue(200), 12.5));
    const text = new LatencyHistogram();
    text.addText('10,200,201', '3,1,2', 12.5);
    text.addText('200', '4', 11);
    text.addText('', '', null);
    expect(text.stats()).toEqual(stats);
    // Buckets far apart on both sides of the first: the histogram grows both ways.
    const wide = new LatencyHistogram();
    wide.addBuckets([600, 5, HISTOGRAM_LAST_BUCKET, 0], [1, 1, 1, 1], 2e7);
    expect(wide.stats()).toMatchObject({
      count: 4,
      p50: bucketValue(5),
      p90: bucketValue(HISTOGRAM_LAST_BUCKET),
      max: 2e7,
    });
    expect(new LatencyHistogram().stats()).toEqual({
      count: 0,
      p50: null,
      p90: null,
      p95: null,
      p99: null,
      max: null,
    });
  });
});

import { ExpositionError, formatValue, type Labels, type MetricFamily, type Sample } from './exposition';

/**
 * A cumulative histogram of observations with fixed bucket bounds, as client_golang keeps one: cheap to
 * update on a hot path (one binary search and two additions), read as a family when scraped.
 */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** `bounds`: the finite upper bounds of the buckets, ascending; `+Inf` is always added. */
  constructor(readonly bounds: readonly number[]) {
    bounds.forEach((bound, i) => {
      if (!Number.isFinite(bound) || (i > 0 && bound <= bounds[i - 1]!)) {
        throw new ExpositionError(`histogram bounds must be finite and ascending: ${bounds.join(', ')}`);
      }
    });
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Counts one value into the first bucket whose bound is at least the value; NaN is ignored. */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    let low = 0;
    let high = this.bounds.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (value <= this.bounds[mid]!) high = mid;
      else low = mid + 1;
    }
    this.counts[low]!++;
    this.sum += value;
    this.count++;
  }

  /** The `_bucket` (cumulative, `le` ascending, ending with `+Inf`), `_sum` and `_count` samples. */
  samples(labels: Labels = {}): Sample[] {
    let cumulative = 0;
    const buckets = this.counts.map((n, i): Sample => {
      cumulative += n;
      const le = i < this.bounds.length ? formatValue(this.bounds[i]!) : '+Inf';
      return { suffix: '_bucket', labels: { ...labels, le }, value: cumulative };
    });
    return [
      ...buckets,
      { suffix: '_sum', labels, value: this.sum },
      { suffix: '_count', labels, value: this.count },
    ];
  }
}

/** A histogram family of one series. */
export function histogram(name: string, help: string, source: Histogram, labels?: Labels): MetricFamily {
  return { name, help, type: 'histogram', samples: source.samples(labels) };
}

import { AgentResult, type ConnectRequest } from '@wsmon/proto/agent';
import { toAgentResult, type ResultRecord } from '../results/result-record';
import type { ResultSpool } from '../spool/result-spool';
import { ProtocolViolation } from './config-sync';

/** How results leave the spool. */
export interface ResultLimits {
  /** Results per ResultBatch at most. */
  readonly maxBatchResults: number;
  /** Encoded bytes per ResultBatch at most: well under the control plane's 4 MiB receive limit. */
  readonly maxBatchBytes: number;
  /** Results sent and not yet acknowledged at most: the pipeline's depth. */
  readonly maxUnackedResults: number;
}

export const DEFAULT_RESULT_LIMITS: ResultLimits = {
  maxBatchResults: 500,
  maxBatchBytes: 3 * 1024 * 1024,
  maxUnackedResults: 5000,
};

/** Bytes a result adds to its batch besides its own encoding: the field tag and a length of up to 4 bytes. */
const FIELD_OVERHEAD_BYTES = 5;

/** The stream is gone (ended, cancelled or half-closed): nothing more can be written. */
export class StreamClosedError extends Error {
  override readonly name = 'StreamClosedError';
}

/**
 * Sends the spool's results on one stream and applies the control plane's acknowledgements.
 *
 * It starts after the acknowledged sequence (so a new stream sends again, with the same result ids
 * and sequences, whatever the last one left unacknowledged), then goes on after the highest sequence
 * it sent. Batches are bounded by count and encoded size and pipelined without waiting for a
 * ResultAck, up to `maxUnackedResults` unacknowledged results; `write` resolves once the stream takes
 * more (its backpressure), so a slow control plane slows the reading of the spool, nothing else.
 */
export class ResultSender {
  private sentUpTo: number;
  private lastAck = 0;
  private unacked: { last: number; count: number }[] = [];
  private unackedCount = 0;
  private readonly ackWaiters = new Set<() => void>();

  constructor(
    private readonly spool: ResultSpool<ResultRecord>,
    private readonly write: (message: ConnectRequest) => Promise<void>,
    private readonly signal: AbortSignal,
    private readonly limits: ResultLimits = DEFAULT_RESULT_LIMITS,
  ) {
    this.sentUpTo = spool.stats().acknowledgedSequence;
  }

  /** Sends until the signal aborts or the stream closes; other errors (the spool failing) reject. */
  async run(): Promise<void> {
    try {
      while (!this.signal.aborted) {
        await this.windowOpen();
        if (this.signal.aborted) return;
        await this.spool.waitForRecords(this.sentUpTo, this.signal);
        const room = this.limits.maxUnackedResults - this.unackedCount;
        const records = await this.spool.read(this.sentUpTo, Math.min(this.limits.maxBatchResults, room));
        const results: AgentResult[] = [];
        let bytes = 0;
        for (const record of records) {
          if (record.sequence <= this.sentUpTo) continue; // acknowledged while it was read
          const result = toAgentResult(record);
          const size = AgentResult.encode(result).finish().length + FIELD_OVERHEAD_BYTES;
          if (results.length > 0 && bytes + size > this.limits.maxBatchBytes) break;
          results.push(result);
          bytes += size;
        }
        if (results.length === 0 || this.signal.aborted) continue;
        const last = results[results.length - 1]!.sequence;
        this.sentUpTo = Math.max(this.sentUpTo, last);
        this.unacked.push({ last, count: results.length });
        this.unackedCount += results.length;
        await this.write({ result_batch: { results } });
      }
    } catch (error) {
      if (this.signal.aborted || error instanceof StreamClosedError) return;
      throw error;
    }
  }

  /**
   * A ResultAck: cumulative and never decreasing. It may acknowledge beyond what this stream sent
   * (results the control plane committed from an earlier stream), never beyond what the agent recorded.
   */
  async acknowledge(upTo: number): Promise<void> {
    if (upTo < this.lastAck) {
      throw new ProtocolViolation(
        `ResultAck ${upTo} after ResultAck ${this.lastAck}: acknowledgements never decrease`,
      );
    }
    const recorded = this.spool.stats().lastSequence;
    if (upTo > recorded) {
      throw new ProtocolViolation(`ResultAck ${upTo} beyond the last result recorded (${recorded})`);
    }
    this.lastAck = upTo;
    this.sentUpTo = Math.max(this.sentUpTo, upTo);
    while (this.unacked.length > 0 && this.unacked[0]!.last <= upTo) {
      this.unackedCount -= this.unacked.shift()!.count;
    }
    await this.spool.acknowledge(upTo);
    for (const wake of [...this.ackWaiters]) wake();
  }

  /**
   * Resolves true once every result recorded is acknowledged (the spool is empty), false when
   * `timeoutMs` passes or the stream ends first.
   */
  whenAllAcknowledged(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const empty = () => this.spool.stats().depth === 0;
    if (empty()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean) => {
        this.ackWaiters.delete(check);
        this.signal.removeEventListener('abort', aborted);
        clearTimeout(timer);
        resolve(value);
      };
      const check = () => {
        if (empty()) finish(true);
      };
      const aborted = () => finish(false);
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => finish(false), timeoutMs) : undefined;
      this.ackWaiters.add(check);
      this.signal.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Waits while the pipeline holds `maxUnackedResults` unacknowledged results. */
  private windowOpen(): Promise<void> {
    if (this.unackedCount < this.limits.maxUnackedResults) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        if (this.unackedCount >= this.limits.maxUnackedResults && !this.signal.aborted) return;
        this.ackWaiters.delete(wake);
        this.signal.removeEventListener('abort', wake);
        resolve();
      };
      this.ackWaiters.add(wake);
      this.signal.addEventListener('abort', wake, { once: true });
    });
  }
}

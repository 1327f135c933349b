import type { ProbeResult } from '@wsmon/contracts';
import type { AgentResult } from '@wsmon/proto/agent';
import type { SpooledResult } from '../spool/result-spool';

/**
 * What the agent records in its spool for each run: every field of the wire's `AgentResult` in
 * JSON form (times as epoch milliseconds), except the sequence, which is the spool's. Converted to
 * an `AgentResult` when sent, as often as it is sent: the same `result_id` and sequence every time.
 */
export interface ResultRecord {
  /** A UUID chosen when the run ended. */
  readonly result_id: string;
  readonly test_id: string;
  readonly test_revision: number;
  /** The scheduled slot; for an on-demand run, when it started. */
  readonly slot_ms: number;
  /** When the first attempt started (wall clock). */
  readonly started_ms: number;
  readonly attempts: number;
  /** The on-demand run this result answers. */
  readonly run_id?: string;
  readonly success: boolean;
  readonly value?: number;
  /** Empty on success. */
  readonly reason: string;
  readonly cause: string;
  readonly category: string;
  readonly open_ms?: number;
  readonly round_trip_ms?: number;
  readonly total_ms: number;
  readonly close_code?: number;
  readonly tls_not_after_ms?: number;
  /** The complete ProbeResult of the last attempt, as JSON (the engine has redacted its secrets). */
  readonly result_json: string;
}

export interface RunFacts {
  readonly resultId: string;
  readonly testId: string;
  readonly testRevision: number;
  readonly slotMs: number;
  readonly startedMs: number;
  readonly attempts: number;
  readonly runId?: string;
}

/** The record of a run from its facts and the probe's result. */
export function resultRecord(run: RunFacts, result: ProbeResult): ResultRecord {
  const notAfterMs = result.tls?.certificate ? Date.parse(result.tls.certificate.valid_to) : Number.NaN;
  return {
    result_id: run.resultId,
    test_id: run.testId,
    test_revision: run.testRevision,
    slot_ms: run.slotMs,
    started_ms: run.startedMs,
    attempts: run.attempts,
    ...(run.runId === undefined ? {} : { run_id: run.runId }),
    success: result.success,
    ...(result.value === null ? {} : { value: result.value }),
    reason: result.failure?.reason ?? '',
    cause: result.failure?.cause ?? '',
    category: result.failure?.category ?? '',
    ...(result.timings.open_ms === null ? {} : { open_ms: result.timings.open_ms }),
    ...(result.timings.round_trip_ms === null ? {} : { round_trip_ms: result.timings.round_trip_ms }),
    total_ms: result.timings.total_ms,
    ...(result.close === null ? {} : { close_code: result.close.code }),
    ...(Number.isFinite(notAfterMs) ? { tls_not_after_ms: notAfterMs } : {}),
    result_json: JSON.stringify(result),
  };
}

/** The wire form of a spooled record. */
export function toAgentResult({ sequence, record }: SpooledResult<ResultRecord>): AgentResult {
  return {
    result_id: record.result_id,
    sequence,
    test_id: record.test_id,
    test_revision: record.test_revision,
    slot_time: new Date(record.slot_ms),
    started_time: new Date(record.started_ms),
    attempts: record.attempts,
    run_id: record.run_id,
    success: record.success,
    value: record.value,
    reason: record.reason,
    cause: record.cause,
    category: record.category,
    open_ms: record.open_ms,
    round_trip_ms: record.round_trip_ms,
    total_ms: record.total_ms,
    close_code: record.close_code,
    tls_not_after: record.tls_not_after_ms === undefined ? undefined : new Date(record.tls_not_after_ms),
    result_json: Buffer.from(record.result_json, 'utf8'),
  };
}

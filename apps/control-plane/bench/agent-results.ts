import { randomUUID } from 'node:crypto';
import type { ProbeResult } from '@wsmon/contracts';
import { ConnectRequest, type AgentResult } from '@wsmon/proto/agent';
import { probeResultDocument } from '../src/results/agent-results.spec-helper';

/**
 * The rows a benchmark writes: every test from every location, for `slots` consecutive minutes ending
 * with `lastSlotMs`. A location's agents share its tests: test `t` runs on agent `t mod n` of its `n`.
 */
export interface RowPlan {
  readonly testIds: readonly string[];
  readonly locations: readonly { readonly id: string; readonly agentIds: readonly string[] }[];
  readonly slots: number;
  readonly lastSlotMs: number;
}

export const SLOT_MS = 60_000;

export const planSize = (plan: RowPlan): number => plan.testIds.length * plan.locations.length * plan.slots;

/** The UTC days (since the epoch) the plan's slots fall on. */
export function planDays(plan: RowPlan): number[] {
  const first = Math.floor((plan.lastSlotMs - (plan.slots - 1) * SLOT_MS) / 86_400_000);
  const last = Math.floor(plan.lastSlotMs / 86_400_000);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** One row of the plan, as the agent's probe reported it: the document varies from row to row. */
export interface PlannedResult {
  readonly resultId: string;
  readonly testId: string;
  readonly locationIndex: number;
  /** The agent of the location that ran it. */
  readonly agentId: string;
  readonly slotMs: number;
  readonly document: ProbeResult;
}

/** Every row of the plan, location by location (as each location's agent sends them), oldest slot first. */
export function* plannedResults(plan: RowPlan): Generator<PlannedResult> {
  const template = probeResultDocument();
  for (let l = 0; l < plan.locations.length; l++) {
    const { agentIds } = plan.locations[l]!;
    for (let s = plan.slots - 1; s >= 0; s--) {
      const slotMs = plan.lastSlotMs - s * SLOT_MS;
      for (let t = 0; t < plan.testIds.length; t++) {
        const jitter = ((t * 7919 + s * 104_729 + l * 31) % 1000) / 100;
        const openMs = 10 + jitter;
        const roundTripMs = 15 + jitter / 2;
        yield {
          resultId: randomUUID(),
          testId: plan.testIds[t]!,
          locationIndex: l,
          agentId: agentIds[t % agentIds.length]!,
          slotMs,
          document: {
            ...template,
            value: roundTripMs,
            started_at: new Date(slotMs + 250 + t).toISOString(),
            timings: {
              ...template.timings,
              open_ms: openMs,
              round_trip_ms: roundTripMs,
              total_ms: 30 + jitter,
            },
          },
        };
      }
    }
  }
}

/** A planned row as the AgentResult its agent sends: the document as UTF-8 JSON bytes. */
export function toAgentResult(row: PlannedResult, sequence: number): AgentResult {
  const d = row.document;
  return {
    result_id: row.resultId,
    sequence,
    test_id: row.testId,
    test_revision: 1,
    slot_time: new Date(row.slotMs),
    started_time: new Date(d.started_at),
    attempts: 1,
    run_id: undefined,
    success: d.success,
    value: d.value ?? undefined,
    reason: d.failure?.reason ?? '',
    cause: d.failure?.cause ?? '',
    category: d.failure?.category ?? '',
    open_ms: d.timings.open_ms ?? undefined,
    round_trip_ms: d.timings.round_trip_ms ?? undefined,
    total_ms: d.timings.total_ms,
    close_code: d.close?.code,
    tls_not_after: d.tls?.certificate ? new Date(d.tls.certificate.valid_to) : undefined,
    result_json: Buffer.from(JSON.stringify(d)),
  };
}

/** A batch of one agent's results, as it sends them: at most `batchSize` results. */
export interface AgentBatch {
  readonly locationId: string;
  readonly agentId: string;
  readonly results: AgentResult[];
}

/**
 * Every agent's batches: each agent numbers its results 1, 2, 3… (its sequence), in the order of
 * {@link plannedResults}. Batches of different agents interleave as the rows do.
 */
export function agentResultBatches(plan: RowPlan, batchSize: number): AgentBatch[] {
  const batches: AgentBatch[] = [];
  const current = new Map<string, AgentBatch>();
  const sequences = new Map<string, number>();
  for (const row of plannedResults(plan)) {
    let batch = current.get(row.agentId);
    if (!batch || batch.results.length >= batchSize) {
      batch = { locationId: plan.locations[row.locationIndex]!.id, agentId: row.agentId, results: [] };
      current.set(row.agentId, batch);
      batches.push(batch);
    }
    const sequence = (sequences.get(row.agentId) ?? 0) + 1;
    sequences.set(row.agentId, sequence);
    batch.results.push(toAgentResult(row, sequence));
  }
  return batches;
}

/** One agent's batches as the ConnectRequest messages it writes on its stream, encoded. */
export interface EncodedAgentStream {
  readonly agentId: string;
  readonly locationId: string;
  readonly messages: readonly Buffer[];
  /** The sequence of the last result of each message. */
  readonly lastSequences: readonly number[];
  /** The greatest encoded message, bytes. */
  readonly maxMessageBytes: number;
}

/** The batches of each agent, in order, encoded once: encoding is the agents' work, not the control plane's. */
export function encodedAgentStreams(batches: readonly AgentBatch[]): EncodedAgentStream[] {
  const streams = new Map<
    string,
    {
      agentId: string;
      locationId: string;
      messages: Buffer[];
      lastSequences: number[];
      maxMessageBytes: number;
    }
  >();
  for (const batch of batches) {
    const stream = streams.get(batch.agentId) ?? {
      agentId: batch.agentId,
      locationId: batch.locationId,
      messages: [],
      lastSequences: [],
      maxMessageBytes: 0,
    };
    streams.set(batch.agentId, stream);
    const bytes = ConnectRequest.encode({ result_batch: { results: batch.results } }).finish();
    stream.messages.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    stream.lastSequences.push(batch.results[batch.results.length - 1]!.sequence);
    stream.maxMessageBytes = Math.max(stream.maxMessageBytes, bytes.byteLength);
  }
  return [...streams.values()];
}

/** The columns {@link copyText} writes, in order. */
export const COPY_COLUMNS =
  'test_id, location_id, slot_time, result_id, agent_id, test_revision, started_at, attempts, success, ' +
  'value, reason, cause, category, open_ms, round_trip_ms, total_ms, close_code, tls_not_after, result';

/** COPY's text format: `\N` is NULL; a backslash is doubled (JSON.stringify leaves no tab or newline). */
const copyValue = (value: string | number | boolean | null | undefined): string =>
  value === null || value === undefined ? '\\N' : String(value);

/** The plan's rows in COPY text format, in chunks of `rowsPerChunk` rows. */
export function copyText(plan: RowPlan, rowsPerChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  for (const row of plannedResults(plan)) {
    const d = row.document;
    lines.push(
      [
        row.testId,
        plan.locations[row.locationIndex]!.id,
        new Date(row.slotMs).toISOString(),
        row.resultId,
        row.agentId,
        1,
        d.started_at,
        1,
        d.success ? 't' : 'f',
        d.value,
        d.failure?.reason,
        d.failure?.cause,
        d.failure?.category,
        d.timings.open_ms,
        d.timings.round_trip_ms,
        d.timings.total_ms,
        d.close?.code,
        d.tls?.certificate?.valid_to,
        JSON.stringify(d).replaceAll('\\', '\\\\'),
      ]
        .map(copyValue)
        .join('\t'),
    );
    if (lines.length >= rowsPerChunk) {
      chunks.push(Buffer.from(`${lines.join('\n')}\n`));
      lines = [];
    }
  }
  if (lines.length) chunks.push(Buffer.from(`${lines.join('\n')}\n`));
  return chunks;
}

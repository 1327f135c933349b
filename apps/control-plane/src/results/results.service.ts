import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { resultListQuerySchema, runGetQuerySchema } from '@wsmon/contracts';
import type { AgentResult } from '@wsmon/proto';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination';
import { isInvalidText } from '../common/pg-errors';
import { isUuid, validated } from '../common/validation';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ChangeBus } from '../database/change-bus';
import type { MeasuredFields } from './result.entity';
import { dayOf, ResultsRepository, type IngestOutcome, type RunWithLocations } from './results.repository';
import type { RunLocationStatus } from './run.entity';

export type { IngestOutcome } from './results.repository';

/**
 * A result an agent sent breaks a documented rule of `AgentResult` (proto/wsmon/v1/agent.proto). Names the
 * result by its index in the batch and the field: `results[3].result_json: not a JSON object`. Nothing of
 * the batch was stored. A stream handler ends the stream with INVALID_ARGUMENT and this message.
 */
export class InvalidResultError extends InvalidArgumentError {
  override readonly name = 'InvalidResultError';
  /** `results[3].result_json` */
  readonly path: string;

  constructor(
    /** Index of the offending result in the `results` passed to {@link ResultsService.ingest}. */
    readonly index: number,
    /** The offending field of AgentResult, such as `result_json`. */
    readonly field: string,
    /** The rule broken: `uuid`, `required`, `range`, `json_object`, `json`, `utf8`. */
    readonly rule: string,
    /** What is wrong, such as `not a JSON object`. */
    readonly problem: string,
  ) {
    const path = `results[${index}].${field}`;
    super([{ path, rule, message: `${path}: ${problem}` }]);
    this.path = path;
    this.message = `${path}: ${problem}`;
  }
}

/**
 * Results outside this window around the control plane's clock are discarded (and counted so): a slot
 * months old is past any retention, and one days ahead comes from a broken clock. Either would also make
 * a partition for a day that holds nothing else. A shorter retention of results
 * (`WSMON_RESULTS_RETENTION_DAYS`) shortens the past: a day whose partition retention dropped never
 * takes results again.
 */
export const SLOT_WINDOW_MS = { past: 31 * 86_400_000, future: 86_400_000 } as const;
/** Partitions exist this many days ahead of today (UTC), made at start and re-checked hourly. */
const PARTITION_DAYS_AHEAD = 2;
const PARTITION_CHECK_INTERVAL_MS = 3_600_000;
const RUN_POLL_INTERVAL_MS = 200;
const DEFAULT_RANGE_MS = 24 * 3_600_000;
const INT4_MAX = 2 ** 31 - 1;

/** One stored result, scheduled or on demand: the measured fields and the ProbeResult document. */
export interface ResultResponse {
  result_id: string;
  test_id: string;
  test_revision: number;
  /** The location's name; null once the location is deleted. */
  location: string | null;
  location_id: string;
  agent_id: string;
  /** The on-demand run the result answers; null for a scheduled run. */
  run_id: string | null;
  /** The scheduled slot; for an on-demand run, when the agent started it. */
  slot_time: string;
  started_at: string | null;
  received_at: string;
  attempts: number;
  success: boolean;
  value: number | null;
  reason: string | null;
  cause: string | null;
  category: string | null;
  open_ms: number | null;
  round_trip_ms: number | null;
  total_ms: number;
  close_code: number | null;
  tls_not_after: string | null;
  /** The ProbeResult document as the agent sent it. */
  result: Record<string, unknown>;
}

export interface RunLocationResponse {
  location: string | null;
  location_id: string;
  status: RunLocationStatus;
  /** The agent the run went to (dispatched), then the one whose result completed it. */
  agent_id: string | null;
  /** Set once completed. */
  result: ResultResponse | null;
}

export interface RunResponse {
  id: string;
  test_id: string;
  test_revision: number;
  created_at: string;
  /** The API key that requested the run. */
  requested_by: string | null;
  /** Every location is completed or has no agent: nothing more will arrive. */
  done: boolean;
  locations: RunLocationResponse[];
}

const iso = (date: Date | null): string | null => date?.toISOString() ?? null;

export function resultResponse(
  row: MeasuredFields & { locationId: string; agentId: string | null },
  extra: { testId: string; runId: string | null; receivedAt: Date; location: string | null },
): ResultResponse {
  return {
    result_id: row.resultId!,
    test_id: extra.testId,
    test_revision: Number(row.testRevision),
    location: extra.location,
    location_id: row.locationId,
    agent_id: row.agentId ?? '',
    run_id: extra.runId,
    slot_time: row.slotTime!.toISOString(),
    started_at: iso(row.startedAt),
    received_at: extra.receivedAt.toISOString(),
    attempts: row.attempts!,
    success: row.success!,
    value: row.value,
    reason: row.reason,
    cause: row.cause,
    category: row.category,
    open_ms: row.openMs,
    round_trip_ms: row.roundTripMs,
    total_ms: row.totalMs!,
    close_code: row.closeCode,
    tls_not_after: iso(row.tlsNotAfter),
    result: row.result!,
  };
}

const isFinished = (status: RunLocationStatus) => status === 'completed' || status === 'no_agent';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Results: ingest from agents, the results API, on-demand runs. REST and gRPC both call this. */
@Injectable()
export class ResultsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('results');
  private partitionTimer: NodeJS.Timeout | undefined;
  /** How late a result may come: {@link SLOT_WINDOW_MS}, or less under a shorter retention. */
  private readonly pastMs: number;

  constructor(
    private readonly repository: ResultsRepository,
    private readonly changeBus: ChangeBus,
    @Optional() @Inject(APP_CONFIG) config?: Pick<AppConfig, 'resultsRetentionDays'>,
  ) {
    this.pastMs = Math.min(SLOT_WINDOW_MS.past, (config?.resultsRetentionDays ?? Infinity) * 86_400_000);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.preparePartitions();
    this.partitionTimer = setInterval(() => {
      this.preparePartitions().catch((error: unknown) =>
        this.logger.warn(`cannot create the partitions ahead (${String(error)}): ingest creates them`),
      );
    }, PARTITION_CHECK_INTERVAL_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.partitionTimer);
  }

  /** Makes the partitions of today and the next days (UTC), so that ingest rarely creates one. */
  async preparePartitions(now = Date.now()): Promise<void> {
    const today = dayOf(now);
    await this.repository.ensurePartitions(
      Array.from({ length: PARTITION_DAYS_AHEAD + 1 }, (_, i) => today + i),
    );
  }

  /**
   * Stores the results an agent of a location sent, in one transaction, and resolves once it committed:
   * the caller may then acknowledge every one of them. Scheduled results are kept once per test, location
   * and slot; an on-demand result (`run_id`) completes its run's location, once. Results of deleted tests
   * or runs, and slots outside {@link SLOT_WINDOW_MS}, are discarded. Throws {@link InvalidResultError}
   * (nothing stored) when a result breaks a rule of AgentResult.
   */
  async ingest(locationId: string, agentId: string, results: readonly AgentResult[]): Promise<IngestOutcome> {
    const now = Date.now();
    const scheduled: AgentResult[] = [];
    const onDemand: AgentResult[] = [];
    const days = new Set<number>();
    let outside = 0;
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!;
      checkResult(result, i);
      if (result.run_id !== undefined) {
        onDemand.push(result);
        continue;
      }
      const slot = result.slot_time!.getTime();
      if (slot < now - this.pastMs || slot > now + SLOT_WINDOW_MS.future) {
        outside++;
        continue;
      }
      scheduled.push(result);
      days.add(dayOf(slot));
    }
    await this.repository.ensurePartitions(days);
    try {
      const outcome = await this.repository.ingest(locationId, agentId, scheduled, onDemand);
      return { ...outcome, discarded: outcome.discarded + outside };
    } catch (error) {
      // PostgreSQL validated the documents and refused one: find which, only now.
      throw (isInvalidText(error) && invalidDocument(results)) || error;
    }
  }

  async list(testId: string, query: unknown): Promise<Page<ResultResponse>> {
    const q = validated(resultListQuerySchema, query);
    if (!(await this.repository.testExists(testId))) throw new NotFoundError('test', testId);
    const to = q.to === undefined ? new Date() : new Date(q.to);
    const from = q.from === undefined ? new Date(to.getTime() - DEFAULT_RANGE_MS) : new Date(q.from);
    const filter = {
      from,
      to,
      locationName: q.location,
      agentId: q.agent,
      success: q.outcome === undefined ? undefined : q.outcome === 'success',
    };
    const rows = await this.repository.listResults(
      testId,
      filter,
      q.page_size + 1,
      decodeCursor(q.page_token),
    );
    const items = rows.slice(0, q.page_size);
    const names = await this.locationNames(items.map((r) => r.locationId));
    const last = items[items.length - 1];
    return {
      items: items.map((row) =>
        resultResponse(row, {
          testId: row.testId,
          runId: null,
          receivedAt: row.receivedAt,
          location: names.get(row.locationId) ?? null,
        }),
      ),
      next_page_token:
        rows.length > q.page_size && last
          ? encodeCursor({ createdAt: last.slotTime, id: last.locationId })
          : null,
    };
  }

  /**
   * Creates an on-demand run of the test from each of its locations, then tells the replicas (`wsmon_run`):
   * the one holding a location's agents dispatches it, or marks it `no_agent`.
   */
  async createRun(testId: string, requestedBy: string | null): Promise<RunResponse> {
    const created = isUuid(testId)
      ? await this.repository.createRun({ id: randomUUID(), testId, requestedBy })
      : null;
    if (!created) throw new NotFoundError('test', testId);
    try {
      await this.changeBus.publish('wsmon_run', created.run.id);
    } catch (error) {
      // The run is committed: answering 500 would invite a second one. Replicas resynchronise on reconnect.
      this.logger.warn(`run ${created.run.id} created, but not announced: ${String(error)}`);
    }
    return this.runResponse(created);
  }

  /** The run as it stands, or once every location finished, waiting at most `wait_s` seconds. */
  async getRun(runId: string, query: unknown): Promise<RunResponse> {
    const { wait_s } = validated(runGetQuerySchema, query);
    const deadline = Date.now() + wait_s * 1000;
    for (;;) {
      const run = await this.repository.findRun(runId);
      if (!run) throw new NotFoundError('run', runId);
      const remaining = deadline - Date.now();
      if (remaining <= 0 || run.locations.every((l) => isFinished(l.status))) return this.runResponse(run);
      await sleep(Math.min(RUN_POLL_INTERVAL_MS, remaining));
    }
  }

  private async runResponse({ run, locations }: RunWithLocations): Promise<RunResponse> {
    const names = await this.locationNames(locations.map((l) => l.locationId));
    const rows = locations.map((row): RunLocationResponse => ({
      location: names.get(row.locationId) ?? null,
      location_id: row.locationId,
      status: row.status,
      agent_id: row.agentId,
      result:
        row.status === 'completed'
          ? resultResponse(row, {
              testId: run.testId,
              runId: run.id,
              receivedAt: row.completedAt!,
              location: names.get(row.locationId) ?? null,
            })
          : null,
    }));
    rows.sort((a, b) => (a.location ?? '').localeCompare(b.location ?? ''));
    return {
      id: run.id,
      test_id: run.testId,
      test_revision: Number(run.testRevision),
      created_at: run.createdAt.toISOString(),
      requested_by: run.requestedBy,
      done: rows.every((r) => isFinished(r.status)),
      locations: rows,
    };
  }

  private locationNames(ids: readonly string[]): Promise<Map<string, string>> {
    return this.repository.locationNames([...new Set(ids)]);
  }
}

/** The times a result may carry: what ISO 8601 and every client of the API can spell. */
/** 0001-01-01T00:00:00Z (Date.UTC reads years below 100 as 19xx). */
const MIN_TIME_MS = -62_135_596_800_000;
const MAX_TIME_MS = Date.UTC(10_000, 0, 1);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The rules of AgentResult that are cheap to check here; PostgreSQL checks the rest of the JSON. The
 * document must be a JSON object: its first byte after whitespace is `{`.
 */
function checkResult(r: AgentResult, i: number): void {
  if (!UUID.test(r.result_id)) throw new InvalidResultError(i, 'result_id', 'uuid', 'not a UUID');
  if (!UUID.test(r.test_id)) throw new InvalidResultError(i, 'test_id', 'uuid', 'not a UUID');
  if (r.run_id !== undefined && !UUID.test(r.run_id))
    throw new InvalidResultError(i, 'run_id', 'uuid', 'not a UUID');
  if (!r.slot_time || Number.isNaN(r.slot_time.getTime()))
    throw new InvalidResultError(i, 'slot_time', 'required', 'missing');
  if (r.attempts > INT4_MAX)
    throw new InvalidResultError(i, 'attempts', 'range', `out of range (0 to ${INT4_MAX})`);
  if (r.close_code !== undefined && r.close_code > 65_535)
    throw new InvalidResultError(i, 'close_code', 'range', 'out of range (0 to 65535)');
  for (const field of ['started_time', 'tls_not_after'] as const) {
    const ms = r[field]?.getTime();
    if (ms !== undefined && !(ms >= MIN_TIME_MS && ms < MAX_TIME_MS))
      throw new InvalidResultError(i, field, 'range', 'out of range (years 1 to 9999)');
  }
  // PostgreSQL's text cannot hold NUL; a protobuf string can.
  for (const field of ['reason', 'cause', 'category'] as const) {
    if (r[field].includes('\0')) throw new InvalidResultError(i, field, 'text', 'contains a NUL byte');
  }
  const json = r.result_json;
  let at = 0;
  // JSON whitespace: space, tab, line feed, carriage return.
  while (
    at < json.length &&
    (json[at] === 0x20 || json[at] === 0x09 || json[at] === 0x0a || json[at] === 0x0d)
  )
    at++;
  if (json[at] !== 0x7b) throw new InvalidResultError(i, 'result_json', 'json_object', 'not a JSON object');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The first result whose document PostgreSQL cannot have taken: not UTF-8, or not JSON. */
function invalidDocument(results: readonly AgentResult[]): InvalidResultError | undefined {
  for (let i = 0; i < results.length; i++) {
    let text: string;
    try {
      text = utf8.decode(results[i]!.result_json);
    } catch {
      return new InvalidResultError(i, 'result_json', 'utf8', 'not valid UTF-8');
    }
    // PostgreSQL's text and json types cannot hold NUL, which JSON.parse would take inside a string.
    if (text.includes('\0')) return new InvalidResultError(i, 'result_json', 'utf8', 'contains a NUL byte');
    try {
      JSON.parse(text);
    } catch {
      return new InvalidResultError(i, 'result_json', 'json', 'not valid JSON');
    }
  }
  return undefined;
}

import {
  ResultOutcome,
  RunLocationStatus,
  type ConfigServiceServer,
  type Result,
  type Run,
} from '@wsmon/proto';
import type { ResultOutcome as Outcome } from '@wsmon/contracts';
import type { ApiKeysService } from '../auth/api-keys.service';
import { unary } from '../grpc/grpc-calls';
import { definedFields } from '../grpc/proto-json';
import type { RunLocationStatus as Status } from './run.entity';
import type { ResultResponse, ResultsService, RunResponse } from './results.service';

const OUTCOME_TO_JSON: Partial<Record<ResultOutcome, Outcome>> = {
  [ResultOutcome.RESULT_OUTCOME_SUCCESS]: 'success',
  [ResultOutcome.RESULT_OUTCOME_FAILURE]: 'failure',
};

const STATUS_TO_PROTO: Record<Status, RunLocationStatus> = {
  pending: RunLocationStatus.RUN_LOCATION_STATUS_PENDING,
  dispatched: RunLocationStatus.RUN_LOCATION_STATUS_DISPATCHED,
  no_agent: RunLocationStatus.RUN_LOCATION_STATUS_NO_AGENT,
  completed: RunLocationStatus.RUN_LOCATION_STATUS_COMPLETED,
};

const date = (iso: string | null): Date | undefined => (iso === null ? undefined : new Date(iso));

export const resultProto = (r: ResultResponse): Result => ({
  result_id: r.result_id,
  test_id: r.test_id,
  test_revision: r.test_revision,
  location: r.location ?? undefined,
  location_id: r.location_id,
  agent_id: r.agent_id,
  run_id: r.run_id ?? undefined,
  slot_time: new Date(r.slot_time),
  started_time: date(r.started_at),
  received_time: new Date(r.received_at),
  attempts: r.attempts,
  success: r.success,
  value: r.value ?? undefined,
  reason: r.reason ?? undefined,
  cause: r.cause ?? undefined,
  category: r.category ?? undefined,
  open_ms: r.open_ms ?? undefined,
  round_trip_ms: r.round_trip_ms ?? undefined,
  total_ms: r.total_ms,
  close_code: r.close_code ?? undefined,
  tls_not_after: date(r.tls_not_after),
  result: r.result,
});

export const runProto = (r: RunResponse): Run => ({
  id: r.id,
  test_id: r.test_id,
  test_revision: r.test_revision,
  create_time: new Date(r.created_at),
  requested_by: r.requested_by ?? undefined,
  done: r.done,
  locations: r.locations.map((l) => ({
    location: l.location ?? undefined,
    location_id: l.location_id,
    status: STATUS_TO_PROTO[l.status],
    agent_id: l.agent_id ?? undefined,
    result: l.result ? resultProto(l.result) : undefined,
  })),
});

/** The result and run operations of ConfigService: thin, over the service REST uses. */
export function resultsGrpcHandlers(
  results: ResultsService,
  apiKeys: ApiKeysService,
): Pick<ConfigServiceServer, 'listResults' | 'createRun' | 'getRun'> {
  return {
    listResults: unary(apiKeys, 'viewer', async (req) => {
      const page = await results.list(
        req.test_id,
        definedFields({
          from: req.from?.toISOString(),
          to: req.to?.toISOString(),
          location: req.location || undefined,
          agent: req.agent || undefined,
          // Unspecified means any; an unknown number is passed on and rejected by the schema.
          outcome:
            req.outcome === ResultOutcome.RESULT_OUTCOME_UNSPECIFIED
              ? undefined
              : (OUTCOME_TO_JSON[req.outcome] ?? req.outcome),
          page_size: req.page_size || undefined,
          page_token: req.page_token || undefined,
        }),
      );
      return { results: page.items.map(resultProto), next_page_token: page.next_page_token ?? '' };
    }),
    createRun: unary(apiKeys, 'editor', async (req, key) => ({
      run: runProto(await results.createRun(req.test_id, key.id)),
    })),
    getRun: unary(apiKeys, 'viewer', async (req) => ({
      run: runProto(await results.getRun(req.id, { wait_s: req.wait_s })),
    })),
  };
}

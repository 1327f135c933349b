import type {
  ConfigServiceServer,
  LatencyStats as LatencyStatsProto,
  TestSummary,
  WindowStats,
} from '@wsmon/proto';
import type { ApiKeysService } from '../auth/api-keys.service';
import { unary } from '../grpc/grpc-calls';
import { definedFields } from '../grpc/proto-json';
import { resultProto } from '../results/results.grpc';
import type { AggregationService } from './aggregation.service';
import type { LatencyStats, TestSummaryResponse, WindowStatsResponse } from './test-summary';

const optional = (value: number | null): number | undefined => value ?? undefined;

const latencyProto = (l: LatencyStats): LatencyStatsProto => ({
  count: l.count,
  p50: optional(l.p50),
  p90: optional(l.p90),
  p95: optional(l.p95),
  p99: optional(l.p99),
  max: optional(l.max),
});

const statsProto = (s: WindowStatsResponse): WindowStats => ({
  runs: s.runs,
  failures: s.failures,
  uptime_pct: optional(s.uptime_pct),
  handshake_ms: latencyProto(s.handshake_ms),
  round_trip_ms: latencyProto(s.round_trip_ms),
  failure_reasons: s.failure_reasons,
  failure_categories: s.failure_categories,
  close_codes: s.close_codes,
  closes: s.closes,
  abnormal_closes: s.abnormal_closes,
  abnormal_close_rate: optional(s.abnormal_close_rate),
  last_result: s.last_result ? resultProto(s.last_result) : undefined,
  series: s.series.map((p) => ({
    start_time: new Date(p.start_time),
    runs: p.runs,
    failures: p.failures,
    uptime_pct: optional(p.uptime_pct),
    handshake_ms: latencyProto(p.handshake_ms),
    round_trip_ms: latencyProto(p.round_trip_ms),
  })),
});

export const testSummaryProto = (s: TestSummaryResponse): TestSummary => ({
  test_id: s.test_id,
  window: s.window ?? undefined,
  from: new Date(s.from),
  to: new Date(s.to),
  step_s: s.step_s,
  latency_precision: s.latency_precision,
  overall: statsProto(s.overall),
  locations: s.locations.map((l) => ({
    location: l.location ?? undefined,
    location_id: l.location_id,
    stats: statsProto(l.stats),
  })),
});

/** The summary operation of ConfigService: thin, over the service REST uses. */
export function aggregationGrpcHandlers(
  aggregation: AggregationService,
  apiKeys: ApiKeysService,
): Pick<ConfigServiceServer, 'getTestSummary'> {
  return {
    getTestSummary: unary(apiKeys, 'viewer', async (req) => ({
      summary: testSummaryProto(
        await aggregation.summary(
          req.test_id,
          // Empty strings and absent timestamps are "not set", as the REST query leaves them out.
          definedFields({
            window: req.window || undefined,
            from: req.from?.toISOString(),
            to: req.to?.toISOString(),
            location: req.location || undefined,
          }),
        ),
      ),
    })),
  };
}

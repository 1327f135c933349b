import { counter, gauge, type MetricFamily } from '@wsmon/metrics';
import type { LastResult, RunKind, RunOutcome } from '../runs/probe-runner';
import type { SchedulerStats } from '../scheduler';
import type { SpoolStats } from '../spool/result-spool';
import { msToSeconds } from './probe-metrics';

/** The agent's state as `/metrics` reports it. */
export interface AgentMetricsSnapshot {
  readonly agentId: string;
  readonly version: string;
  /** The location of the current session; empty when not connected. */
  readonly location: string;
  readonly connected: boolean;
  readonly drained: boolean;
  readonly configRevision: number;
  readonly heldTests: number;
  readonly rejectedTests: number;
  readonly spool: SpoolStats;
  readonly runs: readonly { readonly kind: RunKind; readonly outcome: RunOutcome; readonly count: number }[];
  readonly inFlight: number;
  readonly freeSlots: number;
  readonly concurrency: number;
  readonly scheduler: SchedulerStats;
  readonly lastResults: readonly LastResult[];
}

const flag = (value: boolean) => (value ? 1 : 0);

/** The agent's own metric families (see `README.md` beside this file), in a stable order. */
export function agentMetricFamilies(s: AgentMetricsSnapshot): MetricFamily[] {
  const perTest = (value: (result: LastResult) => number) =>
    [...s.lastResults]
      .sort((a, b) => (a.testId < b.testId ? -1 : a.testId > b.testId ? 1 : 0))
      .map((result) => ({
        labels: { test_id: result.testId, test_name: result.name },
        value: value(result),
      }));
  return [
    gauge('wsmon_agent_info', 'The agent: its id, version and the location of its session', 1, {
      agent_id: s.agentId,
      version: s.version,
      location: s.location,
    }),
    gauge(
      'wsmon_agent_connected',
      'Whether a stream to the control plane is up (welcomed)',
      flag(s.connected),
    ),
    gauge(
      'wsmon_agent_drained',
      'Whether the agent is drained: it runs nothing until synchronised again',
      flag(s.drained),
    ),
    gauge(
      'wsmon_agent_config_revision',
      'The revision of the configuration last applied and acknowledged',
      s.configRevision,
    ),
    gauge('wsmon_agent_tests', 'Tests held (run on their schedules unless drained)', s.heldTests),
    gauge(
      'wsmon_agent_tests_rejected',
      'Tests of the current session the agent could not apply',
      s.rejectedTests,
    ),
    gauge(
      'wsmon_agent_spool_depth',
      'Results in the spool waiting for the control plane to acknowledge them',
      s.spool.depth,
    ),
    gauge('wsmon_agent_spool_bytes', 'Size of the spool on disk', s.spool.bytes),
    counter(
      'wsmon_agent_spool_dropped_total',
      'Results dropped from the full spool, oldest first, since its directory was created: lost for good',
      s.spool.droppedTotal,
    ),
    counter(
      'wsmon_agent_spool_corrupted_total',
      'Results lost to damaged spool files since its directory was created',
      s.spool.corruptedTotal,
    ),
    {
      name: 'wsmon_agent_probes_total',
      help: 'Runs by kind (scheduled, on_demand) and outcome (success, failure, abandoned by a drain or shutdown, error recording it)',
      type: 'counter',
      samples: s.runs.map(({ kind, outcome, count }) => ({ labels: { kind, outcome }, value: count })),
    },
    gauge('wsmon_agent_probes_in_flight', 'Runs in flight, scheduled and on-demand', s.inFlight),
    gauge(
      'wsmon_agent_free_slots',
      'Runs that could start now: the concurrency limit minus those in flight',
      s.freeSlots,
    ),
    gauge('wsmon_agent_concurrency', 'The concurrency limit (WSMON_AGENT_CONCURRENCY)', s.concurrency),
    {
      name: 'wsmon_agent_scheduler_skipped_slots_total',
      help: 'Slots not run: the previous run still going (overlap), still waiting for a free slot (capacity), or a stalled timer (missed)',
      type: 'counter',
      samples: [
        { labels: { reason: 'overlap' }, value: s.scheduler.skippedOverlap },
        { labels: { reason: 'capacity' }, value: s.scheduler.skippedCapacity },
        { labels: { reason: 'missed' }, value: s.scheduler.missedSlots },
      ],
    },
    {
      name: 'wsmon_agent_test_last_success',
      help: 'Whether the last scheduled run of the test succeeded',
      type: 'gauge',
      samples: perTest((result) => flag(result.success)),
    },
    {
      name: 'wsmon_agent_test_last_duration_seconds',
      help: 'How long the last scheduled run of the test took (its reported attempt)',
      type: 'gauge',
      samples: perTest((result) => msToSeconds(result.durationMs)),
    },
    {
      name: 'wsmon_agent_test_last_run_timestamp_seconds',
      help: 'When the last scheduled run of the test started (its reported attempt), unix seconds',
      type: 'gauge',
      samples: perTest((result) => result.timestampMs / 1000),
    },
  ];
}

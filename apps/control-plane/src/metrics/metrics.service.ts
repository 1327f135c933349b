import { Inject, Injectable } from '@nestjs/common';
import { counter, gauge, histogram, writeExposition, type MetricFamily, type Sample } from '@wsmon/metrics';
import pkg from '../../package.json';
import { AgentSessionsService } from '../agents/agent-sessions.service';
import { agentLivenessMs } from '../agents/agents.repository';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { MetricsRepository, type LatestResultRow, type LocationHealthRow } from './metrics.repository';

/** This replica's own counters, as `AgentSessionsService` keeps them. */
export type ReplicaCounters = AgentSessionsService['counters'];

/** Everything one scrape reports, gathered before any text is written. */
export interface MetricsSnapshot {
  readonly replicaId: string;
  readonly version: string;
  readonly latest: readonly LatestResultRow[];
  readonly locations: readonly LocationHealthRow[];
  readonly localStreams: number;
  readonly counters: ReplicaCounters;
}

const seconds = (ms: number) => Math.round(ms * 1000) / 1e6;

/**
 * The probe families of the latest result of every (test, location), named as the agent's `/probe` and
 * blackbox_exporter name them, labelled `test`, `test_id` and `location`. A measurement that did not
 * happen (no open, no round trip, no certificate) is left out rather than reported as 0.
 */
export function latestResultFamilies(rows: readonly LatestResultRow[]): MetricFamily[] {
  const family = (
    name: string,
    help: string,
    value: (row: LatestResultRow) => number | null,
    extra?: (row: LatestResultRow) => Record<string, string>,
  ): MetricFamily => ({
    name,
    help,
    type: 'gauge',
    samples: rows.flatMap((row): Sample[] => {
      const v = value(row);
      if (v === null) return [];
      return [
        {
          labels: { test: row.test_name, test_id: row.test_id, location: row.location, ...extra?.(row) },
          value: v,
        },
      ];
    }),
  });
  return [
    family('probe_success', 'Displays whether or not the probe was a success', (r) => (r.success ? 1 : 0)),
    family('probe_websocket_up', 'Displays whether the WebSocket connection was successful', (r) =>
      r.open_ms === null ? 0 : 1,
    ),
    family(
      'probe_websocket_connection_duration_seconds',
      'Duration of the WebSocket connection establishment',
      (r) => (r.open_ms === null ? null : seconds(r.open_ms)),
    ),
    family('probe_duration_seconds', 'Returns how long the probe took to complete in seconds', (r) =>
      seconds(r.total_ms),
    ),
    family(
      'probe_wsmon_round_trip_seconds',
      'First round trip after the WebSocket opened: the reply to the first message, else the pong to the first ping',
      (r) => (r.round_trip_ms === null ? null : seconds(r.round_trip_ms)),
    ),
    family('probe_ssl_earliest_cert_expiry', 'Returns earliest SSL cert expiry date', (r) =>
      r.tls_not_after_s === null ? null : Math.floor(r.tls_not_after_s),
    ),
    family(
      'probe_wsmon_failure_info',
      "Why the latest result failed: wsmon's reason, finer cause and category",
      (r) => (r.success ? null : 1),
      (r) => ({ reason: r.reason ?? '', cause: r.cause ?? '', category: r.category ?? '' }),
    ),
    family(
      'probe_wsmon_last_result_timestamp_seconds',
      'The slot of the latest result, unix seconds: how fresh the other probe gauges are',
      (r) => r.slot_s,
    ),
  ];
}

/** The control plane's own families: agents and tests per location (all replicas), this replica's streams and ingest. */
export function controlPlaneFamilies(s: MetricsSnapshot): MetricFamily[] {
  const perLocation = (value: (row: LocationHealthRow) => number): Sample[] =>
    s.locations.map((row) => ({ labels: { location: row.location }, value: value(row) }));
  return [
    gauge('wsmon_control_plane_info', 'The control plane replica answering: its id and version', 1, {
      replica_id: s.replicaId,
      version: s.version,
    }),
    {
      name: 'wsmon_control_plane_location_agents',
      help: 'Agents of the location connected with a fresh heartbeat and not drained, on any replica',
      type: 'gauge',
      samples: perLocation((row) => row.connected_agents),
    },
    {
      name: 'wsmon_control_plane_location_tests',
      help: 'Enabled tests that run from the location',
      type: 'gauge',
      samples: perLocation((row) => row.enabled_tests),
    },
    gauge('wsmon_control_plane_agent_streams', 'Agent streams open on this replica', s.localStreams),
    counter(
      'wsmon_control_plane_agent_streams_opened_total',
      'Agent streams this replica accepted (token valid)',
      s.counters.streamsOpened,
    ),
    {
      name: 'wsmon_control_plane_agent_stream_errors_total',
      help: 'Agent streams that ended other than by the agent closing: the gRPC status this replica ended them with, CANCELLED when the agent or the network broke off, UNAUTHENTICATED for a refused token',
      type: 'counter',
      samples: [...s.counters.streamErrors]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([code, value]) => ({ labels: { code }, value })),
    },
    counter(
      'wsmon_control_plane_results_ingested_total',
      'Results from agents committed by this replica (a result sent again is counted again, stored once)',
      s.counters.resultsIngested,
    ),
    histogram(
      'wsmon_control_plane_ingest_lag_seconds',
      "Seconds from a result's slot until this replica committed it: probe time, batching, and any time spent in an agent's spool",
      s.counters.ingestLagSeconds,
    ),
  ];
}

/** `/metrics`: a snapshot of the database's latest results and this replica's state, as exposition text. */
@Injectable()
export class MetricsService {
  /** Concurrent scrapes share one pair of queries. */
  private inFlight: Promise<string> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repository: MetricsRepository,
    private readonly sessions: AgentSessionsService,
  ) {}

  exposition(): Promise<string> {
    this.inFlight ??= this.render().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async render(): Promise<string> {
    const [latest, locations] = await Promise.all([
      this.repository.latestResults(),
      // Liveness as the assignment judges it: three heartbeat intervals.
      this.repository.locationHealth(agentLivenessMs(this.config.agentHeartbeatMs)),
    ]);
    const snapshot: MetricsSnapshot = {
      replicaId: this.sessions.replicaId,
      version: pkg.version,
      latest,
      locations,
      localStreams: this.sessions.localStreams().filter((stream) => stream.open).length,
      counters: this.sessions.counters,
    };
    return writeExposition([...latestResultFamilies(latest), ...controlPlaneFamilies(snapshot)]);
  }
}

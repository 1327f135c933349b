import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { ProbeResult } from '@wsmon/contracts';
import type { Probe } from '../src/index';

/** One probe's outcome: the handshake time it measured (ms), or why it failed. */
export type ProbeOutcome =
  { ok: true; openMs: number; roundTripMs: number | null } | { ok: false; error: string };

/** Runs one probe; never rejects. */
export type ProbeFn = () => Promise<ProbeOutcome>;

export interface RoundLimits {
  /** At most this many probes are started... */
  readonly maxProbes: number;
  /** ...and none after this many ms; the round ends when the probes in flight have finished. */
  readonly maxMs: number;
  readonly concurrency: number;
}

export interface RoundResult {
  readonly completed: number;
  readonly failed: number;
  readonly elapsedMs: number;
  /** Successful probes per second over the whole round. */
  readonly rate: number;
  /** CPU time (user + system) this process spent per probe, in µs: the client's own cost. */
  readonly cpuUsPerProbe: number;
  readonly openMs: number[];
  readonly roundTripMs: number[];
  readonly errors: string[];
}

/** Keeps the first few distinct failure messages for the report. */
const MAX_ERRORS_KEPT = 5;

/**
 * Runs `probe` with `concurrency` workers until `maxProbes` have started or `maxMs` has passed, whichever
 * comes first. Each probe carries its own timeout, so a round lasts at most maxMs plus one probe timeout.
 */
export async function runRound(probe: ProbeFn, limits: RoundLimits): Promise<RoundResult> {
  const openMs: number[] = [];
  const roundTripMs: number[] = [];
  const errors: string[] = [];
  let started = 0;
  let completed = 0;
  let failed = 0;
  const cpuStart = process.cpuUsage();
  const startMs = performance.now();
  const deadlineMs = startMs + limits.maxMs;
  const worker = async () => {
    while (started < limits.maxProbes && performance.now() < deadlineMs) {
      started++;
      const outcome = await probe();
      if (outcome.ok) {
        completed++;
        openMs.push(outcome.openMs);
        if (outcome.roundTripMs !== null) roundTripMs.push(outcome.roundTripMs);
      } else {
        failed++;
        if (errors.length < MAX_ERRORS_KEPT && !errors.includes(outcome.error)) errors.push(outcome.error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limits.concurrency) }, worker));
  const elapsedMs = performance.now() - startMs;
  const cpu = process.cpuUsage(cpuStart);
  return {
    completed,
    failed,
    elapsedMs,
    rate: (completed / elapsedMs) * 1000,
    cpuUsPerProbe: (cpu.user + cpu.system) / Math.max(1, completed + failed),
    openMs,
    roundTripMs,
    errors,
  };
}

// ---------- the raw ws loops: the least a client can do for the same measurement ----------

/**
 * new WebSocket(url) -> 'open': close(1000) -> 'close': done. The handshake time is taken from just
 * before the constructor to the 'open' event. The guard timer is the one thing a bounded loop must add.
 */
export function rawHandshake(url: string, timeoutMs: number): ProbeFn {
  return () =>
    new Promise<ProbeOutcome>((resolve) => {
      const startMs = performance.now();
      let openMs: number | null = null;
      let error: string | null = null;
      const ws = new WebSocket(url);
      const guard = setTimeout(() => {
        error = `raw handshake probe timed out after ${timeoutMs} ms`;
        ws.terminate();
      }, timeoutMs);
      ws.on('error', (e: Error) => {
        error ??= `raw: ${e.message}`;
      });
      ws.on('open', () => {
        openMs = performance.now() - startMs;
        ws.close(1000);
      });
      ws.on('close', (code: number) => {
        clearTimeout(guard);
        if (error === null && openMs !== null && code === 1000)
          resolve({ ok: true, openMs, roundTripMs: null });
        else resolve({ ok: false, error: error ?? `raw: closed with ${code} before/after open` });
      });
    });
}

/** As {@link rawHandshake}, with one message sent on open and its echo awaited before the close. */
export function rawRoundTrip(url: string, message: string, timeoutMs: number): ProbeFn {
  return () =>
    new Promise<ProbeOutcome>((resolve) => {
      const startMs = performance.now();
      let openMs: number | null = null;
      let sentMs = 0;
      let roundTripMs: number | null = null;
      let error: string | null = null;
      const ws = new WebSocket(url);
      const guard = setTimeout(() => {
        error = `raw round-trip probe timed out after ${timeoutMs} ms`;
        ws.terminate();
      }, timeoutMs);
      ws.on('error', (e: Error) => {
        error ??= `raw: ${e.message}`;
      });
      ws.on('open', () => {
        openMs = performance.now() - startMs;
        sentMs = performance.now();
        ws.send(message);
      });
      ws.on('message', (data: WebSocket.RawData) => {
        if (roundTripMs !== null) return;
        roundTripMs = performance.now() - sentMs;
        if (!rawText(data).includes(message)) error = 'raw: the echo did not contain the message';
        ws.close(1000);
      });
      ws.on('close', (code: number) => {
        clearTimeout(guard);
        if (error === null && openMs !== null && roundTripMs !== null && code === 1000) {
          resolve({ ok: true, openMs, roundTripMs });
        } else {
          resolve({ ok: false, error: error ?? `raw: closed with ${code} before the echo` });
        }
      });
    });
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

// ---------- the engine ----------

/** One `probe.run()`; its own timings are the measurement. A result that is not a success is a failure. */
export function engineRun(probe: Probe, needsRoundTrip: boolean): ProbeFn {
  return async () => {
    let result: ProbeResult;
    try {
      result = await probe.run();
    } catch (error) {
      return { ok: false, error: `engine threw: ${error instanceof Error ? error.message : String(error)}` };
    }
    const { open_ms: openMs, round_trip_ms: roundTripMs } = result.timings;
    if (!result.success) {
      return {
        ok: false,
        error: `engine: ${result.failure?.reason ?? '?'}: ${result.failure?.message ?? ''}`,
      };
    }
    if (openMs === null) return { ok: false, error: 'engine: success without timings.open_ms' };
    if (needsRoundTrip && roundTripMs === null) {
      return { ok: false, error: 'engine: success without timings.round_trip_ms' };
    }
    return { ok: true, openMs, roundTripMs };
  };
}

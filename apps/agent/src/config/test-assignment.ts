import {
  parseInput,
  parseProbeConfig,
  retryPolicySchema,
  scheduleSchema,
  type ConfigFieldError,
  type ProbeConfig,
  type RetryPolicy,
  type Schedule,
} from '@wsmon/contracts';
import { createProbe, type Probe, type ProbeRuntime } from '@wsmon/probe';
import type { TestAssignment, TestRejection } from '@wsmon/proto/agent';
import type { ScheduledTest } from '../scheduler';

/** A test the agent holds and runs: an assignment checked by the shared schema, its probe compiled. */
export interface HeldTest extends ScheduledTest {
  readonly id: string;
  readonly revision: number;
  readonly name: string;
  readonly schedule: Schedule;
  readonly retry: RetryPolicy;
  readonly probe: Probe;
  /** The assignment as the control plane sent it, for the kept configuration. SECRET-BEARING. */
  readonly assignment: TestAssignment;
}

/** A probe (and retry policy) to run once, for RunNow: no schedule needed. */
export type RunnableCheck =
  | { readonly ok: true; readonly config: ProbeConfig; readonly retry: RetryPolicy }
  | { readonly ok: false; readonly errors: readonly ConfigFieldError[] };

export type AssignmentCheck =
  { readonly ok: true; readonly test: HeldTest } | { readonly ok: false; readonly rejection: TestRejection };

/** A rejection message stays short: it is for a person reading the agents API. */
const MAX_MESSAGE_CHARS = 1000;
/** Strings shorter than this are not scrubbed from messages: too short to be a secret, too common to hide. */
const MIN_SCRUBBED_CHARS = 4;

/**
 * Validates a test's probe and retry policy with the shared schemas (libs/contracts), defaults
 * applied. Errors name the field, prefixed `probe.` or `retry.`, and never carry a value.
 */
export function checkRunnable(assignment: TestAssignment): RunnableCheck {
  const errors: ConfigFieldError[] = [];
  const probe = parseProbeConfig(assignment.probe ?? undefined);
  if (!probe.ok) errors.push(...prefixed('probe', probe.errors));
  const retry = parseInput(retryPolicySchema, definedFields(assignment.retry ?? {}));
  if (!retry.ok) errors.push(...prefixed('retry', retry.errors));
  if (!probe.ok || !retry.ok) return { ok: false, errors: scrubbed(errors, assignment.probe) };
  return { ok: true, config: probe.value, retry: retry.value };
}

/**
 * Turns an assignment into a held test, or into the rejection the ConfigAck carries: every field
 * error of the probe, the schedule and the retry policy, worded by the shared schema, with any
 * string of the probe configuration (which may be a secret) taken out of the message.
 */
export function checkAssignment(assignment: TestAssignment, runtime?: ProbeRuntime): AssignmentCheck {
  const runnable = checkRunnable(assignment);
  const errors = runnable.ok ? [] : [...runnable.errors];
  const schedule =
    assignment.schedule === undefined
      ? ({
          ok: false,
          errors: [{ path: 'schedule', rule: 'required', message: 'schedule: is required' }],
        } as const)
      : parseInput(scheduleSchema, definedFields(assignment.schedule));
  if (!schedule.ok) errors.push(...prefixed('schedule', schedule.errors));
  if (!runnable.ok || !schedule.ok) {
    return {
      ok: false,
      rejection: {
        test_id: assignment.test_id,
        test_revision: assignment.revision,
        message: truncate(
          scrubbed(errors, assignment.probe)
            .map((error) => error.message)
            .join('; '),
        ),
      },
    };
  }
  return {
    ok: true,
    test: {
      id: assignment.test_id,
      revision: assignment.revision,
      name: assignment.name,
      schedule: schedule.value,
      retry: runnable.retry,
      probe: createProbe(runnable.config, runtime),
      assignment,
    },
  };
}

function prefixed(field: string, errors: readonly ConfigFieldError[]): ConfigFieldError[] {
  return errors.map((error) => {
    const path = error.path === '(root)' ? field : `${field}.${error.path}`;
    const message = error.message.startsWith(`${error.path}: `)
      ? `${path}: ${error.message.slice(error.path.length + 2)}`
      : `${path}: ${error.message}`;
    return { path, rule: error.rule, message };
  });
}

/**
 * The schema's messages name fields and rules, but a few quote what they reject (an invalid regular
 * expression, a subprotocol): every string of the probe configuration that appears in a message is
 * replaced, and no error keeps its `value`.
 */
function scrubbed(errors: readonly ConfigFieldError[], probe: unknown): ConfigFieldError[] {
  const strings = [...stringsOf(probe)]
    .filter((text) => text.length >= MIN_SCRUBBED_CHARS)
    .sort((a, b) => b.length - a.length);
  return errors.map(({ path, rule, message }) => {
    let text = message;
    for (const secret of strings) text = text.split(secret).join('<value>');
    return { path, rule, message: text };
  });
}

/** Fields whose values are words of the schema (enums), which its messages list: never secret. */
const ENUM_FIELDS = new Set([
  'interpretation',
  'ping_mode',
  'ip_version',
  'type',
  'operator',
  'property',
  'initiator',
]);

function* stringsOf(value: unknown, depth = 0): Generator<string> {
  if (depth > 32) return;
  if (typeof value === 'string') {
    yield value;
  } else if (Array.isArray(value)) {
    for (const item of value) yield* stringsOf(item, depth + 1);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (!(ENUM_FIELDS.has(key) && typeof item === 'string')) yield* stringsOf(item, depth + 1);
    }
  }
}

function truncate(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : message;
}

/** Proto optionals decode as present-but-undefined keys; the schemas want them absent. */
function definedFields(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined));
}

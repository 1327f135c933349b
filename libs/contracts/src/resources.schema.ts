import { validate as isValidCron } from 'node-cron';
import { z } from 'zod';
import { RULE_PARAM, formatPath, toFieldErrors, type ParseOutcome } from './config-errors';
import { probeConfigSchema } from './probe-config.schema';
import { custom, instant, slug, tag, uniqueList } from './schema-parts';

/**
 * The resources of the control plane as every API takes them (REST bodies, gRPC messages, the
 * CLI's files). One schema each: REST, gRPC and the CLI cannot drift apart.
 */

export { NAME_SLUG, TAG } from './schema-parts';

// ---------- locations ----------

export const LOCATION_KINDS = ['private', 'managed'] as const;
export type LocationKind = (typeof LOCATION_KINDS)[number];

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_.\/-]{0,62}[A-Za-z0-9])?$/;
const labelsSchema = z
  .record(z.string().regex(LABEL_KEY, 'must be a label key'), z.string().max(256))
  .superRefine((labels, ctx) => {
    if (Object.keys(labels).length > 64) custom(ctx, [], 'max_items', 'must have at most 64 labels');
  });

const locationFields = {
  name: slug('location name'),
  kind: z.enum(LOCATION_KINDS),
  region: z.string().min(1).max(64),
  labels: labelsSchema,
};

export const locationInputSchema = z.strictObject({
  ...locationFields,
  kind: locationFields.kind.default('private'),
  region: locationFields.region.optional(),
  labels: locationFields.labels.default({}),
});
export type LocationInput = z.output<typeof locationInputSchema>;

/** A partial update: only the fields given change; nothing falls back to a default. */
export const locationPatchSchema = z.strictObject({
  name: locationFields.name.optional(),
  kind: locationFields.kind.optional(),
  region: locationFields.region.nullable().optional(),
  labels: locationFields.labels.optional(),
});
export type LocationPatch = z.output<typeof locationPatchSchema>;

// ---------- tests ----------

/** Intervals from one second to one week, as the plain alternative to cron. */
export const INTERVAL_S = { min: 1, max: 7 * 24 * 3600 } as const;

/** Cron with an optional leading seconds field: `*\/30 * * * * *`, `0 *\/5 * * * *`, `@hourly`. */
const cronSchema = z
  .string()
  // A cron that is empty or too long is reported once, by its length, not again as "not a cron".
  .min(1, { abort: true })
  .max(200, { abort: true })
  .refine((cron) => isValidCron(cron), {
    message: 'is not a valid cron expression (5 or 6 fields, seconds first when 6)',
    params: { [RULE_PARAM]: 'cron' },
  });

export const scheduleSchema = z
  .strictObject({
    cron: cronSchema.optional(),
    interval_s: z.number().int().min(INTERVAL_S.min).max(INTERVAL_S.max).optional(),
  })
  .superRefine((schedule, ctx) => {
    if ((schedule.cron === undefined) === (schedule.interval_s === undefined)) {
      custom(ctx, [], 'one_of', 'must have exactly one of cron or interval_s');
    }
  });
export type Schedule = z.output<typeof scheduleSchema>;

const retryFields = {
  /** Extra attempts before a failure is recorded: a blip is retried, an outage is not hidden. */
  attempts: z.number().int().min(0).max(5),
  delay_ms: z.number().int().min(0).max(60_000),
};
export const retryPolicySchema = z.strictObject({
  attempts: retryFields.attempts.default(0),
  delay_ms: retryFields.delay_ms.default(1000),
});
export type RetryPolicy = z.output<typeof retryPolicySchema>;

export const alertRuleSchema = z.strictObject({
  /** The test alerts when at least this many of its locations fail... */
  min_failing_locations: z.number().int().min(1).max(1000).default(1),
  /** ...for at least this many minutes. */
  for_minutes: z.number().int().min(1).max(1440).default(5),
});
export type AlertRule = z.output<typeof alertRuleSchema>;

const testFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000),
  tags: uniqueList(tag, 50),
  enabled: z.boolean(),
  probe: probeConfigSchema,
  schedule: scheduleSchema,
  /** Names of the locations the test runs from. */
  locations: uniqueList(slug('location name'), 200).min(1),
  retry: retryPolicySchema,
  alert: alertRuleSchema,
};

export const testInputSchema = z.strictObject({
  ...testFields,
  description: testFields.description.default(''),
  tags: testFields.tags.default([]),
  enabled: testFields.enabled.default(true),
  retry: testFields.retry.default({ attempts: 0, delay_ms: 1000 }),
  alert: testFields.alert.default({ min_failing_locations: 1, for_minutes: 5 }),
});
export type TestInput = z.output<typeof testInputSchema>;

/** A partial update. `probe`, `schedule`, `retry` and `alert` are replaced whole when given. */
export const testPatchSchema = z.strictObject({
  name: testFields.name.optional(),
  description: testFields.description.optional(),
  tags: testFields.tags.optional(),
  enabled: testFields.enabled.optional(),
  probe: testFields.probe.optional(),
  schedule: testFields.schedule.optional(),
  locations: testFields.locations.optional(),
  retry: testFields.retry.optional(),
  alert: testFields.alert.optional(),
});
export type TestPatch = z.output<typeof testPatchSchema>;

// ---------- secrets, access ----------

/**
 * Field schemas whose rejected values {@link parseInput} never echoes. The path-based redaction of
 * {@link toFieldErrors} cannot tell a secret's `value` from any other `value`; the schema can, wherever
 * it is reused (`z.strictObject({ value: secretInputSchema.shape.value })` for an update).
 */
const unechoedFields = new WeakSet<z.ZodType>();
const unechoed = <T extends z.ZodType>(schema: T): T => {
  unechoedFields.add(schema);
  return schema;
};

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const secretInputSchema = z.strictObject({
  name: z
    .string()
    .regex(SECRET_NAME, 'must be a secret name: letters, digits and _, not starting with a digit'),
  /** The secret itself: never echoed in an error. */
  value: unechoed(z.string().min(1).max(65_536)),
});
export type SecretInput = z.output<typeof secretInputSchema>;

export const ROLES = ['admin', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const apiKeyInputSchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  role: z.enum(ROLES),
});
export type ApiKeyInput = z.output<typeof apiKeyInputSchema>;

export const agentTokenInputSchema = z.strictObject({
  name: z.string().trim().min(1).max(100).default('agent token'),
  /** When the token stops authenticating (RFC 3339 with an offset); absent: never. Must lie ahead. */
  expires_at: z.iso
    .datetime({ offset: true })
    .refine((v) => Date.parse(v) > Date.now(), 'must be in the future')
    .optional(),
});
export type AgentTokenInput = z.output<typeof agentTokenInputSchema>;

// ---------- lists ----------

/**
 * REST query parameters are strings: a decimal string becomes its number. Anything else is left as it
 * came, so `abc` is reported (and echoed) as `abc` rather than as NaN, and `true`, `null` or an empty
 * parameter are not quietly read as 1 or 0.
 */
const DECIMAL = /^[+-]?\d+(\.\d+)?$/;
const queryNumber = (value: unknown) =>
  typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;

export const listQuerySchema = z.strictObject({
  page_size: z.preprocess(queryNumber, z.number().int().min(1).max(200)).default(50),
  /** Opaque cursor from the previous page's `next_page_token`. */
  page_token: z.string().max(512).optional(),
});

export const testListQuerySchema = listQuerySchema.extend({
  tag: tag.optional(),
  location: slug('location name').optional(),
  enabled: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  /** Case-insensitive text in the name or the description. */
  q: z.string().min(1).max(200).optional(),
});
export type TestListQuery = z.output<typeof testListQuerySchema>;

// ---------- results and runs ----------

export const RESULT_OUTCOMES = ['success', 'failure'] as const;
export type ResultOutcome = (typeof RESULT_OUTCOMES)[number];

/** A test's results: slots in [from, to), by default the last 24 hours; newest first. */
export const resultListQuerySchema = listQuerySchema
  .extend({
    /** Inclusive. Default: 24 hours before `to`. */
    from: instant.optional(),
    /** Exclusive. Default: now. */
    to: instant.optional(),
    /** Only results from the location with this name. */
    location: slug('location name').optional(),
    /** Only results of this agent (its `agent_id`). */
    agent: z.string().min(1).max(128).optional(),
    outcome: z.enum(RESULT_OUTCOMES).optional(),
  })
  .superRefine((query, ctx) => {
    if (
      query.from !== undefined &&
      query.to !== undefined &&
      Date.parse(query.from) >= Date.parse(query.to)
    ) {
      custom(ctx, ['to'], 'after_from', 'must be later than from');
    }
  });
export type ResultListQuery = z.output<typeof resultListQuerySchema>;

/** Longest a client may ask `GET /runs/{id}` to wait for every location to finish. */
export const RUN_WAIT_S = { min: 0, max: 60 } as const;

export const runGetQuerySchema = z.strictObject({
  /** Seconds to wait until every location has completed (or has no agent); 0 answers at once. */
  wait_s: z.preprocess(queryNumber, z.number().int().min(RUN_WAIT_S.min).max(RUN_WAIT_S.max)).default(0),
});
export type RunGetQuery = z.output<typeof runGetQuerySchema>;

// ---------- parsing ----------

/** A field's schema without the wrappers a reuse may add: `.optional()`, `.nullable()`, `.default()`. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable || inner instanceof z.ZodDefault) {
    inner = inner.unwrap() as z.ZodType;
  }
  return inner;
}

/**
 * Whether an error at `path` may echo its value: not when it is in (or is) an unechoed field, nor at the
 * root of an object holding one (a bare string body may be the secret itself).
 */
function echoPolicy(schema: z.ZodType): (path: string) => boolean {
  const target = unwrapped(schema);
  if (unechoedFields.has(target)) return () => false;
  if (!(target instanceof z.ZodObject)) return () => true;
  const hidden = Object.entries(target.shape as Record<string, z.ZodType>)
    .filter(([, field]) => unechoedFields.has(unwrapped(field)))
    .map(([key]) => formatPath([key]));
  if (hidden.length === 0) return () => true;
  return (path) =>
    path !== formatPath([]) &&
    !hidden.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
}

/** Validates any resource input with its schema; every error names the field and the rule. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): ParseOutcome<z.output<S>> {
  const parsed = schema.safeParse(input, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };
  const mayEcho = echoPolicy(schema);
  const errors = toFieldErrors(parsed.error.issues).map(({ value, ...error }) =>
    value !== undefined && mayEcho(error.path) ? { ...error, value } : error,
  );
  return { ok: false, errors };
}

import { readFileSync } from 'node:fs';
import { parseProbeConfig, TIMEOUT_MS, type ProbeConfig } from '@wsmon/contracts';

/**
 * Probe modules, as blackbox_exporter calls them: named probe configurations kept in a local file,
 * chosen by `/probe?module=NAME`. A module is a probe configuration of the shared schema whose `url`
 * may be left out: the request's `target` supplies it (and overrides it when both are given).
 */
export interface ProbeModule {
  readonly name: string;
  /** The configuration as written (checked once at load); validated again with the target per request. */
  readonly input: Readonly<Record<string, unknown>>;
}

export type ProbeModules = ReadonlyMap<string, ProbeModule>;

/** The module used when a request names none: a plain handshake probe, as in seed 004. */
export const DEFAULT_MODULE = 'ws_handshake';

/** Seconds taken off Prometheus' scrape timeout so the answer arrives in time (blackbox's default). */
export const DEFAULT_TIMEOUT_OFFSET_SECONDS = 0.5;

const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Stands in for the target while a module without `url` is checked: wss:// rejects nothing a module may set. */
const PLACEHOLDER_URL = 'wss://target.invalid/';

export class ProbeModulesError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid probe modules in ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ProbeModulesError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Only the built-in {@link DEFAULT_MODULE}: the agent's modules when no file is configured. */
export function defaultProbeModules(): ProbeModules {
  return new Map([[DEFAULT_MODULE, { name: DEFAULT_MODULE, input: {} }]]);
}

/**
 * Checks a parsed modules document, `{ "modules": { "NAME": { ...probe configuration } } }`, with the
 * shared schema and returns every module plus the built-in {@link DEFAULT_MODULE} unless the document
 * defines its own. Throws {@link ProbeModulesError} listing every problem; values that may be secret
 * are never echoed (the schema's errors leave them out).
 */
export function parseProbeModules(document: unknown, source: string): ProbeModules {
  if (!isObject(document) || !isObject(document.modules)) {
    throw new ProbeModulesError(source, ['must be an object with a "modules" object: { "modules": { … } }']);
  }
  const unknownKeys = Object.keys(document).filter((key) => key !== 'modules');
  const problems = unknownKeys.map((key) => `${key}: is not a known field`);
  const modules = new Map(defaultProbeModules());
  for (const [name, input] of Object.entries(document.modules)) {
    if (!MODULE_NAME.test(name)) {
      problems.push(
        `modules: ${JSON.stringify(name)} is not a module name (letters, digits, _ . -; at most 64)`,
      );
      continue;
    }
    if (!isObject(input)) {
      problems.push(`modules.${name}: must be an object holding a probe configuration`);
      continue;
    }
    const parsed = parseProbeConfig({ url: PLACEHOLDER_URL, ...input });
    if (!parsed.ok) {
      problems.push(...parsed.errors.map((e) => `modules.${name}.${e.message}`));
      continue;
    }
    modules.set(name, { name, input });
  }
  if (problems.length > 0) throw new ProbeModulesError(source, problems);
  return modules;
}

/**
 * Reads the modules file (JSON; JSON is also YAML 1.2, and no YAML parser is worth its weight in
 * the agent for this one file).
 */
export function loadProbeModules(
  path: string,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ProbeModules {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ProbeModulesError(path, [
      `cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ProbeModulesError(path, [`is not valid JSON (${(error as Error).message})`]);
  }
  return parseProbeModules(document, path);
}

/**
 * The probe's timeout: the module's, shortened to the scrape timeout Prometheus announces minus
 * `offsetSeconds`, so the answer arrives before Prometheus gives up; never under the schema's minimum.
 */
export function effectiveTimeoutMs(
  moduleTimeoutMs: number,
  scrapeTimeoutSeconds: number | undefined,
  offsetSeconds: number,
): number {
  if (scrapeTimeoutSeconds === undefined) return moduleTimeoutMs;
  const budgetMs = Math.floor((scrapeTimeoutSeconds - offsetSeconds) * 1000);
  return Math.max(TIMEOUT_MS.min, Math.min(moduleTimeoutMs, budgetMs));
}

export interface ProbeRequest {
  readonly module: string | null;
  readonly target: string | null;
  /** The raw `X-Prometheus-Scrape-Timeout-Seconds` header, when sent. */
  readonly scrapeTimeout: string | undefined;
}

export type ResolvedProbe =
  | {
      readonly ok: true;
      readonly module: ProbeModule;
      /** The validated configuration, its timeout already shortened to the scrape timeout. */
      readonly config: ProbeConfig;
      readonly moduleTimeoutMs: number;
    }
  | { readonly ok: false; readonly reason: string };

/** Turns `/probe` parameters into a configuration, or a reason for a 400 worded as blackbox words it. */
export function resolveProbeRequest(
  modules: ProbeModules,
  request: ProbeRequest,
  offsetSeconds = DEFAULT_TIMEOUT_OFFSET_SECONDS,
): ResolvedProbe {
  const name = request.module || DEFAULT_MODULE;
  const module = modules.get(name);
  if (!module) return { ok: false, reason: `Unknown module ${JSON.stringify(name)}` };

  let scrapeTimeoutSeconds: number | undefined;
  if (request.scrapeTimeout !== undefined) {
    scrapeTimeoutSeconds = Number(request.scrapeTimeout);
    if (
      request.scrapeTimeout.trim() === '' ||
      !Number.isFinite(scrapeTimeoutSeconds) ||
      scrapeTimeoutSeconds < 0
    ) {
      return {
        ok: false,
        reason: `Failed to parse timeout from Prometheus header: ${JSON.stringify(request.scrapeTimeout.slice(0, 40))} is not a number of seconds`,
      };
    }
    // 0 means no limit announced, as blackbox reads it.
    if (scrapeTimeoutSeconds === 0) scrapeTimeoutSeconds = undefined;
  }

  const target = request.target || undefined;
  if (target === undefined && module.input.url === undefined) {
    return { ok: false, reason: 'Target parameter is missing' };
  }
  const parsed = parseProbeConfig(target === undefined ? module.input : { ...module.input, url: target });
  if (!parsed.ok) {
    // The target stands in for the module's url: name it as the caller wrote it.
    const messages = parsed.errors.map((e) =>
      target !== undefined && e.path === 'url' ? `target${e.message.slice(3)}` : e.message,
    );
    return { ok: false, reason: `Invalid probe for module ${JSON.stringify(name)}: ${messages.join('; ')}` };
  }
  const moduleTimeoutMs = parsed.value.timeout_ms;
  const timeoutMs = effectiveTimeoutMs(moduleTimeoutMs, scrapeTimeoutSeconds, offsetSeconds);
  return {
    ok: true,
    module,
    config: { ...parsed.value, timeout_ms: timeoutMs },
    moduleTimeoutMs,
  };
}

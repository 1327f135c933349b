import { invalid } from '../common/errors';

/** Drops unset fields: proto3 optionals arrive as undefined, and the JSON schema wants them absent. */
export function definedFields<T extends Record<string, unknown>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * AIP-134: only the fields an update mask names change. The mask is required, so an update that
 * names nothing is an error rather than a silent no-op.
 */
export function maskedFields(
  fields: Record<string, unknown>,
  mask: readonly string[] | undefined,
  allowed: readonly string[],
  defaults: Record<string, unknown> = {},
): Record<string, unknown> {
  if (!mask?.length) throw invalid('update_mask', 'required', 'must name the fields to update');
  const patch: Record<string, unknown> = {};
  for (const [i, path] of mask.entries()) {
    if (!allowed.includes(path)) {
      throw invalid(
        `update_mask[${i}]`,
        'enum',
        `${JSON.stringify(path)} is not an updatable field (${allowed.join(', ')})`,
      );
    }
    // A masked field left unset in the message is reset: to its default, else cleared (null).
    patch[path] = fields[path] ?? defaults[path] ?? null;
  }
  return patch;
}

import { z } from 'zod';
import { RULE_PARAM } from './config-errors';

/**
 * Pieces the resource schemas share (resources, alerts, summaries): one rule, one message, wherever a
 * field of the kind appears. Not exported from the package: the schemas built of them are.
 */

/** A custom issue naming its rule, as `config-errors` reports it. */
export const custom = (ctx: z.RefinementCtx, path: PropertyKey[], rule: string, message: string) =>
  ctx.addIssue({ code: 'custom', path, message, params: { [RULE_PARAM]: rule } });

/** Location names are DNS-label-like slugs: they appear in metrics labels and URLs. */
export const NAME_SLUG = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const slug = (what: string) =>
  z.string().regex(NAME_SLUG, `must be a ${what}: lower-case letters, digits and dashes`);

/** A list of at most `max` items, none listed twice. */
export const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) =>
  z
    .array(item)
    .max(max)
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((value, i) => {
        if (seen.has(value)) custom(ctx, [i], 'unique', `${JSON.stringify(value)} is listed twice`);
        seen.add(value);
      });
    });

export const TAG = /^[A-Za-z0-9][A-Za-z0-9_.:\/=-]{0,62}$/;
export const tag = z.string().regex(TAG, 'must be a tag: letters, digits and _.:/=-');

/** An RFC 3339 time with its offset (`Z` or `+02:00`), as query parameters carry times. */
export const instant = z.iso.datetime({ offset: true });

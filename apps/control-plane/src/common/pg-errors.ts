/** PostgreSQL error codes the services turn into domain errors (races the checks cannot close). */
const pgCode = (error: unknown): string | undefined =>
  (error as { driverError?: { code?: string }; code?: string } | null)?.driverError?.code ??
  (error as { code?: string } | null)?.code;

export const isUniqueViolation = (error: unknown): boolean => pgCode(error) === '23505';
export const isForeignKeyViolation = (error: unknown): boolean => pgCode(error) === '23503';
/** An object created concurrently under the same name: a table (42P07), its row type (23505 in pg_type). */
export const isDuplicateObject = (error: unknown): boolean =>
  ['42P07', '23505'].includes(pgCode(error) ?? '');
/**
 * PostgreSQL refused a value's text: invalid syntax (22P02: JSON among others), invalid JSON text (22032),
 * an untranslatable character (22P05) or bytes that are not UTF-8 (22021).
 */
export const isInvalidText = (error: unknown): boolean =>
  ['22P02', '22032', '22P05', '22021'].includes(pgCode(error) ?? '');

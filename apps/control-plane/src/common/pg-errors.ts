/** PostgreSQL error codes the services turn into domain errors (races the checks cannot close). */
const pgCode = (error: unknown): string | undefined =>
  (error as { driverError?: { code?: string }; code?: string } | null)?.driverError?.code ??
  (error as { code?: string } | null)?.code;

export const isUniqueViolation = (error: unknown): boolean => pgCode(error) === '23505';
export const isForeignKeyViolation = (error: unknown): boolean => pgCode(error) === '23503';

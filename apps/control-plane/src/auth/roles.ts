import { SetMetadata } from '@nestjs/common';
import type { Role } from '@wsmon/contracts';

/** admin ⊃ editor ⊃ viewer. */
const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };

export const hasRole = (granted: Role, required: Role): boolean => RANK[granted] >= RANK[required];

export const REQUIRED_ROLE = 'wsmon:required-role';
export const PUBLIC = 'wsmon:public';

/** The least role a handler needs; every handler of the API names one. */
export const RequireRole = (role: Role) => SetMetadata(REQUIRED_ROLE, role);
/** Health endpoints and the API documentation need no key. */
export const Public = () => SetMetadata(PUBLIC, true);

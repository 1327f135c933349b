import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { apiKeyInputSchema, type Role } from '@wsmon/contracts';
import { ConflictError, NotFoundError, UnauthenticatedError } from '../common/errors';
import { validated } from '../common/validation';
import { ApiKeyEntity } from './api-key.entity';
import { ApiKeysRepository } from './api-keys.repository';
import { hashSecret, mintCredential, parseCredential, secretMatches } from './credentials';

export interface ApiKeyResponse {
  id: string;
  name: string;
  role: Role;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const toApiKeyResponse = (k: ApiKeyEntity): ApiKeyResponse => ({
  id: k.id,
  name: k.name,
  role: k.role,
  created_at: k.createdAt.toISOString(),
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

/** A key we minted splits into prefix and secret; a chosen one (WSMON_ADMIN_KEY) is found by its hash. */
function keyLookup(token: string): { prefix: string; secret: string } {
  return parseCredential(token, 'wsk') ?? { prefix: `x${hashSecret(token).slice(0, 11)}`, secret: token };
}

/** Recording every request as a write would double the database load: last use is kept per minute. */
const LAST_USED_RESOLUTION_MS = 60_000;

@Injectable()
export class ApiKeysService {
  constructor(private readonly keys: ApiKeysRepository) {}

  async create(body: unknown): Promise<{ api_key: ApiKeyResponse; key: string }> {
    const input = validated(apiKeyInputSchema, body);
    return this.mint(input.name, input.role);
  }

  async list(): Promise<ApiKeyResponse[]> {
    return (await this.keys.list()).map(toApiKeyResponse);
  }

  async revoke(id: string): Promise<ApiKeyResponse> {
    const key = await this.keys.find(id);
    if (!key) throw new NotFoundError('API key', id);
    if (key.revokedAt) return toApiKeyResponse(key);
    if (key.role === 'admin' && (await this.keys.countActiveAdmins()) <= 1) {
      throw new ConflictError('this is the last admin key: create another admin key before revoking it');
    }
    key.revokedAt = new Date();
    return toApiKeyResponse(await this.keys.save(key));
  }

  /** The role of a presented key, or UNAUTHENTICATED. */
  async authenticate(token: string | undefined): Promise<{ id: string; role: Role }> {
    const parsed = token === undefined ? undefined : keyLookup(token);
    const key = parsed && (await this.keys.findByPrefix(parsed.prefix));
    if (!parsed || !key || key.revokedAt || !secretMatches(parsed.secret, key.secretHash)) {
      throw new UnauthenticatedError('a valid API key is required (Authorization: Bearer <key>)');
    }
    const now = new Date();
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      await this.keys.touch(key.id, now);
    }
    return { id: key.id, role: key.role };
  }

  /**
   * On an empty database: the admin key from WSMON_ADMIN_KEY, or a new one, returned so it can
   * be printed once. Undefined when keys exist already.
   */
  async bootstrap(adminKey: string | undefined): Promise<{ key: string; generated: boolean } | undefined> {
    if ((await this.keys.count()) > 0) return undefined;
    if (adminKey === undefined) {
      const minted = await this.mint('bootstrap admin', 'admin');
      return { key: minted.key, generated: true };
    }
    const { prefix, secret } = keyLookup(adminKey);
    await this.keys.save(
      Object.assign(new ApiKeyEntity(), {
        id: randomUUID(),
        name: 'bootstrap admin',
        role: 'admin' as const,
        prefix,
        secretHash: hashSecret(secret),
        lastUsedAt: null,
        revokedAt: null,
      }),
    );
    return { key: adminKey, generated: false };
  }

  private async mint(name: string, role: Role): Promise<{ api_key: ApiKeyResponse; key: string }> {
    const minted = mintCredential('wsk');
    const key = await this.keys.save(
      Object.assign(new ApiKeyEntity(), {
        id: randomUUID(),
        name,
        role,
        prefix: minted.prefix,
        secretHash: minted.secretHash,
        lastUsedAt: null,
        revokedAt: null,
      }),
    );
    return { api_key: toApiKeyResponse(key), key: minted.token };
  }
}

import { LocationKind, type AgentToken, type ConfigServiceServer, type Location } from '@wsmon/proto';
import type { LocationKind as Kind } from '@wsmon/contracts';
import type { ApiKeysService } from '../auth/api-keys.service';
import { invalid } from '../common/errors';
import { unary } from '../grpc/grpc-calls';
import { definedFields, maskedFields } from '../grpc/proto-json';
import type { AgentTokenResponse, LocationResponse, LocationsService } from './locations.service';

const KIND_TO_JSON: Partial<Record<LocationKind, Kind>> = {
  [LocationKind.LOCATION_KIND_PRIVATE]: 'private',
  [LocationKind.LOCATION_KIND_MANAGED]: 'managed',
};
const KIND_TO_PROTO: Record<Kind, LocationKind> = {
  private: LocationKind.LOCATION_KIND_PRIVATE,
  managed: LocationKind.LOCATION_KIND_MANAGED,
};

function locationJson(location: Location | undefined): Record<string, unknown> {
  if (!location) throw invalid('location', 'required', 'is required');
  return definedFields({
    name: location.name,
    // UNSPECIFIED means "the default" on create; an unknown number is passed on and rejected.
    kind:
      location.kind === LocationKind.LOCATION_KIND_UNSPECIFIED
        ? undefined
        : (KIND_TO_JSON[location.kind] ?? location.kind),
    region: location.region,
    labels: location.labels,
  });
}

const locationProto = (l: LocationResponse): Location => ({
  id: l.id,
  name: l.name,
  kind: KIND_TO_PROTO[l.kind],
  region: l.region ?? undefined,
  labels: l.labels,
  create_time: new Date(l.created_at),
  update_time: new Date(l.updated_at),
});

const tokenProto = (t: AgentTokenResponse): AgentToken => ({
  id: t.id,
  location_id: t.location_id,
  name: t.name,
  create_time: new Date(t.created_at),
  last_used_time: t.last_used_at ? new Date(t.last_used_at) : undefined,
  revoke_time: t.revoked_at ? new Date(t.revoked_at) : undefined,
});

/** The location and agent-token operations of ConfigService. */
export function locationsGrpcHandlers(
  locations: LocationsService,
  apiKeys: ApiKeysService,
): Pick<
  ConfigServiceServer,
  | 'createLocation'
  | 'listLocations'
  | 'getLocation'
  | 'updateLocation'
  | 'deleteLocation'
  | 'createAgentToken'
  | 'listAgentTokens'
  | 'revokeAgentToken'
> {
  return {
    createLocation: unary(
      apiKeys,
      'editor',
      async (req) => ({ location: locationProto(await locations.create(locationJson(req.location))) }),
      'location',
    ),
    listLocations: unary(apiKeys, 'viewer', async (req) => {
      const page = await locations.list(
        definedFields({ page_size: req.page_size || undefined, page_token: req.page_token || undefined }),
      );
      return { locations: page.items.map(locationProto), next_page_token: page.next_page_token ?? '' };
    }),
    getLocation: unary(apiKeys, 'viewer', async (req) => ({
      location: locationProto(await locations.get(req.id)),
    })),
    updateLocation: unary(
      apiKeys,
      'editor',
      async (req) => {
        const patch = maskedFields(locationJson(req.location), req.update_mask, [
          'name',
          'kind',
          'region',
          'labels',
        ]);
        return { location: locationProto(await locations.update(req.location?.id ?? '', patch)) };
      },
      'location',
    ),
    deleteLocation: unary(apiKeys, 'editor', async (req) => {
      await locations.delete(req.id);
      return {};
    }),
    createAgentToken: unary(apiKeys, 'admin', async (req) => {
      const created = await locations.createToken(req.location_id, definedFields({ name: req.name }));
      return { agent_token: tokenProto(created.token), secret: created.secret };
    }),
    listAgentTokens: unary(apiKeys, 'admin', async (req) => ({
      agent_tokens: (await locations.listTokens(req.location_id)).map(tokenProto),
      next_page_token: '',
    })),
    revokeAgentToken: unary(apiKeys, 'admin', async (req) => ({
      agent_token: tokenProto(await locations.revokeToken(req.id)),
    })),
  };
}

import { testInputSchema } from '@wsmon/contracts';
import type { ConfigServiceServer, Test } from '@wsmon/proto';
import type { ApiKeysService } from '../auth/api-keys.service';
import { invalid } from '../common/errors';
import { unary } from '../grpc/grpc-calls';
import { definedFields, maskedFields } from '../grpc/proto-json';
import type { TestResponse, TestsService } from './tests.service';

const TEST_FIELDS = [
  'name',
  'description',
  'tags',
  'enabled',
  'probe',
  'schedule',
  'locations',
  'retry',
  'alert',
] as const;

/** What a field named in an update mask but left unset resets to: its default in the shared schema. */
const RESET_VALUES = Object.fromEntries(
  TEST_FIELDS.flatMap((field) => {
    const fallback = testInputSchema.shape[field].safeParse(undefined);
    return fallback.success ? [[field, fallback.data]] : [];
  }),
);

/** A proto Test as the JSON the REST API takes: the same service validates both. */
function testJson(test: Test | undefined): Record<string, unknown> {
  if (!test) throw invalid('test', 'required', 'is required');
  return definedFields({
    name: test.name,
    description: test.description,
    tags: test.tags,
    enabled: test.enabled,
    probe: test.probe,
    schedule: test.schedule && definedFields({ ...test.schedule }),
    locations: test.locations,
    retry: test.retry && definedFields({ ...test.retry }),
    alert: test.alert && definedFields({ ...test.alert }),
  });
}

export function testProto(t: TestResponse): Test {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    tags: t.tags,
    enabled: t.enabled,
    probe: t.probe,
    schedule: t.schedule,
    locations: t.locations,
    retry: t.retry,
    alert: t.alert,
    revision: t.revision,
    create_time: new Date(t.created_at),
    update_time: new Date(t.updated_at),
  };
}

/** The test operations of ConfigService: thin, over the service REST uses. */
export function testsGrpcHandlers(
  tests: TestsService,
  apiKeys: ApiKeysService,
): Pick<
  ConfigServiceServer,
  | 'createTest'
  | 'listTests'
  | 'getTest'
  | 'replaceTest'
  | 'updateTest'
  | 'deleteTest'
  | 'pauseTest'
  | 'resumeTest'
> {
  return {
    createTest: unary(
      apiKeys,
      'editor',
      async (req) => ({ test: testProto(await tests.create(testJson(req.test))) }),
      'test',
    ),
    listTests: unary(apiKeys, 'viewer', async (req) => {
      const page = await tests.list(
        definedFields({
          page_size: req.page_size || undefined,
          page_token: req.page_token || undefined,
          tag: req.tag || undefined,
          location: req.location || undefined,
          enabled: req.enabled === undefined ? undefined : String(req.enabled),
          q: req.query || undefined,
        }),
      );
      return { tests: page.items.map(testProto), next_page_token: page.next_page_token ?? '' };
    }),
    getTest: unary(apiKeys, 'viewer', async (req) => ({ test: testProto(await tests.get(req.id)) })),
    replaceTest: unary(
      apiKeys,
      'editor',
      async (req) => ({ test: testProto(await tests.replace(req.test?.id ?? '', testJson(req.test))) }),
      'test',
    ),
    updateTest: unary(
      apiKeys,
      'editor',
      async (req) => {
        const patch = maskedFields(testJson(req.test), req.update_mask, TEST_FIELDS, RESET_VALUES);
        return { test: testProto(await tests.patch(req.test?.id ?? '', patch)) };
      },
      'test',
    ),
    deleteTest: unary(apiKeys, 'editor', async (req) => {
      await tests.delete(req.id);
      return {};
    }),
    pauseTest: unary(apiKeys, 'editor', async (req) => ({
      test: testProto(await tests.setEnabled(req.id, false)),
    })),
    resumeTest: unary(apiKeys, 'editor', async (req) => ({
      test: testProto(await tests.setEnabled(req.id, true)),
    })),
  };
}

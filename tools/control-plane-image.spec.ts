import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  nodeModulesAbove,
  productionInstall,
  ROOT,
  start,
  type Running,
} from './production-install';

const execFileAsync = promisify(execFile);

/**
 * The control plane as docker/Dockerfile.control-plane installs it (production dependencies of
 * apps/control-plane, the workspace manifests, proto/ and the bundles), run with its embedded database (no
 * PostgreSQL server needed): it serves /healthz, /readyz and the OpenAPI document, and gRPC reflection found
 * the proto/ files. Then compose's init script (docker/demo/bootstrap.mjs) sets the demo up through its REST
 * API, twice without change, and an agent given a token the script wrote connects and receives its location's
 * tests (that agent runs from the repository's build: tools/agent-image.spec.ts covers the agent's image).
 */
describe('the control-plane image, from its production install, with the compose init script', () => {
  let dir: string;
  const running: Running[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wsmon-control-plane-image-'));
    expect(nodeModulesAbove(dir), 'a node_modules the install would borrow from').toBeUndefined();
    await productionInstall('control-plane', dir);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves its APIs; the init script sets the demo up; an agent with its token receives its tests', async () => {
    const httpPort = await freePort();
    const adminKey = 'deploy-spec-admin-key-0123456789abcdef';
    const controlPlane = start(join(dir, 'apps/control-plane/dist/main.js'), {
      WSMON_DATA_DIR: join(dir, 'data'),
      WSMON_HTTP_PORT: String(httpPort),
      WSMON_GRPC_PORT: '0',
      WSMON_LOCAL_AGENT: '0',
      WSMON_ADMIN_KEY: adminKey,
    });
    running.push(controlPlane);
    // Printed once reflection has loaded the proto/ files the image copies (it fails at start without them).
    const grpc = await controlPlane.waitFor(/gRPC 127\.0\.0\.1:(\d+) \(.*reflection\)/, 90_000);
    const base = `http://127.0.0.1:${httpPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const openApi = (await (await fetch(`${base}/api/docs/openapi.json`)).json()) as { paths: object };
    expect(Object.keys(openApi.paths)).toContain('/api/v1/tests');

    const tokens = join(dir, 'tokens');
    const bootstrap = () =>
      execFileAsync(process.execPath, [join(ROOT, 'docker/demo/bootstrap.mjs')], {
        env: {
          PATH: process.env.PATH,
          WSMON_URL: base,
          WSMON_ADMIN_KEY: adminKey,
          WSMON_TOKENS_DIR: tokens,
          WSMON_AGENT_UID: String(process.getuid!()),
          WSMON_AGENT_GID: String(process.getgid!()),
        },
        timeout: 60_000,
      });
    const first = await bootstrap();
    expect(first.stdout).toContain('location eu-west: created; token created');
    expect(first.stdout).toMatch(/"demo: echo round trip": created/);
    const again = await bootstrap();
    expect(again.stdout).toContain('location eu-west: exists; token kept');
    expect(again.stdout).not.toMatch(/: created/);

    const demo = JSON.parse(readFileSync(join(ROOT, 'docker/demo/tests.json'), 'utf8')) as {
      tests: { locations: string[] }[];
    };
    const agent = start(join(ROOT, 'apps/agent/dist/main.js'), {
      WSMON_CONTROL_PLANE: `127.0.0.1:${grpc[1]}`,
      WSMON_TOKEN: readFileSync(join(tokens, 'eu-west.token'), 'utf8').trim(),
      WSMON_INSECURE: '1',
      WSMON_AGENT_DATA_DIR: join(dir, 'agent-data'),
      WSMON_AGENT_HTTP_HOST: '127.0.0.1',
      WSMON_AGENT_HTTP_PORT: String(await freePort()),
    });
    running.push(agent);
    await agent.waitFor(/connected to .* \(location eu-west\)/, 60_000);
    const configured = await agent.waitFor(/configured: (\d+) tests/, 60_000);
    expect(Number(configured[1])).toBe(demo.tests.filter((t) => t.locations.includes('eu-west')).length);
    expect(await agent.stop()).toBe(0);
    expect(await controlPlane.stop()).toBe(0);
  }, 240_000);
});

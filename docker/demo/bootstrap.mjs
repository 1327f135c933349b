// The one-shot `init` service of docker/compose.yaml, through the REST API only (as an operator would): creates
// the demo locations, one agent token per location written to a volume the agents read, and the sample tests
// of tests.json. Safe to run again: what exists is kept; a token the database no longer knows (its volume was
// removed) is replaced.
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const baseUrl = (process.env.WSMON_URL ?? 'http://control-plane-1:8080').replace(/\/$/, '');
const adminKey = process.env.WSMON_ADMIN_KEY;
const tokensDir = process.env.WSMON_TOKENS_DIR ?? '/run/wsmon/tokens';
// The agent image runs as uid and gid 1000; the token files are readable by it alone.
const agentUid = Number(process.env.WSMON_AGENT_UID ?? 1000);
const agentGid = Number(process.env.WSMON_AGENT_GID ?? agentUid);
const demo = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'tests.json'), 'utf8'));

const say = (line) => process.stdout.write(`init: ${line}\n`);

async function api(method, path, body, { allow = [] } = {}) {
  const response = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${adminKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok && !allow.includes(response.status)) {
    throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  }
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function waitUntilReady(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${baseUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${baseUrl}/readyz did not answer 200 in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** The location's token file, kept when the control plane still knows its token, else minted anew. */
async function ensureToken(location) {
  const file = join(tokensDir, `${location}.token`);
  const idFile = join(tokensDir, `${location}.token-id`);
  if (existsSync(file) && existsSync(idFile)) {
    const id = readFileSync(idFile, 'utf8').trim();
    const { body: tokens } = await api('GET', `/locations/${location}/tokens`);
    if (tokens.some((t) => t.id === id && t.revoked_at === null)) return 'kept';
  }
  const { body } = await api('POST', `/locations/${location}/tokens`, {
    name: `compose agents (${location})`,
  });
  for (const [path, content] of [
    [file, `${body.secret}\n`],
    [idFile, `${body.token.id}\n`],
  ]) {
    writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
    chownSync(`${path}.tmp`, agentUid, agentGid);
    renameSync(`${path}.tmp`, path);
  }
  return 'created';
}

if (!adminKey) throw new Error('WSMON_ADMIN_KEY is required');
mkdirSync(tokensDir, { recursive: true });
await waitUntilReady(180_000);

for (const location of demo.locations) {
  const { status } = await api('POST', '/locations', location, { allow: [409] });
  say(
    `location ${location.name}: ${status === 409 ? 'exists' : 'created'}; token ${await ensureToken(location.name)}`,
  );
}

const { body: page } = await api('GET', '/tests?q=demo&page_size=200');
const existing = new Map(page.items.map((test) => [test.name, test]));
for (const test of demo.tests) {
  const kept = existing.get(test.name);
  const { body } = kept ? { body: kept } : await api('POST', '/tests', test);
  say(`test ${body.id} "${test.name}": ${kept ? 'exists' : 'created'} (${test.locations.join(', ')})`);
}
say(`done. The agents connect next; then, with the admin key:`);
say(`  curl -s -H "authorization: Bearer $WSMON_ADMIN_KEY" localhost:8080/api/v1/agents`);
say(`  curl -s -H "authorization: Bearer $WSMON_ADMIN_KEY" localhost:8080/api/v1/tests/<id>/results`);

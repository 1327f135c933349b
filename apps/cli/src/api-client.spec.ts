import { describe, expect, it } from 'vitest';
import { ApiError, apiClientFrom, DEFAULT_SERVER } from './api-client';
import { UsageError } from './cli-io';
import { parseDuration } from './duration';
import { FakeControlPlane } from './fixtures/fake-control-plane';

describe(apiClientFrom.name, () => {
  it('takes --server, else WSMON_SERVER, else the default; the flag key over the environment one', async () => {
    expect(apiClientFrom({}, { env: { WSMON_API_KEY: 'k' } }).baseUrl).toBe(DEFAULT_SERVER);
    expect(
      apiClientFrom({}, { env: { WSMON_API_KEY: 'k', WSMON_SERVER: 'https://cp.example/' } }).baseUrl,
    ).toBe('https://cp.example');
    const api = new FakeControlPlane().on('GET', /^\/agents$/, { body: [] });
    const client = apiClientFrom(
      { server: 'http://proxy.example/wsmon/', apiKey: 'from-flag' },
      { env: { WSMON_API_KEY: 'from-env', WSMON_SERVER: 'http://ignored' }, fetch: api.fetch },
    );
    await client.get('/agents');
    expect(client.baseUrl).toBe('http://proxy.example/wsmon');
    expect(api.requests[0]?.authorization).toBe('Bearer from-flag');
  });

  it.each<[{ server?: string; apiKey?: string }, string]>([
    [{ server: 'not a url' }, '--server: "not a url" is not a URL'],
    [{ server: 'ftp://cp.example' }, '--server: must be an http:// or https:// URL'],
    [{ server: 'http://user:pw@cp.example' }, '--server: give the address only'],
    [{ apiKey: '' }, 'no API key'],
  ])('refuses %j', (flags, message) => {
    const env = { WSMON_API_KEY: flags.apiKey === '' ? '' : 'k' };
    expect(() => apiClientFrom(flags, { env })).toThrow(UsageError);
    expect(() => apiClientFrom(flags, { env })).toThrow(message);
  });

  it('turns an answer of the API into an ApiError with its field errors, and never shows the key', async () => {
    const api = new FakeControlPlane().on('POST', /^\/tests$/, {
      status: 400,
      body: {
        error: {
          status: 400,
          code: 'invalid_argument',
          message: 'invalid request: name: is required',
          field_errors: [{ path: 'name', rule: 'required', message: 'name: is required' }],
        },
      },
    });
    const client = apiClientFrom({ apiKey: 'super-secret-key' }, { env: {}, fetch: api.fetch });
    const error = await client.post('/tests', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).lines()).toEqual([
      'invalid request (HTTP 400 invalid_argument)',
      'name: is required [required]',
    ]);
    expect(JSON.stringify(error)).not.toContain('super-secret-key');
  });

  it('says which address cannot be reached', async () => {
    const refused: typeof fetch = () =>
      Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
    const client = apiClientFrom({ apiKey: 'k' }, { env: {}, fetch: refused });
    const error = (await client.get('/agents').catch((e: unknown) => e)) as ApiError;
    expect(error.lines()).toEqual([`cannot reach the control plane at ${DEFAULT_SERVER}: ECONNREFUSED`]);
  });
});

describe(parseDuration.name, () => {
  it.each([
    ['500ms', 500],
    ['90', 90_000],
    ['90s', 90_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text, '--since')).toBe(ms);
  });

  it.each(['', 'soon', '-5s', '0s', '1w'])('refuses %j', (text) => {
    expect(() => parseDuration(text, '--since')).toThrow(UsageError);
  });
});

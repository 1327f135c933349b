import { parseProbeConfig } from '@wsmon/contracts';
import { describe, expect, it } from 'vitest';
import { logfmtValue, moduleSummary, probePhaseLog, probeWaterfall } from './probe-debug';
import { probeResult, refusedResult } from './probe-result.spec-helper';

describe(logfmtValue.name, () => {
  it.each([
    ['plain', 'plain'],
    ['', '""'],
    ['two words', '"two words"'],
    ['a=b', '"a=b"'],
    ['say "hi"\\\n', '"say \\"hi\\"\\\\\\n"'],
    [0.5, '0.5'],
    [true, 'true'],
  ])('writes %j as %s', (value, text) => {
    expect(logfmtValue(value)).toBe(text);
  });
});

describe(probePhaseLog.name, () => {
  it('logs the phases in the order they happened, then the verdict', () => {
    const lines = probePhaseLog(probeResult(), { module: 'ws_tls', timeoutMs: 9500 });
    expect(lines[0]).toBe(
      'ts=2026-01-01T00:00:00.000Z level=info module=ws_tls target=wss://example.test/socket msg="Beginning probe" timeout_seconds=9.5',
    );
    const what = (line: string) => /phase=(\w+)/.exec(line)?.[1] ?? /msg="([^"]*)"/.exec(line)?.[1];
    expect(lines.map(what)).toEqual([
      'Beginning probe',
      'resolve',
      'connect',
      'tls',
      'processing',
      'WebSocket open',
      'transfer',
      'close',
      'Probe succeeded',
    ]);
    expect(lines.at(-1)).toBe(
      'ts=2026-01-01T00:00:00.016Z level=info module=ws_tls target=wss://example.test/socket msg="Probe succeeded" duration_seconds=0.0163',
    );
  });

  it('ends a failed probe with its reason, cause and error', () => {
    const last = probePhaseLog(refusedResult(), { module: 'm', timeoutMs: 1000 }).at(-1);
    expect(last).toContain('level=error');
    expect(last).toContain(
      'reason=ws_open_failed cause=connection_refused category=CONNRESET error_code=ECONNREFUSED err="TCP connect to 127.0.0.1:9: connect ECONNREFUSED"',
    );
  });
});

describe(probeWaterfall.name, () => {
  it('draws each phase from where the previous ended, to scale', () => {
    const rows = probeWaterfall(refusedResult()).split('\n');
    expect(rows).toEqual([
      "Waterfall (ms from the probe's start; total 1.2 ms):",
      `  connect          0.000     +0.800 |${'#'.repeat(27).padEnd(40)}|`,
      '  failed       ws_open_failed (connection_refused)',
    ]);
  });

  it('starts the exchange where the WebSocket opened and ends with the close', () => {
    const text = probeWaterfall(probeResult());
    expect(text).toMatch(/ {2}ping #1 +13\.200 +\+1\.300 \|/);
    expect(text).toMatch(/ {2}close +15\.600 +\+0\.700 \|/);
    expect(text).toContain('  open at         13.200');
  });
});

describe(moduleSummary.name, () => {
  it('counts credentials and leaves their values out', () => {
    const parsed = parseProbeConfig({
      url: 'wss://example.test/',
      headers: { 'X-Api-Key': 's3cret-token' },
      cookies: 'session=abcdef',
      basic_auth: { username: 'u', password: 'hunter22' },
      tls: { ca_pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' },
      steps: [{ type: 'connect' }, { type: 'send', message: 'token=s3cret-token' }],
      timeout_ms: 5000,
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const summary = moduleSummary('m', { ...parsed.value, timeout_ms: 1000 }, 5000);
    expect(summary).toContain('timeout_ms: 1000 (module: 5000, shortened to the scrape timeout)');
    expect(summary).toContain('headers: 1 (values not shown)');
    expect(summary).toContain('steps: connect, send');
    expect(summary).not.toMatch(/s3cret|hunter22|abcdef|MIIB/);
  });
});

import { describe, expect, it } from 'vitest';
import { echoSuccess, http426, refused, tlsStepFailure } from './fixtures/probe-results';
import { bar, formatMs, printable, renderProbeResult, verdictLine } from './waterfall';

const plain = (result: Parameters<typeof renderProbeResult>[0]) =>
  renderProbeResult(result, { color: false });
const lineOf = (text: string, start: string) => text.split('\n').find((l) => l.trimStart().startsWith(start));
const ESC = '\u001b';

describe('renderProbeResult', () => {
  it('shows every phase with its duration and a bar proportional to the longest', () => {
    const text = renderProbeResult(echoSuccess(), { color: false, barWidth: 32 });
    expect(lineOf(text, 'tcp connect')).toMatch(/^ {2}tcp connect +0\.41 ms {2}█{4}▏$/);
    expect(lineOf(text, 'upgrade ')).toMatch(/1\.30 ms {2}█{13}$/);
    expect(lineOf(text, 'open')).toMatch(/1\.93 ms {2}█{19}▍ {2}\(total to open\)$/);
    expect(lineOf(text, 'round trip')).toMatch(/0\.61 ms {2}█{6}▏$/);
    expect(lineOf(text, 'close ')).toMatch(/0\.40 ms {2}█{4}$/);
    expect(lineOf(text, 'total')).toMatch(/3\.20 ms {2}█{32}$/);
  });

  it('shows phases that did not happen as — without a bar, in the same place', () => {
    const text = plain(echoSuccess());
    for (const phase of ['dns', 'tls handshake', 'ping']) expect(lineOf(text, phase)).toMatch(/ {10}—$/);
    const failed = plain(refused());
    for (const phase of [
      'dns',
      'tcp connect',
      'tls handshake',
      'upgrade',
      'open',
      'round trip',
      'ping',
      'close',
    ]) {
      expect(lineOf(failed, phase), phase).toMatch(/ {10}—$/);
    }
    expect(lineOf(failed, 'total')).toMatch(/0\.90 ms {2}█{40}$/);
  });

  it('names the URL and the address connected to', () => {
    expect(plain(echoSuccess()).split('\n')[0]).toBe('ws://127.0.0.1:40123/echo  → 127.0.0.1:40123 (IPv4)');
    const v6 = plain(echoSuccess({ connection: { remote_address: '::1', remote_port: 9, ip_family: 6 } }));
    expect(v6.split('\n')[0]).toContain('→ [::1]:9 (IPv6)');
    expect(
      plain(refused({ connection: { remote_address: null, remote_port: null, ip_family: null } })).split(
        '\n',
      )[0],
    ).toBe('ws://127.0.0.1:1/');
  });

  it('shows the negotiated handshake, the close and the messages of a success', () => {
    const text = plain(echoSuccess());
    expect(text).toContain('upgrade       HTTP 101 Switching Protocols\n');
    expect(text).toContain('subprotocol   chat\n');
    expect(text).toContain('extensions    permessage-deflate\n');
    expect(text).toContain('tls           —\n');
    expect(text).toContain('close         1000 · by client · clean\n');
    expect(text).toContain('messages      1 sent · 1 received · last: "hello"\n');
    // The headers of a 101 are in --json; the waterfall shows them only for a refused upgrade.
    expect(text).not.toContain('connection: Upgrade');
  });

  it('lists the steps and the assertions with pass marks', () => {
    const text = plain(echoSuccess());
    expect(text).toMatch(
      /\nsteps\n {2}✓ #0 connect +1\.93 ms\n {2}✓ #1 send +0\.02 ms\n {2}✓ #2 receive +0\.60 ms {2}round trip 0\.61 ms\n/,
    );
    expect(text).toContain(
      'assertions\n  ✓ response time (connect): actual 1.934 ms versus expected less than 500 ms\n',
    );
  });

  it('ends with the verdict line of a success', () => {
    expect(plain(echoSuccess()).trimEnd().split('\n').at(-1)).toBe('PASS  handshake_latency = 1.93 ms');
    const connected = echoSuccess({ interpretation: 'connection_success', value: 1 });
    expect(plain(connected)).toMatch(/\nPASS {2}connection_success = 1\n$/);
  });

  it('shows the status line, the headers and the body of a refused upgrade, and the failure', () => {
    const text = plain(http426());
    expect(text).toContain(
      [
        'upgrade       HTTP 426 Upgrade Required',
        '              upgrade: websocket',
        '              content-type: text/html',
        '              x-zoo-status: 426',
        '              body (truncated):',
        '              │ <html><body>status 426 Upgrade Required',
        '              │ <p>use a WebSocket client</p>',
        '              │ …',
      ].join('\n'),
    );
    expect(text).toContain('steps         —\nassertions    —\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      'FAIL  ws_open_failed · http_unexpected_status [INVALID_REQUEST]  the server answered the upgrade with HTTP 426 Upgrade Required instead of 101 Switching Protocols',
    );
  });

  it('shows the TLS session and certificate, and failed steps and assertions', () => {
    const text = plain(tlsStepFailure());
    expect(text).toContain(
      [
        'tls           TLSv1.3 · TLS_AES_256_GCM_SHA384 · not verified (DEPTH_ZERO_SELF_SIGNED_CERT)',
        '              subject  CN=localhost, O=wsmon tests',
        '              issuer   CN=localhost, O=wsmon tests',
        '              expires  2026-02-19T05:00:00.000Z  (90.0 days remaining)',
      ].join('\n'),
    );
    expect(lineOf(text, 'tls handshake')).toContain('6.50 ms');
    expect(text).toMatch(/ {2}✗ #2 receive +500\.10 ms {2}no reply within 500 ms\n/);
    expect(text).toContain('  ✗ received message: actual nothing to check versus expected to contain "pong"');
    expect(text).toMatch(
      /\nFAIL {2}ws_reply_timeout · reply_timeout \[TIMEOUT\] {2}no reply within 500 ms\n$/,
    );
    const verified = tlsStepFailure({
      tls: { ...tlsStepFailure().tls!, authorized: true, authorization_error: null },
    });
    expect(plain(verified)).toContain('TLS_AES_256_GCM_SHA384 · verified\n');
  });

  it('shows a close without a close frame, and a binary last message by its size', () => {
    const text = plain(
      echoSuccess({
        close: { code: 1006, reason: '', initiator: 'none', clean: false },
        last_message: { data: 'AAEC', binary: true, size_bytes: 3, truncated: false },
      }),
    );
    expect(text).toContain('close         1006 · no close frame · not clean\n');
    expect(text).toContain('last: binary, 3 bytes\n');
    const reasoned = plain(
      echoSuccess({ close: { code: 1001, reason: 'going away', initiator: 'server', clean: true } }),
    );
    expect(reasoned).toContain('close         1001 "going away" · by server · clean\n');
  });

  it('escapes control characters in what the server sent, so it cannot drive the terminal', () => {
    const hostile = http426({
      upgrade: {
        status_code: 400,
        status_message: `Bad${ESC}[2J`,
        headers: { 'x-evil': `a${ESC}]0;pwned\u0007b` },
        body_preview: `line1\r\n${ESC}[31mred`,
      },
      last_message: { data: `hi${ESC}[1m\nthere`, binary: false, size_bytes: 12, truncated: false },
      close: { code: 1000, reason: `bye${ESC}c`, initiator: 'server', clean: true },
    });
    const text = plain(hostile);
    expect(text).not.toContain(ESC);
    expect(text).not.toContain('\u0007');
    expect(text).not.toContain('\r');
    expect(text).toContain('HTTP 400 Bad\\x1b[2J');
    expect(text).toContain('x-evil: a\\x1b]0;pwned\\x07b');
    expect(text).toContain('│ line1\\r\n');
    expect(text).toContain('last: "hi\\u001b[1m\\nthere"');
    expect(text).toContain('close         1000 "bye\\u001bc" · by server');
  });

  it('writes no ANSI escape without colour, and colours the verdict and marks with it', () => {
    for (const result of [echoSuccess(), http426(), refused(), tlsStepFailure()]) {
      expect(plain(result)).not.toContain(ESC);
    }
    const coloured = renderProbeResult(echoSuccess(), { color: true });
    expect(coloured).toContain(`${ESC}[32m${ESC}[1mPASS${ESC}[0m${ESC}[0m`);
    expect(coloured).toContain(`${ESC}[32m✓${ESC}[0m`);
    expect(renderProbeResult(http426(), { color: true })).toContain(`${ESC}[31m${ESC}[1mFAIL`);
  });
});

describe('verdictLine', () => {
  it('shows — for a failed latency probe without failure details', () => {
    expect(verdictLine(echoSuccess({ success: false, value: null, failure: null }))).toBe(
      'FAIL  handshake_latency = —',
    );
  });
});

describe('helpers', () => {
  it('bar scales to the width in eighths and gives anything that took time a sliver', () => {
    expect(bar(10, 10, 4)).toBe('████');
    expect(bar(5, 10, 4)).toBe('██');
    expect(bar(1, 10, 4)).toBe('▍');
    expect(bar(0.0001, 10, 4)).toBe('▏');
    expect(bar(0, 10, 4)).toBe('');
    expect(bar(20, 10, 4)).toBe('████');
    expect(bar(1, 0, 4)).toBe('');
  });

  it('formatMs keeps two decimals', () => {
    expect(formatMs(1.934)).toBe('1.93 ms');
    expect(formatMs(1234.5)).toBe('1234.50 ms');
  });

  it('printable keeps newlines and tabs only when asked', () => {
    expect(printable('a\tb\nc')).toBe('a\\tb\\nc');
    expect(printable('a\tb\nc', true)).toBe('a\tb\nc');
    expect(printable('\u009b\u007f')).toBe('\\x9b\\x7f');
  });
});

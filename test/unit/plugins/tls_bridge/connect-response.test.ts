import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ConnectResponseScanner,
  MALFORMED_STATUS,
  MAX_REPLY_HEADER,
  ScanState,
} from '../../../../plugins/tls_bridge/connect-response.js';
import { TlsBridgeErrorCode } from '../../../../plugins/tls_bridge/errors.js';

interface Outcome {
  state: string;
  code: number;
  reason: string;
  error: string | null;
  /** Bytes after the header: the rest of the completing chunk and every later chunk. */
  after: string;
  /** How many feeds reported the end of the header. */
  ends: number;
}

function scan(chunks: readonly Buffer[]): Outcome {
  const s = new ConnectResponseScanner();
  const after: Buffer[] = [];
  let ends = 0;
  let ready = false;
  for (const c of chunks) {
    const off = s.feed(c);
    if (ready) {
      assert.equal(off, 0, 'after READY every byte is tunnel data');
      after.push(c);
    } else if (off >= 0) {
      ends++;
      ready = true;
      after.push(c.subarray(off));
    }
  }
  return { state: s.state, code: s.code, reason: s.reason, error: s.error, after: Buffer.concat(after).toString('latin1'), ends };
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const oneByOne = (s: string): Buffer[] => [...bytes(s)].map((b) => Buffer.from([b]));

function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

const OK = 'HTTP/1.1 200 OK\r\nDate: x\r\nConnection: close\r\n\r\n';

test('a complete 200 reply is READY, with nothing after it', () => {
  assert.deepEqual(scan([bytes(OK)]), { state: ScanState.Ready, code: 200, reason: 'OK', error: null, after: '', ends: 1 });
});

test('bytes after the header in the same chunk are kept (ATS drops them)', () => {
  const r = scan([bytes(`${OK}HTTP/1.1 200 Connection established\r\n\r\nhello`), bytes(' world')]);
  assert.equal(r.state, ScanState.Ready);
  assert.equal(r.after, 'HTTP/1.1 200 Connection established\r\n\r\nhello world');
});

test('the status line alone is reported before the header ends', () => {
  const s = new ConnectResponseScanner();
  assert.equal(s.feed(bytes('HTTP/1.1 502 Connection Refused\r')), -1);
  assert.equal(s.code, 0);
  assert.equal(s.feed(bytes('\nProxy-Status: tsproxy; error=connection_refused\r\n')), -1);
  assert.equal(s.state, ScanState.Fields);
  assert.equal(s.code, 502);
  assert.equal(s.reason, 'Connection Refused');
  assert.equal(s.feed(bytes('Content-Length: 3\r\n\r\nabc')), 21);
  assert.equal(s.state, ScanState.Ready);
});

test('status lines: versions, missing reason, tabs', () => {
  const cases: [string, number, string][] = [
    ['HTTP/1.0 200 OK', 200, 'OK'],
    ['HTTP/1.1 200', 200, ''],
    ['HTTP/1.1 200 ', 200, ''],
    ['HTTP/1.1\t403\tTunnel Forbidden', 403, 'Tunnel Forbidden'],
    ['HTTP/1.1 504 Connect Timeout  ', 504, 'Connect Timeout'],
    ['HTTP/0.9 502 TLS Certificate Error', 502, 'TLS Certificate Error'],
  ];
  for (const [line, code, reason] of cases) {
    const r = scan([bytes(`${line}\r\n\r\n`)]);
    assert.deepEqual([r.state, r.code, r.reason], [ScanState.Ready, code, reason], line);
  }
});

test('bare LF line endings and mixed endings end the header', () => {
  assert.equal(scan([bytes('HTTP/1.1 200 OK\n\nX')]).after, 'X');
  assert.equal(scan([bytes('HTTP/1.1 200 OK\r\nA: b\n\r\nX')]).after, 'X');
  assert.equal(scan([bytes('HTTP/1.1 200 OK\nA: b\r\n\nX')]).after, 'X');
});

test('a CR inside a line does not end the header', () => {
  const r = scan([bytes('HTTP/1.1 200 OK\r\nA: \r\r\n\rB: c\r\n\r\nX')]);
  assert.equal(r.state, ScanState.Ready);
  assert.equal(r.after, 'X');
});

test('an unparseable status line is ATS 519, detected as early as possible', () => {
  for (const bad of ['HTTP/1.1 abc Nope\r\n', 'HTTP/1.1 999 Nope\r\n', 'HTTP/1.1200 OK\r\n', '\r\n', 'HTTP/x.1 200 OK\r\n', 'SSH-2.0-x\r\n']) {
    const r = scan([bytes(bad)]);
    assert.deepEqual([r.state, r.code, r.error], [ScanState.Error, MALFORMED_STATUS, TlsBridgeErrorCode.REPLY_MALFORMED], JSON.stringify(bad));
  }
  const s = new ConnectResponseScanner();
  s.feed(bytes('HTT'));
  assert.equal(s.state, ScanState.Open);
  s.feed(bytes('X'));
  assert.equal(s.state, ScanState.Error, 'a wrong prefix fails without waiting for the end of the line');
});

test('after an error further input is ignored', () => {
  const s = new ConnectResponseScanner();
  s.feed(bytes('garbage'));
  assert.equal(s.feed(bytes('HTTP/1.1 200 OK\r\n\r\n')), -1);
  assert.equal(s.state, ScanState.Error);
});

test('a header longer than MAX_REPLY_HEADER is an error; exactly the cap is fine', () => {
  const head = 'HTTP/1.1 200 OK\r\n';
  const fill = (n: number): string => `X: ${'a'.repeat(n - 5)}\r\n`; // a field line of n bytes
  const exact = head + fill(MAX_REPLY_HEADER - head.length - 2) + '\r\n';
  assert.equal(bytes(exact).length, MAX_REPLY_HEADER);
  assert.equal(scan([bytes(exact)]).state, ScanState.Ready);
  assert.equal(scan(oneByOne(exact)).state, ScanState.Ready);
  const over = head + fill(MAX_REPLY_HEADER - head.length - 1) + '\r\n';
  const r = scan([bytes(over)]);
  assert.deepEqual([r.state, r.error, r.code], [ScanState.Error, TlsBridgeErrorCode.REPLY_TOO_LARGE, 200]);
  const longStatus = scan([bytes(`HTTP/1.1 200 ${'x'.repeat(MAX_REPLY_HEADER)}`)]);
  assert.equal(longStatus.error, TlsBridgeErrorCode.REPLY_TOO_LARGE);
  assert.equal(scan(oneByOne(over)).error, TlsBridgeErrorCode.REPLY_TOO_LARGE);
});

test('byte-at-a-time feeding gives the same result as one chunk', () => {
  const replies = [
    `${OK}tunnel bytes`,
    'HTTP/1.1 502 TLS Certificate Error\r\nProxy-Status: tsproxy; error=tls_certificate_error\r\nContent-Length: 5\r\n\r\nerror',
    'HTTP/1.1 200 OK\n\n',
    'HTTP/1.1 20',
    'HTTP/1.1 nope\r\n',
  ];
  for (const r of replies) assert.deepEqual(scan(oneByOne(r)), scan([bytes(r)]), JSON.stringify(r));
});

test('empty chunks change nothing', () => {
  assert.deepEqual(scan([Buffer.alloc(0), bytes(OK), Buffer.alloc(0), bytes('x')]), scan([bytes(`${OK}x`)]));
});

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
const fieldValue = fc.stringMatching(/^[ -~]{0,40}$/).map((v) => v.trim());
const eol = fc.constantFrom('\r\n', '\n');
const validReply = fc
  .record({
    minor: fc.constantFrom('0', '1'),
    code: fc.integer({ min: 100, max: 599 }),
    reason: fc.stringMatching(/^[ -~]{0,30}$/).map((v) => v.trim()),
    fields: fc.array(fc.tuple(token, fieldValue, eol), { maxLength: 8 }),
    first: eol,
    last: eol,
    tail: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ minor, code, reason, fields, first, last, tail }) => ({
    code,
    reason,
    tail: Buffer.from(tail).toString('latin1'),
    text:
      `HTTP/1.${minor} ${code}${reason === '' ? '' : ` ${reason}`}${first}` +
      fields.map(([n, v, e]) => `${n}: ${v}${e}`).join('') +
      last +
      Buffer.from(tail).toString('latin1'),
  }));

test('property: any split of a valid reply gives the same status and the same bytes after the header', () => {
  fc.assert(
    fc.property(validReply, fc.array(fc.nat(), { maxLength: 12 }), (reply, cuts) => {
      const whole = scan([bytes(reply.text)]);
      assert.deepEqual([whole.state, whole.code, whole.reason, whole.after], [ScanState.Ready, reply.code, reply.reason, reply.tail]);
      assert.deepEqual(scan(splitAt(bytes(reply.text), cuts)), whole);
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes never throw, and splitting never changes the outcome', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }), (raw, cuts) => {
      const buf = Buffer.from(raw);
      assert.deepEqual(scan(splitAt(buf, cuts)), scan([buf]));
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
      const r = scan([Buffer.concat([bytes('HTTP/1.1 200 OK\r\n'), Buffer.from(raw)])]);
      assert.ok(r.state === ScanState.Ready || r.state === ScanState.Fields);
    }),
    { numRuns: 500 },
  );
});

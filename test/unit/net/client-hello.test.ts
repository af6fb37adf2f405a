import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseClientHello } from '../../../host/net/client-hello.js';
import type { ClientHelloResult, ScanPoint } from '../../../host/net/client-hello.js';
import {
  alpnData,
  captureClientHello,
  ext,
  fragment,
  helloMessage,
  helloRecord,
  helloRecords,
  record,
  sniData,
  u16,
  u8,
  vec,
} from './client-hello-fixtures.js';

const T = { timeout: 10_000 };

function ok(r: ClientHelloResult) {
  assert.equal(r.kind, 'ok', r.kind === 'invalid' ? r.reason : r.kind);
  return (r as Extract<ClientHelloResult, { kind: 'ok' }>).hello;
}
function invalid(r: ClientHelloResult, re: RegExp): void {
  assert.equal(r.kind, 'invalid');
  assert.match((r as Extract<ClientHelloResult, { kind: 'invalid' }>).reason, re);
}

/** Feed `buf` in pieces ending at `cuts` (plus the end), resuming each time; every earlier answer must be incomplete. */
function feed(buf: Buffer, cuts: readonly number[]): ClientHelloResult {
  let resume: ScanPoint | undefined;
  const ends = [...new Set([...cuts.filter((c) => c > 0 && c < buf.length), buf.length])].sort((a, b) => a - b);
  for (let i = 0; i < ends.length; i++) {
    const r = parseClientHello(buf.subarray(0, ends[i]), resume);
    if (r.kind !== 'incomplete' || i === ends.length - 1) return r;
    resume = r.resume;
  }
  throw new Error('unreachable');
}
const everyByte = (buf: Buffer): number[] => Array.from({ length: buf.length }, (_, i) => i + 1);

const withSni = (...entries: [number, Buffer | string][]) => helloRecord({ extensions: [ext(0, sniData(...entries))] });

describe('parseClientHello: hellos from a real Node TLS client', () => {
  test('SNI, ALPN and TLS 1.3 versions', T, async () => {
    const raw = await captureClientHello({ servername: 'backend.example.com', alpn: ['h2', 'http/1.1'] });
    const h = ok(parseClientHello(raw));
    assert.equal(h.sni, 'backend.example.com');
    assert.deepEqual(h.alpn, ['h2', 'http/1.1']);
    assert.equal(h.legacyVersion, 0x0303);
    assert.ok(h.versions.includes(0x0304));
    assert.equal(h.ech, false);
    assert.equal(h.length, raw.length);
  });

  test('upper case and a trailing dot are normalised', T, async () => {
    const h = ok(parseClientHello(await captureClientHello({ servername: 'EXAMPLE.com.' })));
    assert.equal(h.sni, 'example.com');
  });

  test('no servername gives sni null', T, async () => {
    const h = ok(parseClientHello(await captureClientHello({})));
    assert.equal(h.sni, null);
    assert.deepEqual(h.alpn, []);
  });

  test('TLS 1.2 only: no supported_versions', T, async () => {
    const h = ok(parseClientHello(await captureClientHello({ servername: 'a.test', maxVersion: 'TLSv1.2' })));
    assert.equal(h.sni, 'a.test');
    assert.deepEqual(h.versions, []);
  });

  test('fed one byte at a time: incomplete until the last byte, then the same hello', T, async () => {
    const raw = await captureClientHello({ servername: 'one.byte.test', alpn: ['h2'] });
    const whole = ok(parseClientHello(raw));
    let resume: ScanPoint | undefined;
    for (let i = 1; i < raw.length; i++) {
      const fresh = parseClientHello(raw.subarray(0, i));
      assert.equal(fresh.kind, 'incomplete', `prefix ${i}`);
      const r = parseClientHello(raw.subarray(0, i), resume);
      assert.equal(r.kind, 'incomplete', `prefix ${i} resumed`);
      if (r.kind === 'incomplete') resume = r.resume;
    }
    assert.deepEqual(ok(parseClientHello(raw, resume)), whole);
  });

  test('split across records of 1, 2, 7 and 100 bytes, and fed byte by byte', T, async () => {
    const raw = await captureClientHello({ servername: 'split.test', alpn: ['http/1.1'] });
    const whole = ok(parseClientHello(raw));
    for (const size of [1, 2, 7, 100]) {
      const frag = fragment(raw, size);
      const h = ok(parseClientHello(frag));
      assert.deepEqual({ ...h, length: 0 }, { ...whole, length: 0 });
      assert.equal(h.length, frag.length);
      assert.deepEqual(ok(feed(frag, everyByte(frag))), h);
    }
  });

  test('bytes after the ClientHello are not consumed', T, async () => {
    const raw = await captureClientHello({ servername: 'more.test' });
    const ccs = record(Buffer.from([1]), 0x0303, 20);
    const h = ok(parseClientHello(Buffer.concat([raw, ccs, Buffer.from('early data')])));
    assert.equal(h.length, raw.length);
  });

  test('property: any record split and any read split give the same hello', T, async () => {
    const raw = await captureClientHello({ servername: 'prop.example.org', alpn: ['h2', 'http/1.1'] });
    const whole = ok(parseClientHello(raw));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(4000), { maxLength: 60 }),
        (sizes, cuts) => {
          const frag = fragment(raw, (i) => sizes[i % sizes.length]!);
          const h = ok(feed(frag, cuts));
          assert.deepEqual({ ...h, length: 0 }, { ...whole, length: 0 });
          assert.equal(h.length, frag.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: random bytes and mutated hellos never throw', T, async () => {
    const raw = await captureClientHello({ servername: 'fuzz.test', alpn: ['h2'] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const r = parseClientHello(Buffer.from(bytes));
        assert.ok(['ok', 'invalid', 'incomplete'].includes(r.kind));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(raw.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (edits) => {
        const b = Buffer.from(raw);
        for (const [i, v] of edits) b[i] = v;
        const r = parseClientHello(b);
        if (r.kind === 'ok') assert.ok(r.hello.length <= b.length);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseClientHello: records and handshake header', () => {
  test('non-TLS bytes are invalid from the first byte', () => {
    invalid(parseClientHello(Buffer.from('G')), /record type 71/);
    invalid(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), /not handshake/);
    invalid(parseClientHello(record(Buffer.from([1]), 0x0303, 23)), /record type 23/);
  });

  test('a record version that is not 3.x is invalid', () => {
    invalid(parseClientHello(Buffer.from([22, 2])), /record version 2/);
  });

  test('empty input and a partial header are incomplete', () => {
    assert.equal(parseClientHello(Buffer.alloc(0)).kind, 'incomplete');
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0])).kind, 'incomplete');
  });

  test('record length 0xFFFF is invalid from the header alone', () => {
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0xff, 0xff])), /record length 65535 exceeds 16640/);
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0x41, 0x00])).kind, 'incomplete'); // 16640 is allowed
  });

  test('a zero-length record is invalid', () => {
    invalid(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), /empty handshake record/);
  });

  test('a handshake type other than ClientHello is invalid at the sixth byte', () => {
    invalid(parseClientHello(Buffer.from([22, 3, 3, 0, 40, 2])), /handshake type 2/);
  });

  test('a handshake length no ClientHello can have is invalid', () => {
    invalid(parseClientHello(record(Buffer.from([1, 0xff, 0xff, 0xff]))), /ClientHello length 16777215/);
  });

  test('bytes after the ClientHello inside its last record are invalid', () => {
    const msg = helloMessage({ extensions: [] });
    invalid(parseClientHello(record(Buffer.concat([msg, Buffer.from([0x14])]))), /after the ClientHello/);
  });

  test('a handshake header split over four one-byte records', () => {
    const frag = fragment(helloRecord({ extensions: [ext(0, sniData([0, 'tiny.test']))] }), 1);
    assert.equal(ok(parseClientHello(frag)).sni, 'tiny.test');
  });
});

describe('parseClientHello: body and extensions', () => {
  test('no extensions block at all is a ClientHello without SNI', () => {
    const h = ok(parseClientHello(helloRecord({ extensions: null })));
    assert.equal(h.sni, null);
  });

  test('malformed fixed fields', () => {
    invalid(parseClientHello(helloRecord({ sessionId: Buffer.alloc(33) })), /session_id/);
    invalid(parseClientHello(helloRecord({ suites: Buffer.from([0x13]) })), /cipher_suites/);
    invalid(parseClientHello(helloRecord({ suites: Buffer.alloc(0) })), /cipher_suites/);
    invalid(parseClientHello(helloRecord({ compression: Buffer.alloc(0) })), /compression_methods/);
    const short = Buffer.from([1, 0, 0, 3, 3, 3, 0]);
    invalid(parseClientHello(record(short)), /truncated/);
  });

  test('an extension running past the end is invalid', () => {
    const bad = Buffer.concat([u16(0), u16(50), Buffer.alloc(4)]);
    invalid(parseClientHello(helloRecord({ extensions: [bad] })), /extension 0 runs past the end/);
  });

  test('a truncated extension header is invalid', () => {
    invalid(parseClientHello(helloRecord({ extensions: [Buffer.from([0, 16, 0])] })), /extension header truncated/);
  });

  test('an extensions block shorter or longer than the message is invalid', () => {
    invalid(parseClientHello(helloRecord({ extensions: [], trailing: Buffer.from([0]) })), /extensions length/);
  });

  test('duplicate extensions are invalid; repeated GREASE extensions are ignored', () => {
    const alpn = ext(16, alpnData('h2'));
    invalid(parseClientHello(helloRecord({ extensions: [alpn, alpn] })), /duplicate extension 16/);
    const grease = ext(0x0a0a, Buffer.alloc(0));
    const h = ok(parseClientHello(helloRecord({ extensions: [grease, ext(0xfafa, u8(0)), grease, alpn] })));
    assert.deepEqual(h.alpn, ['h2']);
  });

  test('ALPN: GREASE names skipped, an empty name or list is invalid', () => {
    const h = ok(parseClientHello(helloRecord({ extensions: [ext(16, alpnData(Buffer.from([0x2a, 0x2a]), 'h2', 'http/1.1'))] })));
    assert.deepEqual(h.alpn, ['h2', 'http/1.1']);
    invalid(parseClientHello(helloRecord({ extensions: [ext(16, alpnData(''))] })), /ALPN protocol name/);
    invalid(parseClientHello(helloRecord({ extensions: [ext(16, vec(2))] })), /ALPN list/);
  });

  test('supported_versions: GREASE removed, odd length invalid', () => {
    const sv = vec(1, u16(0x3a3a), u16(0x0304), u16(0x0303));
    assert.deepEqual(ok(parseClientHello(helloRecord({ extensions: [ext(43, sv)] }))).versions, [0x0304, 0x0303]);
    invalid(parseClientHello(helloRecord({ extensions: [ext(43, vec(1, u8(3)))] })), /supported_versions/);
  });

  test('ECH: the outer server_name is the one reported', () => {
    const h = ok(parseClientHello(helloRecord({ extensions: [ext(0, sniData([0, 'public.example'])), ext(0xfe0d, Buffer.alloc(40, 1))] })));
    assert.equal(h.sni, 'public.example');
    assert.equal(h.ech, true);
  });
});

describe('parseClientHello: server_name cases (security.md 30-31)', () => {
  test('a valid name, lower-cased, one trailing dot removed', () => {
    assert.equal(ok(parseClientHello(withSni([0, 'WWW.Example.COM.']))).sni, 'www.example.com');
  });

  test('an empty server_name list is invalid', () => {
    invalid(parseClientHello(helloRecord({ extensions: [ext(0, vec(2))] })), /empty server_name list/);
  });

  test('name_type other than host_name is invalid', () => {
    invalid(parseClientHello(withSni([1, 'x.test'])), /server_name type 1/);
    invalid(parseClientHello(withSni([0, 'a.test'], [1, 'x.test'])), /server_name type 1/);
  });

  test('an empty name, a lone dot, and a name over 255 bytes are invalid; 255 bytes is fine', () => {
    invalid(parseClientHello(withSni([0, ''])), /empty host_name/);
    invalid(parseClientHello(withSni([0, '.'])), /only a dot/);
    invalid(parseClientHello(withSni([0, 'a'.repeat(256)])), /longer than 255/);
    invalid(parseClientHello(withSni([0, 'a'.repeat(300)])), /longer than 255/);
    assert.equal(ok(parseClientHello(withSni([0, 'a'.repeat(255)]))).sni, 'a'.repeat(255));
  });

  test('two host_names are invalid', () => {
    invalid(parseClientHello(withSni([0, 'a.test'], [0, 'b.test'])), /two host_name/);
  });

  test('bytes outside printable ASCII are invalid', () => {
    invalid(parseClientHello(withSni([0, 'a\0b.test'])), /printable ASCII/);
    invalid(parseClientHello(withSni([0, 'a b.test'])), /printable ASCII/);
    invalid(parseClientHello(withSni([0, Buffer.from([0x61, 0xc3, 0xa9])])), /printable ASCII/);
  });

  test('IP literals are treated as no SNI', () => {
    for (const ip of ['127.0.0.1', '::1', '[::1]', '2001:db8::1']) assert.equal(ok(parseClientHello(withSni([0, ip]))).sni, null, ip);
    assert.equal(ok(parseClientHello(withSni([0, '127.0.0.1.nip.io']))).sni, '127.0.0.1.nip.io');
  });

  test('a server_name entry running past its list is invalid', () => {
    const data = vec(2, u8(0), u16(20), Buffer.from('short'));
    invalid(parseClientHello(helloRecord({ extensions: [ext(0, data)] })), /server_name entry runs past/);
    const mismatch = Buffer.concat([u16(50), u8(0), vec(2, Buffer.from('a.test'))]);
    invalid(parseClientHello(helloRecord({ extensions: [ext(0, mismatch)] })), /server_name list length/);
  });
});

describe('parseClientHello: size and time (security.md 34)', () => {
  // ~120 KiB: 60,000 bytes of GREASE cipher suites plus a 60,000-byte padding extension, in 16 KiB records.
  const suites = Buffer.alloc(60_000, 0x0a);
  const padding = ext(21, Buffer.alloc(60_000));
  const sni = ext(0, sniData([0, 'padded.test']));

  test('a 120 KiB ClientHello parses in linear time, whole and one byte at a time', { timeout: 20_000 }, () => {
    const big = helloRecords({ suites, extensions: [padding, sni] });
    assert.ok(big.length > 120_000 && big.length < 130_000);
    let t0 = process.hrtime.bigint();
    assert.equal(ok(parseClientHello(big)).sni, 'padded.test');
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 200, 'whole parse under 200 ms');
    t0 = process.hrtime.bigint();
    assert.equal(ok(feed(big, everyByte(big))).sni, 'padded.test');
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 3000, 'byte-at-a-time parse under 3 s');
  });

  test('a 120 KiB ClientHello in 1-byte records, fed in 1 KiB reads, stays linear', { timeout: 20_000 }, () => {
    const tiny = fragment(helloRecords({ suites: Buffer.alloc(20_000, 0x0a), extensions: [sni] }), 1);
    assert.ok(tiny.length > 120_000);
    const cuts = Array.from({ length: Math.ceil(tiny.length / 1024) }, (_, i) => i * 1024);
    const t0 = process.hrtime.bigint();
    assert.equal(ok(feed(tiny, cuts)).sni, 'padded.test');
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 3000);
  });

  test('a 120 KiB ClientHello with a duplicate extension at the end is invalid', { timeout: 20_000 }, () => {
    invalid(parseClientHello(helloRecords({ suites, extensions: [padding, sni, sni] })), /duplicate extension 0/);
  });
});

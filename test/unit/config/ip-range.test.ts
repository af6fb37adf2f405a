import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIp, parseIpRange, rangeContains } from '../../../host/config/ip-range.js';
import type { IpRange } from '../../../host/config/ip-range.js';

function v4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

/** Full, uncompressed IPv6 text. */
function v6(n: bigint): string {
  return Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
}

function must(text: string): IpRange {
  const r = parseIpRange(text);
  assert.notEqual(typeof r, 'string', `${text}: ${String(r)}`);
  return r as IpRange;
}

function contains(rangeText: string, ip: string): boolean {
  const a = parseIp(ip);
  assert.ok(a, ip);
  return rangeContains(must(rangeText), a);
}

test('parseIp: literals, brackets, mapped IPv6 folds to IPv4', { timeout: 10_000 }, () => {
  assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203n });
  assert.deepEqual(parseIp('::1'), { family: 6, value: 1n });
  assert.deepEqual(parseIp('[::1]'), { family: 6, value: 1n });
  assert.deepEqual(parseIp('::ffff:10.1.2.3'), { family: 4, value: 0x0a010203n });
  assert.deepEqual(parseIp('::FFFF:a01:203'), { family: 4, value: 0x0a010203n });
  assert.deepEqual(parseIp('1:2:3:4:5:6:7:8'), { family: 6, value: 0x00010002000300040005000600070008n });
  assert.deepEqual(parseIp('1::8'), parseIp('1:0:0:0:0:0:0:8'));
  assert.deepEqual(parseIp('64:ff9b::1.2.3.4'), { family: 6, value: (0x64n << 112n) | (0xff9bn << 96n) | 0x01020304n });
  for (const bad of ['', 'x', '1.2.3', '1.2.3.256', '010.0.0.1', 'fe80::1%eth0', '1::2::3', 'example.com', '[1.2.3.4]x']) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('parseIpRange: CIDR, truncated IPv4 CIDR, a-b ranges', { timeout: 10_000 }, () => {
  assert.deepEqual(must('10.0.0.0/8'), { family: 4, lo: 0x0a000000n, hi: 0x0affffffn });
  assert.deepEqual(must('10.9.9.9/8'), must('10.0.0.0/8'), 'host bits ignored');
  assert.deepEqual(must('0/0'), { family: 4, lo: 0n, hi: 0xffffffffn });
  assert.deepEqual(must('172.16/12'), must('172.16.0.0/12'));
  assert.deepEqual(must('1.2.3.4'), { family: 4, lo: 0x01020304n, hi: 0x01020304n });
  assert.deepEqual(must(' 10.0.0.1 - 10.0.0.9 '), { family: 4, lo: 0x0a000001n, hi: 0x0a000009n });
  assert.deepEqual(must('::ffff:0:0/96'), must('0.0.0.0/0'), 'the mapped block is IPv4');
  assert.equal(must('::/0').family, 6);
  assert.equal(must('::/0').hi, (1n << 128n) - 1n);
  assert.ok(contains('fe80::/10', 'febf:ffff::1'));
  assert.ok(!contains('fe80::/10', 'fec0::1'));
  assert.ok(!contains('::/0', '1.2.3.4'), 'IPv6 ranges do not match IPv4 clients');
  assert.ok(contains('127.0.0.0/8', '::ffff:127.0.0.1'));
  const errors: [string, RegExp][] = [
    ['10.0.0.0/33', /prefix length '33'/],
    ['::/129', /prefix length '129'/],
    ['10.0.0.0/', /prefix length ''/],
    ['10.0.0.0/8x', /prefix length/],
    ['host/8', /invalid address 'host'/],
    ['10.0.0.9-10.0.0.1', /reversed/],
    ['10.0.0.1-::1', /mixes IPv4 and IPv6/],
    ['10.0.0.1-x', /invalid address 'x'/],
    ['nope', /invalid address 'nope'/],
  ];
  for (const [text, re] of errors) {
    const r = parseIpRange(text);
    assert.equal(typeof r, 'string', text);
    assert.match(r as string, re);
  }
});

const V4 = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
const V6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
const isMapped = (n: bigint): boolean => n >> 32n === 0xffffn;

test('property: an IPv4 address inside a CIDR matches, one with a prefix bit flipped does not', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(V4, V4, fc.integer({ min: 0, max: 32 }), fc.nat(), (net, host, len, flip) => {
      const hostBits = BigInt(32 - len);
      const hostMask = (1n << hostBits) - 1n;
      const range = must(`${v4(net)}/${len}`);
      const inside = (net & ~hostMask) | (host & hostMask);
      assert.ok(rangeContains(range, parseIp(v4(inside))!));
      assert.ok(rangeContains(range, parseIp(`::ffff:${v4(inside)}`)!), 'mapped form matches too');
      if (len > 0) {
        const outside = inside ^ (1n << (hostBits + BigInt(flip % len)));
        assert.ok(!rangeContains(range, parseIp(v4(outside))!));
      }
    }),
  );
});

test('property: an IPv6 address inside a CIDR matches, one with a prefix bit flipped does not', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(V6, V6, fc.integer({ min: 0, max: 128 }), fc.nat(), (net, host, len, flip) => {
      const hostBits = BigInt(128 - len);
      const hostMask = (1n << hostBits) - 1n;
      const lo = net & ~hostMask;
      const hi = lo | hostMask;
      const inside = lo | (host & hostMask);
      // A mapped address is IPv4; it only matches a range wholly inside ::ffff:0:0/96.
      fc.pre(!isMapped(inside) || (isMapped(lo) && isMapped(hi)));
      const range = must(`${v6(net)}/${len}`);
      assert.ok(rangeContains(range, parseIp(v6(inside))!));
      if (len > 0) {
        const outside = inside ^ (1n << (hostBits + BigInt(flip % len)));
        assert.ok(!rangeContains(range, parseIp(v6(outside))!));
      }
    }),
  );
});

test('property: a-b ranges contain exactly their endpoints and what lies between', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(V4, V4, V4, (a, b, x) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const range = must(`${v4(lo)}-${v4(hi)}`);
      assert.equal(rangeContains(range, parseIp(v4(x))!), x >= lo && x <= hi);
      assert.ok(rangeContains(range, parseIp(v4(lo))!) && rangeContains(range, parseIp(v4(hi))!));
    }),
  );
  fc.assert(
    fc.property(V6, V6, V6, (a, b, x) => {
      // Mapped addresses are IPv4 (see the CIDR property).
      fc.pre(![a, b, x].some(isMapped));
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const range = must(`${v6(lo)}-${v6(hi)}`);
      assert.equal(rangeContains(range, parseIp(v6(x))!), x >= lo && x <= hi);
    }),
  );
});

test('property: parseIpRange never throws on random text', { timeout: 10_000 }, () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
      const r = parseIpRange(s);
      if (typeof r !== 'string') assert.ok(r.lo <= r.hi);
    }),
  );
});

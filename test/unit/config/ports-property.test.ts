import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connectPortAllowed, parseConnectPorts, parseServerPorts } from '../../../host/config/ports.js';

const T = { timeout: 10_000 };

const AT = { file: 'f', line: 1, col: 1 };
const separator = fc.constantFrom(' ', ',', ', ', '  ', ' ,');

const descriptor = fc.record({
  port: fc.integer({ min: 1, max: 65535 }),
  transport: fc.constantFrom('', 'ssl', 'SSL', 'blind'),
  family: fc.constantFrom<readonly (4 | 6)[]>([], [4], [6], [4, 6]),
  ipIn: fc.constantFrom(null, '127.0.0.1', '::1'),
});

test('property: any list of valid server_ports descriptors round-trips', T, () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(descriptor, { selector: (d) => d.port, minLength: 1, maxLength: 8 }),
      separator,
      (list, sep) => {
        const texts = list.map((d) => {
          const ipFamily = d.ipIn === null ? [] : d.ipIn.includes(':') ? [6] : [4];
          const family = d.ipIn === null ? d.family : ipFamily;
          const opts = [
            String(d.port),
            ...(d.transport ? [d.transport] : []),
            ...family.map((f) => `ipv${f}`),
            ...(d.ipIn === null ? [] : [d.ipIn.includes(':') ? `ip-in=[${d.ipIn}]` : `ip-in=${d.ipIn}`]),
          ];
          return opts.join(':');
        });
        const { value, diagnostics } = parseServerPorts(texts.join(sep), AT);
        assert.deepEqual(diagnostics, []);
        const expected = list.flatMap((d, i) => {
          const families: (4 | 6)[] = d.ipIn !== null ? [d.ipIn.includes(':') ? 6 : 4] : d.family.length ? [...d.family] : [4];
          return families.map((family) => ({
            port: d.port,
            family,
            ssl: d.transport.toLowerCase() === 'ssl',
            blind: d.transport === 'blind',
            ipIn: d.ipIn,
            text: texts[i],
          }));
        });
        assert.deepEqual(value, expected);
      },
    ),
  );
});

const entry = fc.oneof(
  fc.integer({ min: 1, max: 65535 }).map((p) => ({ text: String(p), range: [p, p] as [number, number] })),
  fc
    .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
    .map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number])
    .map((range) => ({ text: `${range[0]}-${range[1]}`, range })),
  fc.constant({ text: '*', range: null }),
);

test('property: any list of valid connect_ports entries round-trips, and allows exactly its ports', T, () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 8 }), separator, fc.integer({ min: 1, max: 65535 }), (list, sep, probe) => {
      const { value, diagnostics } = parseConnectPorts(list.map((e) => e.text).join(sep), AT);
      assert.deepEqual(diagnostics, []);
      const ranges = list.flatMap((e) => (e.range ? [e.range] : []));
      const any = list.some((e) => e.range === null);
      assert.deepEqual(value, { any, ranges });
      assert.equal(connectPortAllowed(value, probe), any || ranges.some(([a, b]) => probe >= a && probe <= b));
    }),
  );
});

/** Random text built from the pieces these values are made of, plus anything at all. */
const portsText = fc.oneof(
  fc.array(fc.constantFrom('8080', '0', '65536', ':', ',', ' ', '-', '*', '[', ']', '::1', 'ssl', 'blind', 'ipv4', 'ipv6', 'ip-in=', 'tr-in', 'x'), {
    maxLength: 20,
  }).map((a) => a.join('')),
  fc.string({ maxLength: 40 }),
);

test('property: random text never throws; diagnostics point inside the value', T, () => {
  fc.assert(
    fc.property(portsText, (text) => {
      for (const parse of [parseServerPorts, parseConnectPorts]) {
        const { diagnostics } = parse(text, AT);
        for (const d of diagnostics) {
          assert.ok(d.col >= 1 && d.col <= Math.max(1, text.length), `${d.col} for ${JSON.stringify(text)}`);
          assert.equal(d.line, 1);
        }
      }
    }),
  );
});

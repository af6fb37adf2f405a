import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseSniYaml } from '../../../../plugins/sni_router/config.js';
import type { SniTable } from '../../../../plugins/sni_router/config.js';
import { route } from '../../../../plugins/sni_router/router.js';
import type { RouteInput, RouteResult } from '../../../../plugins/sni_router/router.js';

function table(yaml: string): SniTable {
  const { table: t, diagnostics } = parseSniYaml(yaml, '/cfg/sni.yaml', '/cfg');
  assert.deepEqual(diagnostics.filter((d) => d.severity !== 'warning'), []);
  return t;
}
const at = (sni: string | null, localPort = 4443, clientIp = '127.0.0.1'): RouteInput => ({ sni, localPort, clientIp });
/** The decision without the rule object: action, target/alpn/reason, and the rule's line. */
function brief(r: RouteResult): Record<string, unknown> {
  const { rule, ...rest } = r;
  return { ...rest, line: rule?.line ?? null };
}

const T1 = table(`sni:
  - fqdn: foo.com
    tunnel_route: localhost:8443
  - fqdn: '*.match.com'
    tunnel_route: $1.testmatch:{inbound_local_port}
  - fqdn: ''
    tunnel_route: bar.test
  - fqdn: fwd.test
    forward_route: 127.0.0.1:8080
  - fqdn: pb.test
    partial_blind_route: origin.test:9443
    tunnel_alpn: [h2]
  - fqdn: plain.test
  - fqdn: '*.pre.test'
    tunnel_route: first.test:1
  - fqdn: x.pre.test
    tunnel_route: second.test:2
`);

describe('route(): names', () => {
  test('exact name, case-insensitive, trailing dot ignored', () => {
    const want = { action: 'tunnel', target: { host: 'localhost', port: 8443, dynamicPort: false }, line: 2 };
    assert.deepEqual(brief(route(T1, at('foo.com'))), want);
    assert.deepEqual(brief(route(T1, at('FOO.com.'))), want);
  });

  test('glob: $1 captures the leftmost part, across dots; the bare domain does not match', () => {
    assert.deepEqual(brief(route(T1, at('a.b.match.com', 9000))), {
      action: 'tunnel',
      target: { host: 'a.b.testmatch', port: 9000, dynamicPort: true },
      line: 4,
    });
    assert.deepEqual(brief(route(T1, at('match.com'))), { action: 'none', line: null });
  });

  test("fqdn '' matches no SNI; a route without port uses the local port", () => {
    assert.deepEqual(brief(route(T1, at(null, 4443))), {
      action: 'tunnel',
      target: { host: 'bar.test', port: 4443, dynamicPort: true },
      line: 6,
    });
  });

  test('forward and partial-blind (with tunnel_alpn)', () => {
    assert.deepEqual(brief(route(T1, at('fwd.test'))), {
      action: 'forward',
      target: { host: '127.0.0.1', port: 8080, dynamicPort: false },
      line: 8,
    });
    assert.deepEqual(brief(route(T1, at('pb.test'))), {
      action: 'partial_blind',
      target: { host: 'origin.test', port: 9443, dynamicPort: false },
      alpn: ['h2'],
      line: 10,
    });
  });

  test('an item without a route, and no match at all, are none', () => {
    assert.deepEqual(brief(route(T1, at('plain.test'))), { action: 'none', line: 13 });
    assert.deepEqual(brief(route(T1, at('nothing.test'))), { action: 'none', line: null });
  });

  test('the earliest item wins: a glob listed before an exact name shadows it', () => {
    assert.deepEqual(brief(route(T1, at('x.pre.test'))), {
      action: 'tunnel',
      target: { host: 'first.test', port: 1, dynamicPort: false },
      line: 14,
    });
  });

  test("a bare '*' matches every name and no SNI", () => {
    const t = table("sni:\n  - fqdn: '*'\n    tunnel_route: $1.wild:443\n  - fqdn: ''\n    tunnel_route: never.test:1\n");
    assert.equal(route(t, at('a.test')).action, 'tunnel');
    assert.deepEqual(brief(route(t, at('a.test'))), { action: 'tunnel', target: { host: 'a.test.wild', port: 443, dynamicPort: false }, line: 2 });
    // No SNI: '*' matches the empty name first; $1 is '' and '.wild' is not a host, so it is rejected.
    assert.equal(route(t, at(null)).action, 'reject');
  });

  test('a capture that makes a bad host name is rejected, never dialled', () => {
    const t = table("sni:\n  - fqdn: '*.evil.test'\n    tunnel_route: $1:443\n");
    const r = route(t, at('a:22/x.evil.test'));
    assert.equal(r.action, 'reject');
    assert.match((r as { reason: string }).reason, /not a host name/);
    assert.deepEqual(brief(route(t, at('10.0.0.1.evil.test'))), {
      action: 'tunnel',
      target: { host: '10.0.0.1', port: 443, dynamicPort: false },
      line: 2,
    });
  });
});

describe('route(): ports and clients', () => {
  const t = table(`sni:
  - fqdn: a.test
    inbound_port_ranges: [443, 8080-8086]
    tunnel_route: on-ports.test:1
  - fqdn: a.test
    tunnel_route: elsewhere.test:2
  - fqdn: guarded.test
    ip_allow: 10.0.0.0/8,127.0.0.1
    tunnel_route: inner.test:3
  - fqdn: guarded-none.test
    ip_allow: 10.0.0.1
`);

  test('inbound_port_ranges restrict an item to its ports', () => {
    assert.equal(route(t, at('a.test', 443)).action, 'tunnel');
    assert.equal((route(t, at('a.test', 8086)) as { target: { host: string } }).target.host, 'on-ports.test');
    assert.equal((route(t, at('a.test', 8087)) as { target: { host: string } }).target.host, 'elsewhere.test');
  });

  test('ip_allow: an allowed client is routed, others rejected (also with an IPv4-mapped address)', () => {
    assert.equal(route(t, at('guarded.test', 443, '10.9.8.7')).action, 'tunnel');
    assert.equal(route(t, at('guarded.test', 443, '::ffff:127.0.0.1')).action, 'tunnel');
    assert.deepEqual(brief(route(t, at('guarded.test', 443, '192.0.2.1'))), {
      action: 'reject',
      reason: 'client 192.0.2.1 not in ip_allow',
      line: 7,
    });
    assert.equal(route(t, at('guarded.test', 443, '::1')).action, 'reject');
    assert.equal(route(t, at('guarded-none.test', 443, '10.0.0.1')).action, 'none');
    assert.equal(route(t, at('guarded-none.test', 443, '10.0.0.2')).action, 'reject');
  });

  test('property: route never throws, and a tunnel target is always a host name or IP', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 80 })), fc.integer({ min: 1, max: 65535 }), (sni, port) => {
        const r = route(T1, at(sni, port));
        if (r.action === 'tunnel') assert.match(r.target.host, /^[a-z0-9_.:-]+$/);
      }),
      { numRuns: 2000 },
    );
  });
});

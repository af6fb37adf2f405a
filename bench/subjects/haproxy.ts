/**
 * HAProxy in `mode tcp` with `nbthread 1` (to match one Node process), no splice:
 * an SNI router (`req.ssl_sni`) or a plain TCP forwarder.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { freePort } from '../ports.js';
import { launchListening } from './launch.js';
import { orSkip, requireBinary, type Listening, type SniRoute } from './types.js';

const START_TIMEOUT_MS = 10_000;
/** HAProxy needs about 2 FDs per connection and refuses to start if it cannot raise its limit. */
const MAX_MAXCONN = 9000;

function global(maxconn: number): string {
  return (
    `global\n  maxconn ${maxconn}\n  nbthread 1\n` +
    `defaults\n  mode tcp\n  maxconn ${maxconn}\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n`
  );
}

async function start(ctx: BenchContext, name: string, port: number, cfg: string): Promise<Listening> {
  const bin = requireBinary(['haproxy'], 'haproxy');
  return orSkip('haproxy', async () => {
    const dir = await scratchDir(ctx, name);
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, cfg);
    const p = await launchListening(ctx, name, bin, ['-db', '-f', file], [port], START_TIMEOUT_MS);
    return { procs: [{ role: 'haproxy', pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
  });
}

/** SNI router: `tcp-request inspect-delay`, accept on a ClientHello, `use_backend` by `req.ssl_sni`. */
export async function startHaproxySni(ctx: BenchContext, routes: readonly SniRoute[]): Promise<Listening> {
  const port = await freePort();
  let cfg =
    global(MAX_MAXCONN) +
    `frontend sni\n  bind 127.0.0.1:${port}\n  tcp-request inspect-delay 5s\n` +
    '  tcp-request content accept if { req.ssl_hello_type 1 }\n';
  routes.forEach((r, i) => {
    cfg += `  use_backend be${i} if { req.ssl_sni -i ${r.names.join(' ')} }\n`;
  });
  cfg += '  default_backend be0\n';
  routes.forEach((r, i) => {
    cfg += `backend be${i}\n  server s${i} 127.0.0.1:${r.port}\n`;
  });
  return start(ctx, 'haproxy-sni', port, cfg);
}

/** Plain TCP forwarder to one port (the idle-tunnel peer). */
export async function startHaproxyTcp(ctx: BenchContext, target: number, maxconn: number): Promise<Listening> {
  const port = await freePort();
  const cfg =
    global(Math.min(MAX_MAXCONN, maxconn * 2 + 100)) +
    `frontend plain\n  bind 127.0.0.1:${port}\n  default_backend be\n` +
    `backend be\n  server s 127.0.0.1:${target}\n`;
  return start(ctx, 'haproxy-tcp', port, cfg);
}

/** nginx `stream` + `ssl_preread` SNI router, one worker (master + worker both counted). */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { freePort } from '../ports.js';
import { launchListening } from './launch.js';
import { orSkip, requireBinary, SkipError, type Listening, type SniRoute } from './types.js';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const START_TIMEOUT_MS = 10_000;

export async function startNginxSni(ctx: BenchContext, routes: readonly SniRoute[]): Promise<Listening> {
  const bin = requireBinary(['nginx'], 'nginx-light');
  if (!existsSync(STREAM_MODULE)) {
    throw new SkipError(`${STREAM_MODULE} not found (Debian package libnginx-mod-stream; --install-peers installs it)`);
  }
  return orSkip('nginx', async () => {
    const dir = await scratchDir(ctx, 'nginx');
    const port = await freePort();
    const map = routes.flatMap((r) => r.names.map((n) => `    ${n} 127.0.0.1:${r.port};`)).join('\n');
    const conf =
      `load_module ${STREAM_MODULE};\nworker_processes 1;\npid ${join(dir, 'nginx.pid')};\n` +
      `error_log ${join(dir, 'error.log')} warn;\nworker_rlimit_nofile 20000;\n` +
      'events { worker_connections 16000; }\n' +
      `stream {\n  map $ssl_preread_server_name $be {\n${map}\n    default 127.0.0.1:${routes[0]?.port ?? 0};\n  }\n` +
      `  server { listen 127.0.0.1:${port}; ssl_preread on; proxy_pass $be; }\n}\n`;
    const file = join(dir, 'nginx.conf');
    await writeFile(file, conf);
    const args = ['-e', join(dir, 'error.log'), '-p', dir, '-c', file, '-g', 'daemon off;'];
    const p = await launchListening(ctx, 'nginx', bin, args, [port], START_TIMEOUT_MS);
    return { procs: [{ role: 'nginx', pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
  });
}

/**
 * squid as a CONNECT proxy: one process (`-N`, workers 1), no cache, no access log. It drops to
 * its own user, so its scratch dir is world-writable.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { freePort } from '../ports.js';
import { launchListening } from './launch.js';
import { orSkip, requireBinary, type Listening } from './types.js';

const START_TIMEOUT_MS = 20_000;

export async function startSquid(ctx: BenchContext): Promise<Listening> {
  const bin = requireBinary(['squid'], 'squid');
  return orSkip('squid', async () => {
    const dir = await scratchDir(ctx, 'squid');
    await chmod(dir, 0o777);
    const port = await freePort();
    const conf = [
      `http_port 127.0.0.1:${port}`,
      'acl lh src 127.0.0.1/32',
      'http_access allow lh',
      'http_access deny all',
      'cache deny all',
      'cache_mem 8 MB',
      'access_log none',
      `cache_log ${join(dir, 'cache.log')}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `coredump_dir ${dir}`,
      'workers 1',
      'shutdown_lifetime 1 seconds',
      'max_filedescriptors 16384',
      'dns_nameservers 127.0.0.1',
      'pinger_enable off',
      '',
    ].join('\n');
    const file = join(dir, 'squid.conf');
    await writeFile(file, conf);
    const p = await launchListening(ctx, 'squid', bin, ['-N', '-f', file], [port], START_TIMEOUT_MS);
    return { procs: [{ role: 'squid', pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
  });
}

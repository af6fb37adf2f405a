/** tinyproxy as a CONNECT proxy (thread per connection), in the foreground (`-d`). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { freePort } from '../ports.js';
import { launchListening } from './launch.js';
import { orSkip, requireBinary, type Listening } from './types.js';

const START_TIMEOUT_MS = 10_000;

export async function startTinyproxy(ctx: BenchContext): Promise<Listening> {
  const bin = requireBinary(['tinyproxy'], 'tinyproxy');
  return orSkip('tinyproxy', async () => {
    const dir = await scratchDir(ctx, 'tinyproxy');
    const port = await freePort();
    const conf = [
      'User nobody',
      'Group nogroup',
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 600',
      'MaxClients 4000',
      'Allow 127.0.0.1',
      'LogLevel Error',
      '',
    ].join('\n');
    const file = join(dir, 'tinyproxy.conf');
    await writeFile(file, conf);
    const p = await launchListening(ctx, 'tinyproxy', bin, ['-d', '-c', file], [port], START_TIMEOUT_MS);
    return { procs: [{ role: 'tinyproxy', pid: p.pid }], port, stop: () => ctx.reg.stop(p) };
  });
}

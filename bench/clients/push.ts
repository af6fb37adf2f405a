/**
 * Bulk transfer client: --route JSON --bytes N --dir up|down [--conns C] [--timeout S].
 * Opens C connections in parallel; each moves N/C bytes in 64 KiB writes, honouring back-pressure.
 * Upload ends on the sink's `OK\n`; download when all bytes arrived. Prints
 * {"bytes","secs","mbps","clientCpuS"}: wall time from the first dial to the last completion.
 */
import { performance } from 'node:perf_hooks';
import type { SecureContext } from 'node:tls';
import { emit, flags, num, runMain, selfCpuSeconds, str } from './cli.js';
import { dial, secureContextFor, withTimeout, type Dialed } from './dial.js';
import { CHUNK_BYTES, dataHeader, parseRoute, UPLOAD_ACK, type Direction, type Route } from './wire.js';

const FILL = Buffer.alloc(CHUNK_BYTES, 0x62);

function upload(d: Dialed, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = d.socket;
    let ack = '';
    s.on('data', (b: Buffer) => {
      ack += b.toString('latin1');
      if (ack.includes(UPLOAD_ACK)) resolve();
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed before the sink's ack (${ack.length} ack bytes)`)));
    s.resume();
    s.write(dataHeader('up', bytes));
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const c = left >= CHUNK_BYTES ? FILL : FILL.subarray(0, left);
        left -= c.length;
        if (!s.write(c)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

function download(d: Dialed, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = d.socket;
    let got = d.extra.length;
    s.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= bytes) resolve();
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
    s.resume();
    s.write(dataHeader('down', bytes));
  });
}

async function one(route: Route, ctx: SecureContext | null, dir: Direction, bytes: number): Promise<void> {
  const d = await dial(route, ctx);
  try {
    await (dir === 'up' ? upload(d, bytes) : download(d, bytes));
  } finally {
    d.socket.destroy();
  }
}

async function main(): Promise<void> {
  const f = flags({
    route: { type: 'string' },
    bytes: { type: 'string' },
    dir: { type: 'string', default: 'up' },
    conns: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '300' },
  });
  const route = parseRoute(str(f, 'route'));
  const total = num(f, 'bytes');
  const conns = num(f, 'conns');
  const dir: Direction = f.dir === 'down' ? 'down' : 'up';
  const ctx = route.tls === null ? null : secureContextFor(route.tls);
  const per = Math.floor(total / conns);
  const t0 = performance.now();
  const jobs = Array.from({ length: conns }, () => one(route, ctx, dir, per));
  await withTimeout(Promise.all(jobs), num(f, 'timeout') * 1000, 'transfer');
  const secs = (performance.now() - t0) / 1000;
  const bytes = per * conns;
  emit({ bytes, secs, mbps: bytes / 1e6 / secs, clientCpuS: selfCpuSeconds() });
}

runMain(main);

/**
 * Idle tunnel holder: --route JSON --n N [--conc C] [--hold S].
 * Opens N tunnels, C at a time, each proven end to end with a 1-byte echo, then prints
 * {"ready","failed","firstError","openSecs"} and holds them until a `close` line arrives on stdin
 * or --hold seconds pass. Then it closes them all and prints {"closed"}.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { emit, flags, num, runMain, str } from './cli.js';
import { dial, echoByte, secureContextFor, withTimeout } from './dial.js';
import { ATTEMPT_TIMEOUT_MS } from './loop.js';
import { parseRoute } from './wire.js';

function closeRequested(holdSecs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, holdSecs * 1000);
    const rl = createInterface({ input: process.stdin });
    const finish = (): void => {
      clearTimeout(timer);
      rl.close();
      resolve();
    };
    rl.on('line', (line) => {
      if (line.trim() === 'close') finish();
    });
    rl.on('close', finish);
  });
}

async function main(): Promise<void> {
  const f = flags({
    route: { type: 'string' },
    n: { type: 'string', default: '1000' },
    conc: { type: 'string', default: '50' },
    hold: { type: 'string', default: '60' },
  });
  const route = parseRoute(str(f, 'route'));
  const n = num(f, 'n');
  const ctx = route.tls === null ? null : secureContextFor(route.tls);
  const open: Socket[] = [];
  let started = 0;
  let failed = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  const loop = async (): Promise<void> => {
    while (started < n) {
      started++;
      try {
        const d = await withTimeout(dial(route, ctx), ATTEMPT_TIMEOUT_MS, 'dial');
        open.push(d.socket);
        d.socket.on('error', () => d.socket.destroy());
        await withTimeout(echoByte(d), ATTEMPT_TIMEOUT_MS, 'echo');
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: num(f, 'conc') }, loop));
  emit({ ready: n - failed, failed, firstError, openSecs: (performance.now() - t0) / 1000 });
  await closeRequested(num(f, 'hold'));
  for (const s of open) s.destroy();
  emit({ closed: open.length });
}

runMain(main);

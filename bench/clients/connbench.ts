/**
 * Connection set-up benchmark: --route JSON --until up|reply|echo --n N [--conc C] [--secs S].
 * Each attempt dials a fresh connection and is timed from before connect() until: the first hop
 * is up (`up`), the CONNECT reply head arrived (`reply`), or a 1-byte echo came back through the
 * whole path (`echo`); then the socket is destroyed. Prints the loop.ts result as JSON.
 */
import { performance } from 'node:perf_hooks';
import { emit, flags, num, runMain, str } from './cli.js';
import { dial, echoByte, secureContextFor } from './dial.js';
import { runAttempts, type Attempt } from './loop.js';
import { parseRoute } from './wire.js';

async function main(): Promise<void> {
  const f = flags({
    route: { type: 'string' },
    until: { type: 'string', default: 'reply' },
    n: { type: 'string', default: '1000' },
    conc: { type: 'string', default: '1' },
    secs: { type: 'string', default: '60' },
  });
  const route = parseRoute(str(f, 'route'));
  const until = str(f, 'until');
  if (until !== 'up' && until !== 'reply' && until !== 'echo') throw new Error(`--until must be up, reply or echo`);
  if (until === 'reply' && route.connect === null) throw new Error('--until reply needs a CONNECT route');
  const ctx = route.tls === null ? null : secureContextFor(route.tls);
  const attempt = async (): Promise<Attempt> => {
    const t0 = performance.now();
    const d = await dial(route, ctx);
    try {
      if (until === 'echo') await echoByte(d);
      const ms = performance.now() - t0;
      return { ms: until === 'up' ? d.upMs : until === 'reply' ? (d.replyMs ?? ms) : ms, replyMs: d.replyMs };
    } finally {
      d.socket.destroy();
    }
  };
  emit(await runAttempts(attempt, { n: num(f, 'n'), conc: num(f, 'conc'), secs: num(f, 'secs') }));
}

runMain(main);

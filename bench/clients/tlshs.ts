/**
 * TLS handshake benchmark: --host H --port P --ca FILE --names a.test,b.test --cn CN --n N
 * [--conc C] [--secs S]. Full TLS handshakes (no resumption) with one shared SecureContext, SNI
 * rotating over --names, chain verified against --ca and the leaf CN checked. Timed from before
 * connect() until 'secureConnect'. Prints the loop.ts result as JSON.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, createSecureContext, type TLSSocket } from 'node:tls';
import { emit, flags, num, runMain, str } from './cli.js';
import { runAttempts, type Attempt } from './loop.js';

async function main(): Promise<void> {
  const f = flags({
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    ca: { type: 'string' },
    names: { type: 'string' },
    cn: { type: 'string' },
    n: { type: 'string', default: '1000' },
    conc: { type: 'string', default: '1' },
    secs: { type: 'string', default: '60' },
  });
  const host = str(f, 'host');
  const port = num(f, 'port');
  const names = str(f, 'names').split(',');
  const cn = str(f, 'cn');
  const secureContext = createSecureContext({ ca: readFileSync(str(f, 'ca')) });
  const attempt = (i: number): Promise<Attempt> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const servername = names[i % names.length] ?? names[0] ?? '';
      const s: TLSSocket = connect({ host, port, servername, secureContext, session: undefined }, () => {
        const ms = performance.now() - t0;
        const subject = s.getPeerCertificate().subject;
        s.destroy();
        if (subject?.CN !== cn) reject(new Error(`certificate CN ${String(subject?.CN)} is not ${cn}`));
        else resolve({ ms, replyMs: null });
      });
      s.once('error', (err) => {
        s.destroy();
        reject(err);
      });
    });
  emit(await runAttempts(attempt, { n: num(f, 'n'), conc: num(f, 'conc'), secs: num(f, 'secs') }));
}

runMain(main);

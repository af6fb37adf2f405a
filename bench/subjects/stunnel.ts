/**
 * The stunnel bridge pair: stunnel "in" (client = yes: plain in, mutual TLS out, checkHost
 * peer.test) and stunnel "out" (requireCert + verifyChain: mutual TLS in, plain out), one service
 * pair per target port. The bridge-shaped peer for tsproxy's tls_bridge ingress + peer.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, type BenchContext } from '../context.js';
import { PEER_NAMES } from '../pki.js';
import { freePorts } from '../ports.js';
import { waitForPort } from '../procs.js';
import { orSkip, requireBinary, type Started } from './types.js';

const START_TIMEOUT_MS = 10_000;

export interface StunnelPair extends Started {
  /** The "in" accept port for each target port. */
  readonly entry: ReadonlyMap<number, number>;
}

/** Start the pair with one service per target port (sink data, sink echo, ...). */
export async function startStunnelPair(ctx: BenchContext, targets: readonly number[]): Promise<StunnelPair> {
  const bin = requireBinary(['stunnel4', 'stunnel'], 'stunnel4');
  return orSkip('stunnel', async () => {
    const dir = await scratchDir(ctx, 'stunnel');
    const ports = await freePorts(targets.length * 2);
    const { pki } = ctx;
    const head = 'foreground = yes\npid =\ndebug = 3\n';
    let inConf = head;
    let outConf = head;
    const entry = new Map<number, number>();
    targets.forEach((target, i) => {
      const accept = ports[2 * i] as number;
      const mid = ports[2 * i + 1] as number;
      entry.set(target, accept);
      inConf +=
        `[in-${target}]\nclient = yes\naccept = 127.0.0.1:${accept}\nconnect = 127.0.0.1:${mid}\n` +
        `cert = ${pki.client.cert}\nkey = ${pki.client.key}\nCAfile = ${pki.ca}\n` +
        `verifyChain = yes\ncheckHost = ${PEER_NAMES[0]}\nsni = ${PEER_NAMES[0]}\n`;
      outConf +=
        `[out-${target}]\naccept = 127.0.0.1:${mid}\nconnect = 127.0.0.1:${target}\n` +
        `cert = ${pki.peer.cert}\nkey = ${pki.peer.key}\nCAfile = ${pki.ca}\nverifyChain = yes\nrequireCert = yes\n`;
    });
    await writeFile(join(dir, 'in.conf'), inConf);
    await writeFile(join(dir, 'out.conf'), outConf);
    const out = ctx.reg.spawn('stunnel-out', bin, [join(dir, 'out.conf')]);
    const inn = ctx.reg.spawn('stunnel-in', bin, [join(dir, 'in.conf')]);
    const stop = async (): Promise<void> => {
      await Promise.all([ctx.reg.stop(inn), ctx.reg.stop(out)]);
    };
    try {
      for (let i = 0; i < targets.length; i++) {
        await waitForPort('127.0.0.1', ports[2 * i + 1] as number, START_TIMEOUT_MS, out);
        await waitForPort('127.0.0.1', ports[2 * i] as number, START_TIMEOUT_MS, inn);
      }
    } catch (err) {
      await stop();
      throw err;
    }
    return {
      procs: [
        { role: 'in', pid: inn.pid },
        { role: 'out', pid: out.pid },
      ],
      entry,
      stop,
    };
  });
}

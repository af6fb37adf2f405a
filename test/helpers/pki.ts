/** A throwaway ECDSA P-256 test PKI made with the openssl CLI. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './tools.js';

/** File paths of a certificate, its key, and both concatenated (cert then key, as HAProxy and stunnel like). */
export interface CertPair {
  cert: string;
  key: string;
  combined: string;
}

export interface Pki {
  dir: string;
  /** The trusted CA's certificate (PEM file). */
  ca: string;
  caKey: string;
  /** A server certificate signed by the CA: SANs are `name` plus `altNames` (IP literals become IP SANs). */
  server(name: string, altNames?: readonly string[]): Promise<CertPair>;
  /** A client certificate signed by the CA (clientAuth), CN `cn`. */
  client(cn: string): Promise<CertPair>;
  /** A second CA nobody trusts, and its server cert for `localhost` / 127.0.0.1 / ::1. */
  untrusted: { ca: string; server: CertPair };
  /** A server cert for `localhost` / 127.0.0.1 / ::1, signed by the trusted CA, already expired. */
  expiredServer: CertPair;
  /** Removes the directory. A no-op for the shared per-process PKI (it goes at process exit). */
  cleanup(): Promise<void>;
}

/** Certificates and keys as Buffers, ready for `tls.createSecureContext` / `tls.connect`. */
export function loadPair(pair: CertPair): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(pair.cert), key: readFileSync(pair.key) };
}

const OPENSSL_TIMEOUT_MS = 10_000;
const LOCAL_NAMES = ['localhost', '127.0.0.1', '::1'];

async function openssl(args: readonly string[], input?: Buffer): Promise<Buffer> {
  const r = await run('openssl', args, { timeoutMs: OPENSSL_TIMEOUT_MS, ...(input ? { input } : {}) });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

function san(names: readonly string[]): string {
  return [...new Set(names)].map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/** A self-signed CA in `dir/<base>.pem` + `.key`. */
async function makeCa(dir: string, base: string, cn: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${base}.pem`);
  const key = join(dir, `${base}.key`);
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-subj', `/CN=${cn}`, '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

interface LeafSpec {
  base: string;
  cn: string;
  ext: string;
  days: number;
}

/** A leaf key and CSR, signed by `ca`; `days` -1 gives a certificate that expired a day ago. */
async function makeLeaf(dir: string, ca: { cert: string; key: string }, spec: LeafSpec): Promise<CertPair> {
  const cert = join(dir, `${spec.base}.pem`);
  const key = join(dir, `${spec.base}.key`);
  const extFile = join(dir, `${spec.base}.ext`);
  writeFileSync(extFile, `basicConstraints=CA:FALSE\n${spec.ext}\n`);
  const csr = await openssl([
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${spec.cn}`,
  ]);
  await openssl(
    ['x509', '-req', '-CA', ca.cert, '-CAkey', ca.key, '-days', String(spec.days), '-sha256', '-extfile', extFile, '-out', cert],
    csr,
  );
  const combined = join(dir, `${spec.base}-combined.pem`);
  writeFileSync(combined, Buffer.concat([readFileSync(cert), readFileSync(key)]));
  return { cert, key, combined };
}

function fileSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9.-]/g, '_');
}

async function generate(dir: string, shared: boolean): Promise<Pki> {
  mkdirSync(dir, { recursive: true });
  const [ca, other] = await Promise.all([makeCa(dir, 'ca', 'tsproxy-test-ca'), makeCa(dir, 'untrusted-ca', 'untrusted-test-ca')]);
  const serverExt = (names: readonly string[]): string => `subjectAltName=${san(names)}\nextendedKeyUsage=serverAuth`;
  const [untrustedServer, expiredServer] = await Promise.all([
    makeLeaf(dir, other, { base: 'untrusted-server', cn: 'localhost', ext: serverExt(LOCAL_NAMES), days: 30 }),
    makeLeaf(dir, ca, { base: 'expired-server', cn: 'localhost', ext: serverExt(LOCAL_NAMES), days: -1 }),
  ]);
  const issued = new Map<string, Promise<CertPair>>();
  const once = (id: string, make: () => Promise<CertPair>): Promise<CertPair> => {
    let p = issued.get(id);
    if (!p) {
      p = make();
      issued.set(id, p);
    }
    return p;
  };
  return {
    dir,
    ca: ca.cert,
    caKey: ca.key,
    server: (name, altNames = []) => {
      const names = [name, ...altNames];
      return once(`server ${names.join(' ')}`, () =>
        makeLeaf(dir, ca, { base: `server-${fileSafe(names.join('+'))}`, cn: name, ext: serverExt(names), days: 30 }),
      );
    },
    client: (cn) =>
      once(`client ${cn}`, () =>
        makeLeaf(dir, ca, { base: `client-${fileSafe(cn)}`, cn, ext: 'extendedKeyUsage=clientAuth', days: 30 }),
      ),
    untrusted: { ca: other.cert, server: untrustedServer },
    expiredServer,
    cleanup: async () => {
      if (!shared) rmSync(dir, { recursive: true, force: true });
    },
  };
}

let sharedPki: Promise<Pki> | null = null;

/**
 * With no `dir`: the PKI shared by every test in this process (made once, removed at exit; `cleanup` is a no-op).
 * With `dir`: a fresh PKI written there, removed by `cleanup`.
 */
export function makePki(dir?: string): Promise<Pki> {
  if (dir !== undefined) return generate(dir, false);
  if (!sharedPki) {
    const tmp = mkdtempSync(join(tmpdir(), 'tsproxy-pki-'));
    process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
    sharedPki = generate(tmp, true);
    sharedPki.catch(() => {
      sharedPki = null;
    });
  }
  return sharedPki;
}

/**
 * A throwaway ECDSA P-256 test PKI made with the openssl CLI at run time:
 * ca, server (a..d.test, CN backend.test), peer (peer.test, peer.ats, CN peer.test),
 * client (clientAuth). Files are `<name>.pem` and `<name>.key` in `dir`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SNI_NAMES = ['a.test', 'b.test', 'c.test', 'd.test'] as const;
export const SERVER_CN = 'backend.test';
/** The bridge peer's name: stunnel checks peer.test, ATS and tsproxy reach it as peer.ats. */
export const PEER_NAMES = ['peer.test', 'peer.ats'] as const;

export interface Pki {
  readonly dir: string;
  readonly ca: string;
  readonly server: { readonly cert: string; readonly key: string };
  readonly peer: { readonly cert: string; readonly key: string };
  readonly client: { readonly cert: string; readonly key: string };
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function leaf(dir: string, name: string, cn: string, san: string, eku: string): Promise<void> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  await writeFile(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${eku}\nbasicConstraints=CA:FALSE\n`);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '7', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`,
  ]);
}

/** Make the PKI in `dir` (which must exist). */
export async function makePki(dir: string): Promise<Pki> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  await openssl(dir, ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '7', '-subj', '/CN=tsproxy-bench-ca', '-out', 'ca.pem']);
  const dns = (names: readonly string[]): string => names.map((n) => `DNS:${n}`).join(',');
  await leaf(dir, 'server', SERVER_CN, `${dns([...SNI_NAMES, 'localhost'])},IP:127.0.0.1`, 'serverAuth');
  await leaf(dir, 'peer', PEER_NAMES[0], `${dns(PEER_NAMES)},IP:127.0.0.1`, 'serverAuth');
  await leaf(dir, 'client', 'client.test', 'DNS:client.test', 'clientAuth');
  const pair = (n: string): { cert: string; key: string } => ({ cert: join(dir, `${n}.pem`), key: join(dir, `${n}.key`) });
  return { dir, ca: join(dir, 'ca.pem'), server: pair('server'), peer: pair('peer'), client: pair('client') };
}

/**
 * Test PKI for the net tests, made with the `openssl` CLI in a temp dir (EC P-256, valid two days):
 * a CA; a server certificate for peer.test (SANs peer.test, *.wild.test, 127.0.0.1, ::1); a second
 * server certificate for other.test; a client certificate; an untrusted CA with its own peer.test
 * certificate; an expired peer.test certificate. Local to these tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordsConfig } from '../../../host/config/types.js';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface Pki {
  readonly dir: string;
  readonly ca: string;
  readonly caPem: string;
  readonly server: CertFiles;
  readonly other: CertFiles;
  readonly client: CertFiles;
  readonly untrustedCa: string;
  readonly untrustedServer: CertFiles;
  readonly untrustedClient: CertFiles;
  readonly expired: CertFiles;
  remove(): void;
}

/** True when the openssl CLI can be run. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Make the whole PKI (about 20 openssl runs, a fraction of a second). */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'tsproxy-net-pki-'));
  const p = (f: string): string => join(dir, f);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ca = (name: string): void =>
    ssl('req', '-x509', ...EC, '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`), '-days', '2', '-subj', `/CN=tsproxy ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  let serial = 1;
  const leaf = (name: string, signer: string, cn: string, ext: string, days = '2'): CertFiles => {
    writeFileSync(p(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
    ssl('req', '-new', ...EC, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${signer}.pem`), '-CAkey', p(`${signer}.key`), '-set_serial', String(serial++), '-days', days, '-out', p(`${name}.pem`), '-extfile', p(`${name}.ext`));
    return { cert: p(`${name}.pem`), key: p(`${name}.key`), certPem: readFileSync(p(`${name}.pem`), 'latin1'), keyPem: readFileSync(p(`${name}.key`), 'latin1') };
  };
  const serverExt = (names: string): string => `extendedKeyUsage=serverAuth\nsubjectAltName=${names}`;
  ca('ca');
  ca('untrusted-ca');
  return {
    dir,
    ca: p('ca.pem'),
    caPem: readFileSync(p('ca.pem'), 'latin1'),
    server: leaf('server', 'ca', 'peer.test', serverExt('DNS:peer.test,DNS:*.wild.test,IP:127.0.0.1,IP:::1')),
    other: leaf('other', 'ca', 'other.test', serverExt('DNS:other.test')),
    client: leaf('client', 'ca', 'client.test', 'extendedKeyUsage=clientAuth'),
    untrustedCa: p('untrusted-ca.pem'),
    untrustedServer: leaf('untrusted-server', 'untrusted-ca', 'peer.test', serverExt('DNS:peer.test,IP:127.0.0.1')),
    untrustedClient: leaf('untrusted-client', 'untrusted-ca', 'client.test', 'extendedKeyUsage=clientAuth'),
    expired: leaf('expired', 'ca', 'peer.test', serverExt('DNS:peer.test'), '-1'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** proxy.config.ssl.* with nothing configured (ENFORCED, ALL, system roots): tests spread it and set what they need. */
export const SSL_BASE: RecordsConfig['ssl'] = {
  serverCertDir: '/',
  serverKeyDir: '/',
  clientCaForInbound: null,
  certificationLevel: 0,
  verifyServerPolicy: 'ENFORCED',
  verifyServerProperties: 'ALL',
  clientCa: null,
  clientCert: null,
  clientKey: null,
  originSessionCacheSize: 0,
};

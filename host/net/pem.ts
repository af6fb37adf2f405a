/**
 * PEM helpers for building TLS contexts: CA bundles from a file or a directory (Node has no
 * CApath), and the names a certificate answers to (CN and DNS SANs) for SNI selection.
 * Errors are plain Errors with the path in the message; callers wrap them with the record or
 * config line that named the path. Nothing here ever prints file contents.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate block in a PEM text, in order. */
export function pemCertificates(text: string): string[] {
  return text.match(CERT_BLOCK) ?? [];
}

/**
 * The CA certificates at `path`: a PEM file, or every regular file in a directory that holds
 * PEM certificates (files without any are skipped, so OpenSSL's hashed links and README files
 * are harmless). Throws when the path cannot be read or no certificate is found: an empty
 * bundle would silently trust nothing.
 */
export function readCaBundle(path: string): string[] {
  const st = statSync(path);
  const certs: string[] = [];
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) {
      const file = join(path, name);
      if (!statSync(file).isFile()) continue;
      certs.push(...pemCertificates(readFileSync(file, 'latin1')));
    }
    if (certs.length === 0) throw new Error(`no PEM certificate in any file of directory ${path}`);
  } else {
    certs.push(...pemCertificates(readFileSync(path, 'latin1')));
    if (certs.length === 0) throw new Error(`no PEM certificate in ${path}`);
  }
  return certs;
}

/** What a server certificate is for: its names (lower case) and validity. */
export interface CertInfo {
  /** DNS SANs, then the CN if it is not among them; `*.x` wildcards kept as written. */
  readonly names: readonly string[];
  readonly validTo: Date;
  readonly validFrom: Date;
}

/** Parse the first certificate of a PEM text (the leaf of a chain file). */
export function certInfo(pem: string): CertInfo {
  const first = pemCertificates(pem)[0];
  if (first === undefined) throw new Error('no PEM certificate');
  const x = new X509Certificate(first);
  const names: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m?.[1] !== undefined) names.push(m[1].trim().toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1]?.trim().toLowerCase();
  if (cn !== undefined && cn !== '' && !names.includes(cn)) names.push(cn);
  return { names, validTo: new Date(x.validTo), validFrom: new Date(x.validFrom) };
}

#!/usr/bin/env node
// The example's backends, each answering every request with its own name:
//   foo   https://127.0.0.1:18441 (certs/foo.pem: foo.example, foo.backend, admin.example)
//   apps  https://127.0.0.1:18442 (certs/apps.pem: *.apps.example, *.apps.backend)
//   plain http://127.0.0.1:18080  (plaintext: the target of forward_route)
// Run ./make-certs.sh first. Stop with Ctrl-C.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const certs = join(dirname(fileURLToPath(import.meta.url)), 'certs');
const answer = (name) => (req, res) => {
  const body = `${name} backend: ${req.method} ${req.headers.host ?? ''}${req.url}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
const tlsOpts = (n) => ({ key: readFileSync(join(certs, `${n}.key`)), cert: readFileSync(join(certs, `${n}.pem`)) });

https.createServer(tlsOpts('foo'), answer('foo')).listen(18441, '127.0.0.1');
https.createServer(tlsOpts('apps'), answer('apps')).listen(18442, '127.0.0.1');
http.createServer(answer('plain')).listen(18080, '127.0.0.1');
console.log('backends: foo https://127.0.0.1:18441, apps https://127.0.0.1:18442, plain http://127.0.0.1:18080');

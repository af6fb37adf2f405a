/**
 * The sink: the far end of every benchmark path, in its own process so its CPU is not the proxy's.
 *   --data PORT        plain data listener (wire.ts protocol)
 *   --echo PORT        plain echo listener
 *   --tls-ports P,P    TLS data listeners (with --cert/--key), e.g. the SNI backends
 * Ports may be 0. Prints {"data":P,"echo":P,"tls":[P,...]} once listening; runs until killed.
 */
import { readFileSync } from 'node:fs';
import { createServer as netServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as tlsServer } from 'node:tls';
import { emit, flags, runMain, str } from './cli.js';
import { CHUNK_BYTES, HEADER_BYTES, KIND_DOWNLOAD, KIND_UPLOAD, UPLOAD_ACK } from './wire.js';

const FILL = Buffer.alloc(CHUNK_BYTES, 0x61);

function sendBytes(sock: Socket, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const c = left >= CHUNK_BYTES ? FILL : FILL.subarray(0, left);
      left -= c.length;
      if (!sock.write(c)) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

function serveData(sock: Socket): void {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  let head: Buffer = Buffer.alloc(0);
  let expect = -1;
  let got = 0;
  sock.on('data', (d: Buffer) => {
    if (expect < 0) {
      head = head.length === 0 ? d : Buffer.concat([head, d]);
      if (head.length < HEADER_BYTES) return;
      const kind = head[0];
      const n = Number(head.readBigUInt64BE(1));
      const rest = head.length - HEADER_BYTES;
      head = Buffer.alloc(0);
      if (kind === KIND_DOWNLOAD) {
        expect = 0;
        sendBytes(sock, n);
        return;
      }
      if (kind !== KIND_UPLOAD) {
        sock.destroy();
        return;
      }
      expect = n;
      got = rest;
    } else {
      got += d.length;
    }
    if (expect > 0 && got >= expect) {
      expect = 0;
      sock.write(UPLOAD_ACK);
    }
  });
}

function serveEcho(sock: Socket): void {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.on('data', (d: Buffer) => sock.write(d));
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  const f = flags({
    data: { type: 'string', default: '0' },
    echo: { type: 'string', default: '0' },
    'tls-ports': { type: 'string', default: '' },
    cert: { type: 'string' },
    key: { type: 'string' },
  });
  const data = await listen(netServer({ noDelay: true }, serveData), Number(f.data));
  const echo = await listen(netServer({ noDelay: true }, serveEcho), Number(f.echo));
  const tlsPorts: number[] = [];
  const wanted = (f['tls-ports'] ?? '').split(',').filter((p) => p !== '');
  if (wanted.length > 0) {
    const opts = { cert: readFileSync(str(f, 'cert')), key: readFileSync(str(f, 'key')) };
    for (const p of wanted) {
      const server = tlsServer(opts, serveData);
      server.on('tlsClientError', () => undefined);
      tlsPorts.push(await listen(server, Number(p)));
    }
  }
  emit({ data, echo, tls: tlsPorts });
  await new Promise<never>(() => undefined);
}

runMain(main);

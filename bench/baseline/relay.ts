/**
 * Minimal Node relays: the floor a Node proxy cannot beat, run as a reference peer with
 * --node-baseline (perf-baselines.md's "minimal Node" rows). One shared SecureContext, TCP_NODELAY
 * on every socket, pipe() both ways. Modes:
 *   connect     http.Server 'connect' -> net.connect -> 200 -> pipe
 *   bridge-in   http.Server 'connect' -> mutual TLS to --peer-port -> CONNECT inside -> 200 -> pipe
 *   bridge-out  https.Server (client certificate required) 'connect' -> net.connect -> 200 -> pipe
 *   sni         buffer the ClientHello, route its server_name (--routes name=port,...), pipe
 * Prints {"port":P} once listening on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { createServer as httpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as httpsServer } from 'node:https';
import { connect as netConnect, createServer as netServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { emit, flags, num, runMain, str } from '../clients/cli.js';
import { readReplyHead } from '../clients/dial.js';
import { clientHelloSni } from './client-hello.js';

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';
const MAX_HELLO = 16 * 1024;

function splice(a: Duplex, b: Duplex): void {
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
  a.pipe(b);
  b.pipe(a);
}

function target(req: IncomingMessage, hosts: ReadonlyMap<string, string>): { host: string; port: number } {
  const url = req.url ?? '';
  const i = url.lastIndexOf(':');
  const name = url.slice(0, i);
  return { host: hosts.get(name) ?? name, port: Number(url.slice(i + 1)) };
}

/** CONNECT handling: dial with `open`, answer 200, forward the early bytes, pipe. */
function onConnect(server: Server, open: (req: IncomingMessage) => Promise<Duplex>): void {
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    (client as Socket).setNoDelay?.(true);
    client.on('error', () => client.destroy());
    open(req).then(
      (up) => {
        client.write(ESTABLISHED);
        if (head.length > 0) up.write(head);
        splice(client, up);
      },
      () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'),
    );
  });
}

function tcp(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function sniServer(routes: ReadonlyMap<string, number>): ReturnType<typeof netServer> {
  return netServer({ noDelay: true }, (client) => {
    let buf: Buffer = Buffer.alloc(0);
    client.on('error', () => client.destroy());
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const sni = clientHelloSni(buf);
      if (sni === undefined && buf.length < MAX_HELLO) return;
      client.off('data', onData);
      client.pause();
      const port = sni === undefined ? undefined : routes.get(sni ?? '');
      if (port === undefined) {
        client.destroy();
        return;
      }
      tcp('127.0.0.1', port).then(
        (up) => {
          up.write(buf);
          splice(client, up);
          client.resume();
        },
        () => client.destroy(),
      );
    };
    client.on('data', onData);
  });
}

async function main(): Promise<void> {
  const f = flags({
    mode: { type: 'string' },
    'peer-port': { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    servername: { type: 'string', default: 'peer.test' },
    hosts: { type: 'string', default: '' },
    routes: { type: 'string', default: '' },
  });
  const pairs = (text: string): [string, string][] =>
    text.split(',').filter((x) => x !== '').map((x) => x.split('=') as [string, string]);
  const hosts = new Map(pairs(f.hosts ?? ''));
  const mode = str(f, 'mode');
  let port: number;
  if (mode === 'connect') {
    const server = httpServer();
    onConnect(server, (req) => {
      const t = target(req, hosts);
      return tcp(t.host, t.port);
    });
    port = await listen(server);
  } else if (mode === 'bridge-in') {
    const peerPort = num(f, 'peer-port');
    const servername = str(f, 'servername');
    const secureContext = createSecureContext({
      ca: readFileSync(str(f, 'ca')),
      cert: readFileSync(str(f, 'cert')),
      key: readFileSync(str(f, 'key')),
    });
    const server = httpServer();
    onConnect(
      server,
      (req) =>
        new Promise((resolve, reject) => {
          const up = tlsConnect({ host: '127.0.0.1', port: peerPort, servername, secureContext }, () => {
            up.setNoDelay(true);
            up.write(`CONNECT ${req.url ?? ''} HTTP/1.1\r\nHost: ${req.url ?? ''}\r\n\r\n`);
            readReplyHead(up).then(({ status, extra }) => {
              if (status !== 200 || extra.length > 0) {
                up.destroy();
                reject(new Error(`peer answered ${status}`));
                return;
              }
              up.resume();
              resolve(up);
            }, reject);
          });
          up.once('error', reject);
        }),
    );
    port = await listen(server);
  } else if (mode === 'bridge-out') {
    const server = httpsServer({
      ca: readFileSync(str(f, 'ca')),
      cert: readFileSync(str(f, 'cert')),
      key: readFileSync(str(f, 'key')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('secureConnection', (s: Socket) => s.setNoDelay(true));
    onConnect(server, (req) => {
      const t = target(req, hosts);
      return tcp(t.host, t.port);
    });
    port = await listen(server);
  } else if (mode === 'sni') {
    const routes = new Map(pairs(f.routes ?? '').map(([n, p]) => [n, Number(p)] as const));
    port = await listen(sniServer(routes));
  } else {
    throw new Error(`unknown --mode ${mode}`);
  }
  emit({ port });
  await new Promise<never>(() => undefined);
}

runMain(main);

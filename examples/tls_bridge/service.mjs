// The example's service: plain HTTP on 127.0.0.1:18090 (PORT overrides), answering every request.
import http from 'node:http';

const port = Number(process.env.PORT ?? 18090);
const server = http.createServer((req, res) => {
  const body = `Hello from the service: ${req.method} ${req.url} (Host: ${req.headers.host ?? '-'})\n`;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => console.log(`service listening on 127.0.0.1:${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));

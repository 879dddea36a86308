// The traced server of tests/integration/test_attacker.py: plain HTTP/1.1 on keep-alive, with
// Node's own header limits lifted (run it with --max-http-header-size=4194304) so that the
// attacker's 1 MiB header and 10,000 headers reach the traced reads whole. Routes:
//   /good/N  -> "ok N"   (the well-behaved client; Content-Length)
//   /bomb    -> a gzip bomb: 64 MiB of zeros, gzip-compressed to about 64 KiB
//   anything else -> reads the body, answers "got N" (N bytes read)
// Usage: node --max-http-header-size=4194304 attack_server.js PORT
'use strict';
const http = require('http');
const zlib = require('zlib');
const port = Number(process.argv[2]);
const bomb = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });

const server = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => {
    const good = req.url.match(/^\/good\/(\d+)$/);
    if (good) {
      const body = 'ok ' + good[1];
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
      return res.end(body);
    }
    if (req.url === '/bomb') {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.length });
      return res.end(bomb);
    }
    const body = 'got ' + n;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  req.on('error', () => {});
});
server.maxHeadersCount = 0;         // no limit: all 10,000 headers are read
server.keepAliveTimeout = 120000;   // slow connections stay while the test holds them
server.headersTimeout = 180000;
server.requestTimeout = 0;
server.listen(port, '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));

// A traced HTTP(S) server for the capture tests. Routes:
//   /size/N?mode=cl|chunked|gzip  -> N body bytes, framed as asked
//   anything else                 -> echoes the request body length as text
// Usage: node server.js PORT tls|plain CERT KEY
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const [port, kind, cert, key] = process.argv.slice(2);

function handler(req, res) {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => {
    const u = new URL(req.url, 'http://x');
    const m = u.pathname.match(/^\/size\/(\d+)$/);
    if (!m) {
      const body = 'got ' + n;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      return res.end(body);
    }
    const body = Buffer.alloc(Number(m[1]), 'x');
    const mode = u.searchParams.get('mode') || 'cl';
    if (mode === 'gzip') {
      const z = zlib.gzipSync(body);
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': z.length });
      return res.end(z);
    }
    if (mode === 'chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Several writes so the body really goes out as several chunks.
      for (let off = 0; off < body.length; off += 7000) res.write(body.subarray(off, off + 7000));
      return res.end();
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
}

const server = kind === 'tls'
  ? require('https').createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
  : require('http').createServer(handler);
server.keepAliveTimeout = 30000;
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));

#!/usr/bin/env node
// bizprobe bench, workloads A and C: a trivial Node.js HTTPS handler.
//   node bench/https-server.js PORT CERT KEY [--promclient]
// Answers every request with 200 and a 13-byte body (Content-Length, keep-alive).
// --promclient (configuration 5): in-process instrumentation as the business monitoring guide does
// it -- a prom-client counter and a histogram updated in the request path, /metrics served by the
// app itself (prom-client from bench/app-promclient/node_modules).
'use strict';
const https = require('https');
const fs = require('fs');
const path = require('path');

const [port, cert, key] = process.argv.slice(2);
const withProm = process.argv.includes('--promclient');
const BODY = 'hello, bench\n';

let handle = (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
};

if (withProm) {
  const client = require(path.join(__dirname, 'app-promclient', 'node_modules', 'prom-client'));
  const register = new client.Registry();
  client.collectDefaultMetrics({ register, prefix: 'direct_fan_' });
  const requests = new client.Counter({ name: 'direct_fan_http_requests_total', help: 'HTTP requests',
    labelNames: ['method', 'route', 'status'], registers: [register] });
  const duration = new client.Histogram({ name: 'direct_fan_http_request_duration_seconds',
    help: 'HTTP request duration', labelNames: ['method', 'route'], registers: [register],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] });
  const inner = handle;
  handle = (req, res) => {
    if (req.url === '/metrics' || req.url === '/api/metrics') {
      register.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': register.contentType });
        res.end(text);
      });
      return;
    }
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      requests.inc({ method: req.method, route: '/', status: String(res.statusCode) });
      duration.observe({ method: req.method, route: '/' }, Number(process.hrtime.bigint() - t0) / 1e9);
    });
    inner(req, res);
  };
}

https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handle)
  .listen(Number(port), '127.0.0.1', () => process.stderr.write(`https-server: listening on ${port} pid ${process.pid}${withProm ? ' (prom-client)' : ''}\n`));

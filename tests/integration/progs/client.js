// A traced HTTP(S) client for the capture tests: runs a plan of requests over one keep-alive
// connection and prints, as JSON Lines, what it sent and received on the wire (ground truth).
// Usage: node client.js URL-BASE PLAN-JSON   (PLAN: [{method, path, body}] with body a size)
'use strict';
const [base, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const u = new URL(base);
const mod = u.protocol === 'https:' ? require('https') : require('http');
const agent = new mod.Agent({ keepAlive: true, maxSockets: 1 });

function one(step) {
  return new Promise((resolve, reject) => {
    const body = Buffer.alloc(step.body || 0, 'y');
    const headers = body.length ? { 'content-length': body.length } : {};
    const req = mod.request({
      host: u.hostname, port: u.port, method: step.method, path: step.path, agent, headers,
      rejectUnauthorized: false,
    }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ method: step.method, path: step.path.split('?')[0],
        status: res.statusCode, req_bytes: body.length, resp_bytes: n }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

(async () => {
  for (const step of plan) console.log(JSON.stringify(await one(step)));
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });

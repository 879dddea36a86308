// SPDX-License-Identifier: MIT
// The app of tests/integration/test_sentry.py: reports errors with the real @sentry/node SDK to
// the SENTRY_DSN of its environment (the test's Sentry stand-in), and serves routes that fail
// as a business app's would. bizprobe is told nothing of it but its pid.
//
// usage: node app.js PORT STRIPE_PORT
//   POST /report?level=L&n=N[&big=1][&attach=1]  captures N events of level L (exceptions for
//        error and fatal, messages otherwise), flushes, answers {"captured": N}; big=1 makes each
//        event's envelope larger than the SDK's 32 KiB gzip threshold; attach=1 adds an
//        attachment (an item with a length)
//   POST /api/checkout       always 500: a business route that fails
//   POST /webhooks/stripe    400: a webhook the app refuses (a forged signature)
//   POST /pay?fail=N&retries=R  calls the Stripe stand-in (127.0.0.1:STRIPE_PORT, Host
//        api.stripe.test) as an SDK with R retries would, under one Idempotency-Key; the
//        stand-in fails the first N attempts
'use strict';

const Sentry = require('@sentry/node');
const http = require('node:http');
const crypto = require('node:crypto');

Sentry.init({
	dsn: process.env.SENTRY_DSN,
	// Errors only: no traces, no profiles; the SDK's default integrations otherwise.
	tracesSampleRate: 0,
	sendClientReports: false,
	release: 'sentry-app@1.0.0',
	environment: 'test',
});

const port = Number(process.argv[2]);
const stripePort = Number(process.argv[3] || 0);

function stripeCall(key, body) {
	return new Promise((resolve, reject) => {
		const req = http.request(
			{
				host: '127.0.0.1',
				port: stripePort,
				method: 'POST',
				path: '/v1/payment_intents',
				headers: {
					Host: 'api.stripe.test',
					Authorization: 'Bearer sk_test_' + 'x'.repeat(24),
					'Content-Type': 'application/x-www-form-urlencoded',
					'Content-Length': Buffer.byteLength(body),
					'Idempotency-Key': key,
				},
			},
			(res) => {
				let data = '';
				res.on('data', (c) => (data += c));
				res.on('end', () => resolve({ status: res.statusCode, body: data }));
			},
		);
		req.on('error', reject);
		req.end(body);
	});
}

function report(q) {
	const level = q.get('level') || 'error';
	const n = Number(q.get('n') || 1);
	const big = q.get('big') === '1';
	const attach = q.get('attach') === '1';
	for (let i = 0; i < n; i++) {
		Sentry.withScope((scope) => {
			if (big)
				// Incompressible-looking text the size of a large stack of breadcrumbs.
				scope.setExtra('payload', crypto.randomBytes(24 * 1024).toString('hex'));
			if (attach)
				scope.addAttachment({ filename: 'state.txt', data: 'line one\nline two\n' });
			if (level === 'error' || level === 'fatal')
				Sentry.captureException(new Error('test failure ' + i), { level });
			else
				Sentry.captureMessage('test message ' + i, level);
		});
	}
	return Sentry.flush(5000).then(() => n);
}

const server = http.createServer((req, res) => {
	const url = new URL(req.url, 'http://127.0.0.1');
	let body = '';
	req.on('data', (c) => (body += c));
	req.on('end', async () => {
		try {
			if (req.method === 'POST' && url.pathname === '/report') {
				const n = await report(url.searchParams);
				res.writeHead(200, { 'Content-Type': 'application/json' });
				res.end(JSON.stringify({ captured: n }));
			} else if (req.method === 'POST' && url.pathname === '/api/checkout') {
				res.writeHead(500, { 'Content-Type': 'application/json' });
				res.end('{"error":"checkout failed"}');
			} else if (req.method === 'POST' && url.pathname === '/webhooks/stripe') {
				res.writeHead(400, { 'Content-Type': 'application/json' });
				res.end('{"error":"bad signature"}');
			} else if (req.method === 'POST' && url.pathname === '/pay') {
				const retries = Number(url.searchParams.get('retries') || 2);
				const key = crypto.randomUUID();
				const form = 'amount=2500&currency=usd&metadata[fan_id]=fan_' +
					(url.searchParams.get('fan') || '42') + '&receipt_email=' +
					encodeURIComponent('fan@example.com');
				let r;
				for (let attempt = 0; attempt <= retries; attempt++) {
					r = await stripeCall(key, form);
					if (r.status < 500 && r.status !== 429)
						break;
					await new Promise((ok) => setTimeout(ok, 200));
				}
				res.writeHead(r.status < 300 ? 200 : 502, { 'Content-Type': 'application/json' });
				res.end(JSON.stringify({ stripe_status: r.status }));
			} else {
				res.writeHead(404);
				res.end();
			}
		} catch (e) {
			res.writeHead(599);
			res.end(String(e));
		}
	});
});

server.listen(port, '127.0.0.1');

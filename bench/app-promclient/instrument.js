// bizprobe bench, configuration 5 for workload B: in-process business metrics as the business
// monitoring guide does it (prom-client counters and histograms updated in the request path,
// /metrics served by the app), added to the unmodified demo app without copying it:
//
//   node -r bench/app-promclient/instrument.js examples/fan-platform/server.js
//
// The preload wraps what server.js gets from require('express') and require('stripe'):
//  - every express() app first gets GET /metrics and /api/metrics (register.metrics()) and a
//    middleware counting requests and observing their duration;
//  - every Stripe client records each API response (the SDK's 'response' event: requests by
//    endpoint, method, code; duration histogram by endpoint), and paymentIntents.confirm records
//    the attempt by status and currency, the amount of succeeded ones (histogram) and failures by
//    code and decline_code -- the direct_fan_* names bizprobe exports.
// The demo's code path is otherwise identical to the untraced configurations.
'use strict';
const Module = require('module');
const path = require('path');
const client = require(path.join(__dirname, 'node_modules', 'prom-client'));

const register = new client.Registry();
client.collectDefaultMetrics({ register, prefix: 'direct_fan_' });
const m = {
  http: new client.Counter({ name: 'direct_fan_http_requests_total', help: 'Inbound HTTP requests',
    labelNames: ['method', 'route', 'status'], registers: [register] }),
  httpDur: new client.Histogram({ name: 'direct_fan_http_request_duration_seconds', help: 'Inbound HTTP request duration',
    labelNames: ['method', 'route'], registers: [register], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] }),
  api: new client.Counter({ name: 'direct_fan_stripe_api_requests_total', help: 'Stripe API requests',
    labelNames: ['endpoint', 'method', 'code'], registers: [register] }),
  apiDur: new client.Histogram({ name: 'direct_fan_stripe_api_request_duration_seconds', help: 'Stripe API request duration',
    labelNames: ['endpoint'], registers: [register], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] }),
  attempts: new client.Counter({ name: 'direct_fan_payment_attempts_total', help: 'Payment attempts',
    labelNames: ['status', 'currency'], registers: [register] }),
  amounts: new client.Histogram({ name: 'direct_fan_payment_amounts', help: 'Succeeded payment amounts (major units)',
    labelNames: ['currency'], registers: [register], buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000] }),
  failures: new client.Counter({ name: 'direct_fan_payment_failures_total', help: 'Failed payments',
    labelNames: ['code', 'decline_code'], registers: [register] }),
};
const ZERO_DECIMAL = new Set(['jpy', 'krw', 'vnd', 'clp', 'xof', 'xaf', 'ugx', 'pyg', 'rwf', 'kmf', 'gnf', 'bif', 'djf', 'mga', 'vuv', 'xpf']);
const template = (p) => String(p || '').split('?')[0].replace(/\/(pi|ch|cus|sub|price|re|evt|pm|in)_[A-Za-z0-9]+/g, '/{id}');

function serveMetrics(req, res) {
  register.metrics().then((text) => { res.set('Content-Type', register.contentType); res.send(text); });
}

function instrumentApp(app) {
  app.get('/metrics', serveMetrics);
  app.get('/api/metrics', serveMetrics);
  app.use((req, res, next) => {
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      const route = req.route ? req.baseUrl + req.route.path : 'other';
      m.http.inc({ method: req.method, route, status: String(res.statusCode) });
      m.httpDur.observe({ method: req.method, route }, Number(process.hrtime.bigint() - t0) / 1e9);
    });
    next();
  });
  return app;
}

function instrumentStripe(stripe) {
  stripe.on('response', (e) => {
    const endpoint = template(e.path);
    m.api.inc({ endpoint, method: e.method, code: String(e.status) });
    m.apiDur.observe({ endpoint }, (e.elapsed || 0) / 1000);
  });
  const pis = stripe.paymentIntents;
  const confirm = pis.confirm;
  pis.confirm = async function (...args) {
    try {
      const pi = await confirm.apply(this, args);
      const cur = String(pi.currency || '').toUpperCase();
      const status = pi.status === 'succeeded' ? 'succeeded' : pi.status;
      m.attempts.inc({ status, currency: cur });
      if (status === 'succeeded') m.amounts.observe({ currency: cur }, ZERO_DECIMAL.has(pi.currency) ? pi.amount : pi.amount / 100);
      return pi;
    } catch (err) {
      if (err && err.type === 'StripeCardError') {
        const pi = err.payment_intent || {};
        m.attempts.inc({ status: 'failed', currency: String(pi.currency || '').toUpperCase() });
        m.failures.inc({ code: err.code || '', decline_code: err.decline_code || '' });
      }
      throw err;
    }
  };
  return stripe;
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exp = load.apply(this, arguments);
  if (request === 'express' && !exp.__benchWrapped) {
    const wrapped = new Proxy(exp, { apply: (target, self, args) => instrumentApp(Reflect.apply(target, self, args)) });
    exp.__benchWrapped = true;
    return wrapped;
  }
  if (request === 'stripe' && !exp.__benchWrapped) {
    const wrapped = new Proxy(exp, {
      construct: (target, args, nt) => instrumentStripe(Reflect.construct(target, args, nt === wrapped ? target : nt)),
      apply: (target, self, args) => instrumentStripe(Reflect.apply(target, self, args)),
    });
    exp.__benchWrapped = true;
    return wrapped;
  }
  return exp;
};

#!/usr/bin/env node
// Demo direct-to-fan platform: the process bizprobe attaches to.
//
// Plain Express + the official `stripe` SDK with its production defaults: `new Stripe(key)` with no
// host, port, retry or HTTP agent override, so it talks HTTPS to api.stripe.com:443 over the SDK's
// keep-alive agent and retries (maxNetworkRetries 2 by default in stripe 23) with one
// Idempotency-Key per POST. The demo environment (scripts/demo-env.sh) points api.stripe.com at a
// local stand-in inside a network namespace; nothing here knows about it.
//
// Deliberately NOT instrumented: there is no metrics code. bizprobe derives the business metrics
// from this process's traffic.
//
// Env: STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (required); HOST (127.0.0.1), PORT (3000).
// Logs: one JSON line per inbound request and per Stripe API attempt (method, path, status,
// Stripe request id, Idempotency-Key). Never the API key, webhook secret, e-mails or card data.
'use strict';

const crypto = require('crypto');
const express = require('express');
const Stripe = require('stripe');

const key = process.env.STRIPE_SECRET_KEY;
const webhookSecret = process.env.STRIPE_WEBHOOK_SECRET;
if (!key || !webhookSecret) {
  console.error('fan-platform: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required');
  process.exit(2);
}
const stripe = new Stripe(key);

function log(obj) { process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), ...obj }) + '\n'); }

// One line per SDK attempt: retries show up as several lines with the same idempotency_key.
stripe.on('request', (e) => log({ kind: 'stripe_request', method: e.method, path: e.path, idempotency_key: e.idempotency_key || null }));
stripe.on('response', (e) => log({ kind: 'stripe_response', method: e.method, path: e.path, status: e.status,
  request_id: e.request_id, elapsed_ms: e.elapsed, idempotency_key: e.idempotency_key || null }));

// ------------------------------------------------------------------ in-memory "database"
const users = new Map();       // id -> { id, user_type, email_hash }
const contents = new Map();    // id -> { id, creator_id, type, views }
const webhookSeen = new Set(); // evt_ ids already handled (Stripe may redeliver)
for (let i = 1; i <= 5; i++) contents.set(`c${i}`, { id: `c${i}`, creator_id: 'creator_seed', type: 'video', views: 0 });
const newId = (p) => `${p}_${crypto.randomBytes(6).toString('hex')}`;

const app = express();
app.disable('x-powered-by');

app.use((req, res, next) => {
  const t0 = process.hrtime.bigint();
  res.on('finish', () => log({ kind: 'http', method: req.method, path: req.path, status: res.statusCode,
    ms: Number((process.hrtime.bigint() - t0) / 1000n) / 1000 }));
  next();
});

// The webhook needs the raw body for the signature: mounted before express.json().
app.post('/webhooks/stripe', express.raw({ type: '*/*', limit: '1mb' }), (req, res) => {
  let event;
  try {
    event = stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], webhookSecret);
  } catch (err) {
    log({ kind: 'webhook', outcome: 'rejected', reason: err.type || err.name });
    return res.status(400).json({ error: 'invalid signature' });
  }
  const duplicate = webhookSeen.has(event.id);
  webhookSeen.add(event.id);
  if (!duplicate) handleEvent(event);
  log({ kind: 'webhook', outcome: duplicate ? 'duplicate' : 'processed', event: event.id, type: event.type,
    object: event.data && event.data.object && event.data.object.id });
  res.json({ received: true });
});

function handleEvent(event) {
  // A real platform would unlock content, notify the creator, etc. The demo only keeps state it
  // needs for its own answers.
  const o = event.data.object;
  if (event.type === 'customer.subscription.deleted') log({ kind: 'business', what: 'subscription_ended', subscription: o.id });
}

app.use(express.json({ limit: '100kb' }));

const bad = (res, message) => res.status(400).json({ error: message });

app.post('/api/register', (req, res) => {
  const { email, user_type: userType } = req.body || {};
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) return bad(res, 'email required');
  if (userType !== 'creator' && userType !== 'fan') return bad(res, 'user_type must be creator or fan');
  const emailHash = crypto.createHash('sha256').update(email.toLowerCase()).digest('hex');
  for (const u of users.values()) if (u.email_hash === emailHash) return res.status(409).json({ error: 'already registered' });
  const user = { id: newId(userType === 'creator' ? 'cr' : 'fan'), user_type: userType, email_hash: emailHash };
  users.set(user.id, user);
  res.status(201).json({ id: user.id, user_type: user.user_type });
});

app.get('/api/content/:id', (req, res) => {
  const c = contents.get(req.params.id);
  if (!c) return res.status(404).json({ error: 'no such content' });
  c.views++;
  res.json({ id: c.id, creator_id: c.creator_id, type: c.type, views: c.views });
});

app.post('/api/content', (req, res) => {
  const { creator_id: creatorId, type = 'video', title = '' } = req.body || {};
  if (typeof creatorId !== 'string' || !creatorId) return bad(res, 'creator_id required');
  const c = { id: newId('c'), creator_id: creatorId, type: String(type), title: String(title).slice(0, 200), views: 0 };
  contents.set(c.id, c);
  res.status(201).json({ id: c.id, creator_id: c.creator_id, type: c.type });
});

function stripeFailure(res, err) {
  if (err && err.type === 'StripeCardError') {
    return res.status(402).json({ status: 'failed', code: err.code, decline_code: err.decline_code,
      payment_intent: err.payment_intent && err.payment_intent.id });
  }
  if (err && err.type === 'StripeInvalidRequestError') return res.status(400).json({ error: err.code || 'invalid_request' });
  log({ kind: 'error', where: 'stripe', type: err && err.type, status: err && err.statusCode });
  return res.status(502).json({ error: 'payment provider error' });
}

// Tip: create the PaymentIntent, then confirm it (two API calls, like a server-side confirmation).
// An optional client `idempotency_key` (a double-submitted tip) is passed to Stripe per call.
app.post('/api/tips', async (req, res) => {
  const b = req.body || {};
  const amount = Number(b.amount);
  if (!Number.isInteger(amount) || amount <= 0) return bad(res, 'amount must be a positive integer (minor units)');
  if (typeof b.currency !== 'string' || !/^[a-zA-Z]{3}$/.test(b.currency)) return bad(res, 'currency required');
  if (typeof b.payment_method !== 'string') return bad(res, 'payment_method required');
  const metadata = { fan_id: String(b.fan_id || ''), creator_id: String(b.creator_id || '') };
  if (b.inject) metadata.inject = String(b.inject); // demo fault injection, read by the stand-in only
  const opts = (step) => (b.idempotency_key ? { idempotencyKey: `${b.idempotency_key}-${step}` } : undefined);
  try {
    const created = await stripe.paymentIntents.create({ amount, currency: b.currency.toLowerCase(),
      payment_method: b.payment_method, payment_method_types: ['card'], description: 'Tip', metadata }, opts('create'));
    const pi = await stripe.paymentIntents.confirm(created.id, {}, opts('confirm'));
    res.status(pi.status === 'succeeded' ? 201 : 202).json({ payment_intent: pi.id, status: pi.status,
      latest_charge: pi.latest_charge });
  } catch (err) {
    stripeFailure(res, err);
  }
});

const INTERVALS = new Set(['day', 'week', 'month', 'year']);
app.post('/api/subscriptions', async (req, res) => {
  const b = req.body || {};
  const unitAmount = Number(b.unit_amount);
  const quantity = b.quantity === undefined ? 1 : Number(b.quantity);
  const intervalCount = b.interval_count === undefined ? 1 : Number(b.interval_count);
  if (!Number.isInteger(unitAmount) || unitAmount <= 0) return bad(res, 'unit_amount must be a positive integer');
  if (!Number.isInteger(quantity) || quantity <= 0) return bad(res, 'quantity must be a positive integer');
  if (!Number.isInteger(intervalCount) || intervalCount <= 0) return bad(res, 'interval_count must be a positive integer');
  if (!INTERVALS.has(b.interval)) return bad(res, 'interval must be day, week, month or year');
  if (typeof b.currency !== 'string' || !/^[a-zA-Z]{3}$/.test(b.currency)) return bad(res, 'currency required');
  const metadata = { fan_id: String(b.fan_id || ''), creator_id: String(b.creator_id || ''), tier_name: String(b.tier || 'standard') };
  try {
    let customer = b.customer;
    if (!customer) {
      const pm = typeof b.payment_method === 'string' ? b.payment_method : 'pm_card_visa';
      customer = (await stripe.customers.create({ payment_method: pm, invoice_settings: { default_payment_method: pm },
        metadata: { fan_id: metadata.fan_id } })).id;
    }
    const price = await stripe.prices.create({ currency: b.currency.toLowerCase(), unit_amount: unitAmount,
      recurring: { interval: b.interval, interval_count: intervalCount }, product_data: { name: `Membership ${metadata.tier_name}` } });
    const sub = await stripe.subscriptions.create({ customer, items: [{ price: price.id, quantity }], metadata });
    res.status(201).json({ subscription: sub.id, status: sub.status, customer });
  } catch (err) {
    stripeFailure(res, err);
  }
});

app.delete('/api/subscriptions/:id', async (req, res) => {
  try {
    const sub = await stripe.subscriptions.cancel(req.params.id);
    res.json({ subscription: sub.id, status: sub.status });
  } catch (err) {
    if (err && err.statusCode === 404) return res.status(404).json({ error: 'no such subscription' });
    stripeFailure(res, err);
  }
});

app.post('/api/refunds', async (req, res) => {
  const b = req.body || {};
  const params = {};
  if (typeof b.payment_intent === 'string') params.payment_intent = b.payment_intent;
  else if (typeof b.charge === 'string') params.charge = b.charge;
  else return bad(res, 'payment_intent or charge required');
  if (b.amount !== undefined) {
    if (!Number.isInteger(b.amount) || b.amount <= 0) return bad(res, 'amount must be a positive integer');
    params.amount = b.amount;
  }
  if (b.reason) params.reason = String(b.reason);
  try {
    const re = await stripe.refunds.create(params);
    res.status(201).json({ refund: re.id, status: re.status, amount: re.amount, currency: re.currency });
  } catch (err) {
    stripeFailure(res, err);
  }
});

app.get('/healthz', (req, res) => res.json({ ok: true }));

app.use((err, req, res, next) => { // bad JSON and the like
  log({ kind: 'error', where: 'express', status: err.status || 500, type: err.type });
  res.status(err.status || 500).json({ error: err.type || 'error' });
});

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 3000);
const server = app.listen(port, host, () => log({ kind: 'listening', addr: `${host}:${port}`, pid: process.pid,
  stripe_sdk: Stripe.PACKAGE_VERSION, api_version: Stripe.API_VERSION,
  max_network_retries: stripe.getMaxNetworkRetries() }));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });

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
// Env: STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (required); HOST (127.0.0.1), PORT (3000);
// JWT_SECRET (the HS256 key of the session tokens; a random one per process when unset).
// Logs: one JSON line per inbound request and per Stripe API attempt (method, path, status,
// Stripe request id, Idempotency-Key). Never the API key, webhook secret, tokens, e-mails or card data.
//
// Users: POST /api/register answers a session token, an HS256 JWT {sub: user id, role, iat, exp}
// that later requests send as `Authorization: Bearer <token>`. A request with an Authorization
// header that is not a valid token of a known user is a 401 on every /api route. Routes that need
// a user (onboarding, experiments) answer 401 without one; views, engagement, tips and
// subscriptions may be anonymous (public content, guest checkout); uploads need a creator's token
// or, for older internal callers, a creator_id in the body.
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
const users = new Map();       // id -> { id, role, email_hash, registration_method, source, onboarding }
const contents = new Map();    // id -> { id, creator_id, type, title, views, engaged_seconds }
const webhookSeen = new Set(); // evt_ ids already handled (Stripe may redeliver)
const CONTENT_TYPES = new Set(['video', 'image', 'audio']);
const SEED_TYPES = ['video', 'image', 'audio', 'video', 'image']; // c1..c5
for (let i = 1; i <= 5; i++) {
  contents.set(`c${i}`, { id: `c${i}`, creator_id: 'creator_seed', type: SEED_TYPES[i - 1], title: `Seed ${i}`, views: 0, engaged_seconds: 0 });
}
const newId = (p) => `${p}_${crypto.randomBytes(6).toString('hex')}`;

// ------------------------------------------------------------------ session tokens (HS256 JWT)
const jwtKey = process.env.JWT_SECRET ? Buffer.from(process.env.JWT_SECRET, 'utf8') : crypto.randomBytes(32);
const TOKEN_TTL_S = 24 * 3600;
const b64url = (x) => Buffer.from(x).toString('base64url');
const hs256 = (data) => crypto.createHmac('sha256', jwtKey).update(data).digest();

function issueToken(user) {
  const iat = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub: user.id, role: user.role, iat, exp: iat + TOKEN_TTL_S }));
  return `${head}.${body}.${hs256(`${head}.${body}`).toString('base64url')}`;
}

// The user a token names, or null: HS256 only, signature, expiry, and a user this process knows.
function verifyToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let head, claims;
  try {
    head = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch { return null; }
  if (!head || head.alg !== 'HS256' || !claims || typeof claims.sub !== 'string') return null;
  const want = hs256(`${parts[0]}.${parts[1]}`);
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return null;
  const user = users.get(claims.sub);
  return user && user.role === claims.role ? user : null;
}

// Sets req.user from `Authorization: Bearer <token>`; a header that is there but not a valid
// token is refused rather than treated as anonymous.
function authenticate(req, res, next) {
  const h = req.headers.authorization;
  if (h === undefined) return next();
  const m = /^Bearer ([A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+)$/.exec(h);
  const user = m && verifyToken(m[1]);
  if (!user) return res.status(401).set('WWW-Authenticate', 'Bearer error="invalid_token"').json({ error: 'invalid token' });
  req.user = user;
  next();
}
const requireUser = (role) => (req, res, next) => {
  if (!req.user) return res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'authentication required' });
  if (role && req.user.role !== role) return res.status(403).json({ error: `${role}s only` });
  next();
};

const app = express();
app.disable('x-powered-by');

app.use((req, res, next) => {
  const t0 = process.hrtime.bigint();
  res.on('finish', () => log({ kind: 'http', method: req.method, path: req.originalUrl.split('?')[0], status: res.statusCode,
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

app.use('/api', authenticate);

const ROLES = new Set(['fan', 'creator']);
const REGISTRATION_METHODS = new Set(['email', 'google', 'facebook', 'apple']);

// {email, role, registrationMethod} (`user_type` is the older name of role; registrationMethod
// defaults to email), campaign attribution in `?utm_source=`. 201 {user: {id, role}, token}; the
// top-level id and user_type are what older callers read.
app.post('/api/register', (req, res) => {
  const b = req.body || {};
  const { email } = b;
  if (b.role !== undefined && b.user_type !== undefined && b.role !== b.user_type) return bad(res, 'role and user_type differ');
  const role = b.role !== undefined ? b.role : b.user_type;
  const method = b.registrationMethod === undefined ? 'email' : b.registrationMethod;
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) return bad(res, 'email required');
  if (!ROLES.has(role)) return bad(res, 'role must be creator or fan');
  if (!REGISTRATION_METHODS.has(method)) return bad(res, 'registrationMethod must be email, google, facebook or apple');
  const source = typeof req.query.utm_source === 'string' ? req.query.utm_source.slice(0, 64) : null;
  const emailHash = crypto.createHash('sha256').update(email.toLowerCase()).digest('hex');
  for (const u of users.values()) if (u.email_hash === emailHash) return res.status(409).json({ error: 'already registered' });
  const user = { id: newId(role === 'creator' ? 'cr' : 'fan'), role, email_hash: emailHash, registration_method: method,
    source, onboarding: new Set() };
  users.set(user.id, user);
  res.status(201).json({ user: { id: user.id, role: user.role }, token: issueToken(user), id: user.id, user_type: user.role });
});

// Public content: anonymous or signed in.
app.get('/api/content/:id', (req, res) => {
  const c = contents.get(req.params.id);
  if (!c) return res.status(404).json({ error: 'no such content' });
  c.views++;
  res.json({ id: c.id, creator_id: c.creator_id, type: c.type, title: c.title, views: c.views });
});

// An upload {type: video|image|audio (default video), title} by the creator the token names;
// without a token (older internal callers) the body's creator_id says who.
app.post('/api/content', (req, res) => {
  const b = req.body || {};
  const { type = 'video', title = '' } = b;
  let creatorId;
  if (req.user) {
    if (req.user.role !== 'creator') return res.status(403).json({ error: 'creators only' });
    creatorId = req.user.id;
  } else {
    creatorId = b.creator_id;
    if (typeof creatorId !== 'string' || !creatorId) return bad(res, 'creator_id required');
  }
  if (!CONTENT_TYPES.has(type)) return bad(res, 'type must be video, image or audio');
  const c = { id: newId('c'), creator_id: creatorId, type, title: String(title).slice(0, 200), views: 0, engaged_seconds: 0 };
  contents.set(c.id, c);
  res.status(201).json({ id: c.id, creator_id: c.creator_id, type: c.type });
});

// The player's report of time spent on a piece of content: {duration: seconds}. 204.
app.post('/api/content/:id/engagement', (req, res) => {
  const c = contents.get(req.params.id);
  if (!c) return res.status(404).json({ error: 'no such content' });
  const d = (req.body || {}).duration;
  if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > 86400) return bad(res, 'duration must be seconds (0..86400)');
  c.engaged_seconds += d;
  res.status(204).end();
});

// Onboarding: one funnel per role; the token's user completes a step. 200 {funnel, step,
// step_number, completed, done}; a step of another funnel is a 404. Completing a step again is
// allowed (200) and changes nothing.
const FUNNELS = {
  creator: { name: 'creator_onboarding', steps: ['profile_setup', 'payout_setup', 'first_upload'] },
  fan: { name: 'fan_onboarding', steps: ['pick_interests', 'follow_creator', 'first_tip'] },
};
app.post('/api/onboarding/:step', requireUser(), (req, res) => {
  const f = FUNNELS[req.user.role];
  const n = f.steps.indexOf(req.params.step);
  if (n < 0) return res.status(404).json({ error: `no step ${req.params.step} in ${f.name}` });
  req.user.onboarding.add(req.params.step);
  const completed = f.steps.filter((s) => req.user.onboarding.has(s));
  res.json({ funnel: f.name, step: req.params.step, step_number: n + 1, completed, done: completed.length === f.steps.length });
});

// A/B tests: the variant of a signed-in user is fixed by a hash of the experiment and the user id
// (first byte of SHA-256("<experiment>:<user id>"): even = control, odd = treatment).
const EXPERIMENTS = new Set(['new_subscription_flow', 'tip_button_placement']);
app.get('/api/experiments/:experiment', requireUser(), (req, res) => {
  const e = req.params.experiment;
  if (!EXPERIMENTS.has(e)) return res.status(404).json({ error: 'no such experiment' });
  const h = crypto.createHash('sha256').update(`${e}:${req.user.id}`).digest();
  res.json({ experiment: e, variant: h[0] % 2 === 0 ? 'control' : 'treatment' });
});

// Who pays: the signed-in user, else (guest checkout, older callers) the body's fan_id. Stripe
// gets it as metadata[fan_id], which is how payments are tied to users.
const payerOf = (req) => (req.user ? req.user.id : String((req.body || {}).fan_id || ''));

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
  const metadata = { fan_id: payerOf(req), creator_id: String(b.creator_id || '') };
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
  const metadata = { fan_id: payerOf(req), creator_id: String(b.creator_id || ''), tier_name: String(b.tier || 'standard') };
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

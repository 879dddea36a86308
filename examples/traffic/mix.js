#!/usr/bin/env node
// Scripted traffic for the demo fan platform, with the exact business metrics it must produce.
//
// Run it inside the demo netns, against the app (scripts/demo-env.sh up first):
//   scripts/demo-env.sh exec node examples/traffic/mix.js --expect /tmp/expect.json
//   scripts/demo-env.sh exec node examples/traffic/mix.js --loop --expect /tmp/live.json
//
// Options:
//   --app URL          the app (http://127.0.0.1:3000)
//   --control URL      the stand-in's control API (http://127.0.0.1:12112)
//   --seed N           PRNG seed for e-mails and, with --loop, the choice of actions (42)
//   --expect FILE      write the ground truth JSON there instead of stdout
//   --with-drop        also run a tip whose confirm response is lost (connection reset after the
//                      stand-in executed it), retried by the SDK and answered by an idempotent replay
//   --loop             live demo: random-ish bounded actions until SIGINT/SIGTERM (or --max-actions);
//                      the ground truth file is rewritten after every action
//   --interval-ms N    --loop: mean pause between actions (400)
//   --max-actions N    --loop: stop after N actions
//
// Users: registrations go through the app's API (role, registrationMethod, ?utm_source=); the mix
// keeps each user's session token (an HS256 JWT the app signs) and sends it as
// `Authorization: Bearer` on that user's later requests (views, uploads, engagement, onboarding,
// experiments, most tips and subscriptions); some views, engagement reports and tips are anonymous
// (a guest tip names its fan in the body's fan_id, as older callers do).
//
// Ground truth: computed from what the mix asked for and checked against what the app answered
// (an unexpected answer aborts with exit 1). At the end the mix waits until the stand-in has no
// webhook in flight and cross-checks the stand-in's own record of API exchanges and webhook
// deliveries made during the run. Values are the change caused by this run: counters start from
// the app's values before the run, and the MRR gauge assumes the run started on a fresh env.
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

// ------------------------------------------------------------------ options
const argv = process.argv.slice(2);
const opt = { app: 'http://127.0.0.1:3000', control: 'http://127.0.0.1:12112', seed: 42, expect: null,
  loop: false, withDrop: false, intervalMs: 400, maxActions: Infinity };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
  if (a === '--app') opt.app = val();
  else if (a === '--control') opt.control = val();
  else if (a === '--seed') opt.seed = Number(val());
  else if (a === '--expect') opt.expect = val();
  else if (a === '--loop') opt.loop = true;
  else if (a === '--with-drop') opt.withDrop = true;
  else if (a === '--interval-ms') opt.intervalMs = Number(val());
  else if (a === '--max-actions') opt.maxActions = Number(val());
  else if (a === '-h' || a === '--help') usage();
  else usage(`unknown option ${a}`);
}
function usage(msg) {
  if (msg) console.error(`mix: ${msg}`);
  console.error('usage: mix.js [--app URL] [--control URL] [--seed N] [--expect FILE] [--with-drop] [--loop [--interval-ms N] [--max-actions N]]');
  process.exit(msg ? 2 : 0);
}

// ------------------------------------------------------------------ helpers
function mulberry32(a) {
  return () => { a |= 0; a = (a + 0x6D2B79F5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const rnd = mulberry32(opt.seed);
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(base, method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, base);
    const data = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent,
      headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: json, text });
      });
    });
    req.setTimeout(30000, () => req.destroy(new Error(`timeout ${method} ${p}`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
const appReq = (m, p, b, h) => request(opt.app, m, p, b, h);
// A request as user u (null: anonymous): u's token as a bearer, and u counted as identified.
const identified = new Set(); // user ids that sent at least one request with their token
function asUser(u, m, p, b, h = {}) {
  if (!u) return appReq(m, p, b, h);
  identified.add(u.id);
  return appReq(m, p, b, { ...h, Authorization: `Bearer ${u.token}` });
}
const ctl = (m, p, b) => request(opt.control, m, p, b);

class Mismatch extends Error {}
function expectStatus(what, res, statuses) {
  const list = [].concat(statuses);
  if (!list.includes(res.status)) throw new Mismatch(`${what}: expected HTTP ${list.join('|')}, got ${res.status} ${res.text.slice(0, 300)}`);
}

// ------------------------------------------------------------------ ground truth
const NS = 'direct_fan';
const ZERO_DECIMAL = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);
const major = (amount, cur) => (ZERO_DECIMAL.has(cur) ? amount : amount / 100);
const samples = new Map(); // key -> { name, labels, value }
function add(name, labels, v = 1) { addFull(`${NS}_${name}`, labels, v); }
function addFull(full, labels, v = 1) {
  const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  const k = full + JSON.stringify(sorted);
  if (!samples.has(k)) samples.set(k, { name: full, labels: sorted, value: 0 });
  samples.get(k).value += v;
}
// business_events_total{event} has no namespace: every business event, rule and Stripe ones.
const event = (name) => addFull('business_events_total', { event: name });
// The rules' engagement histogram (examples/rules/fan-platform.yaml): buckets as declared there.
const ENGAGEMENT_BUCKETS = [1, 5, 15, 30, 60, 300, 900, 3600];
function observeEngagement(seconds) {
  add('content_engagement_duration_seconds_sum', {}, seconds);
  add('content_engagement_duration_seconds_count', {});
  for (const le of ENGAGEMENT_BUCKETS) add('content_engagement_duration_seconds_bucket', { le: String(le) }, seconds <= le ? 1 : 0);
  add('content_engagement_duration_seconds_bucket', { le: '+Inf' });
}
const payers = new Set(); // metadata[fan_id] of succeeded PaymentIntents
const stripeUsers = new Set(); // metadata[fan_id] of every PaymentIntent and Subscription
const converted = new Set(); // payers and the fans of new subscriptions
const activeSubs = new Map(); // sub id -> { currency, mrr }
const seenCurrenciesMrr = new Set();
const counts = {};
const count = (k, n = 1) => { counts[k] = (counts[k] || 0) + n; };
const expectedWebhooks = []; // { type, object_id }
const EXPECT = { apiExchanges: 0, deliveries: 0 };

function api(endpoint, method, code) { add('stripe_api_requests_total', { endpoint, method, code: String(code) }); EXPECT.apiExchanges++; }
function webhook(type, outcome, objectId) {
  add('webhook_events_total', { type, outcome });
  if (outcome !== 'rejected') EXPECT.deliveries++;
  if (outcome === 'processed') expectedWebhooks.push({ type, object_id: objectId });
}
function mrrOf(unitAmount, quantity, interval, intervalCount, cur) {
  const perPeriod = major(unitAmount * quantity, cur);
  const perMonth = { day: 365 / 12, week: 52 / 12, month: 1, year: 1 / 12 }[interval];
  return (perPeriod * perMonth) / intervalCount;
}
const round6 = (x) => Math.round(x * 1e6) / 1e6;

const COMPLETE = ['payment_attempts_total', 'payment_amounts_sum', 'payment_amounts_count', 'payment_failures_total',
  'subscriptions_created_total', 'subscriptions_canceled_total', 'subscription_revenue', 'refunds_total',
  'refund_amount_total', 'webhook_events_total', 'stripe_api_requests_total', 'user_registrations_total',
  'content_views_total', 'content_uploads_total', 'content_engagement_duration_seconds', 'funnel_steps_total',
  'experiment_exposures_total'].map((n) => `${NS}_${n}`).concat(['business_events_total']);
const startedAt = new Date().toISOString();

function truth(final, checks) {
  const mrr = new Map();
  for (const c of seenCurrenciesMrr) mrr.set(c, 0);
  for (const s of activeSubs.values()) mrr.set(s.currency, mrr.get(s.currency) + s.mrr);
  const out = [...samples.values()].map((s) => ({ ...s, value: round6(s.value) }));
  for (const [currency, v] of mrr) out.push({ name: `${NS}_subscription_revenue`, labels: { currency }, value: round6(v) });
  for (const n of ['subscriptions_created_total', 'subscriptions_canceled_total']) {
    if (!out.some((s) => s.name === `${NS}_${n}`)) out.push({ name: `${NS}_${n}`, labels: {}, value: 0 });
  }
  out.sort((a, b) => (a.name + JSON.stringify(a.labels) < b.name + JSON.stringify(b.labels) ? -1 : 1));
  return { format: 'bizprobe-ground-truth/1', namespace: NS, mode: opt.loop ? 'loop' : 'fixed', seed: opt.seed,
    with_drop: opt.withDrop, final, started_at: startedAt, written_at: new Date().toISOString(),
    semantics: 'counters: increase caused by this run; gauges: value after the run on a fresh env; amounts in major units (zero-decimal currencies not divided); histogram as _sum/_count',
    complete: COMPLETE, samples: out, actions: counts, users: userCounts(), checks: checks || null };
}
// Counts of the users behind this run's traffic (for KPIs built on user pseudonyms): registered
// by role; identified = distinct users that sent at least one request with their token (any
// route, the registration itself excluded: it has no token yet), by role; paying = distinct
// metadata[fan_id] of the PaymentIntents counted as succeeded; known = distinct users that any
// business event names (the registered ones and every metadata[fan_id], a guest's 'fan_anon'
// included), by role (users only Stripe names have none); converted = distinct users with a
// succeeded payment or a new subscription.
function userCounts() {
  const byRole = (set) => ({ creator: users.creator.filter((u) => set.has(u.id)).length,
    fan: users.fan.filter((u) => set.has(u.id)).length });
  const idSet = new Set(identified);
  const known = new Set([...users.creator, ...users.fan].map((u) => u.id).concat([...stripeUsers]));
  return { registered: { creator: users.creator.length, fan: users.fan.length },
    identified: { total: idSet.size, ...byRole(idSet) }, paying: payers.size,
    known: { total: known.size, ...byRole(known) }, converted: converted.size };
}
function writeTruth(final, checks) {
  const text = JSON.stringify(truth(final, checks), null, 2) + '\n';
  if (!opt.expect) { if (final) process.stdout.write(text); return; }
  const tmp = path.join(path.dirname(opt.expect), `.${path.basename(opt.expect)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, opt.expect);
}

// ------------------------------------------------------------------ actions
const PM_OUTCOME = {
  pm_card_visa: { status: 'succeeded', http: 201 },
  pm_card_mastercard: { status: 'succeeded', http: 201 },
  pm_card_chargeDeclined: { status: 'failed', http: 402, code: 'card_declined', decline_code: 'generic_declined' },
  pm_card_chargeDeclinedInsufficientFunds: { status: 'failed', http: 402, code: 'card_declined', decline_code: 'insufficient_funds' },
  pm_card_authenticationRequired: { status: 'requires_action', http: 202 },
};
const WEBHOOK_FOR = { succeeded: 'payment_intent.succeeded', failed: 'payment_intent.payment_failed', requires_action: 'payment_intent.requires_action' };
const users = { creator: [], fan: [] }; // { id, role, token, onboarded: Set }
// The app's seeded content and its types (examples/fan-platform/server.js); uploads add theirs.
const contentType = new Map([['c1', 'video'], ['c2', 'image'], ['c3', 'audio'], ['c4', 'video'], ['c5', 'image']]);
const contentIds = [...contentType.keys()];
const tipsOk = []; // { pi, charge, currency, amount, refunded }
let emailSeq = 0;
const RUN_NONCE = crypto.randomBytes(4).toString('hex');
const METHODS = ['email', 'google', 'facebook', 'apple'];
const SOURCES = ['newsletter', 'twitter', 'instagram', 'youtube', 'google_ads', 'partner_blog'];
const FUNNELS = {
  creator: { name: 'creator_onboarding', steps: ['profile_setup', 'payout_setup', 'first_upload'] },
  fan: { name: 'fan_onboarding', steps: ['pick_interests', 'follow_creator', 'first_tip'] },
};
const EXPERIMENTS = ['new_subscription_flow', 'tip_button_placement'];
const anyUser = () => pick([...users.creator, ...users.fan]);
const fanOrNull = () => (users.fan.length ? pick(users.fan) : null);

function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  try {
    return { header: JSON.parse(Buffer.from(parts[0], 'base64url')), claims: JSON.parse(Buffer.from(parts[1], 'base64url')) };
  } catch { return null; }
}

// A registration through the app's API: {email, role, registrationMethod}, the campaign in
// ?utm_source=. Every registration names a source (see examples/README.md).
async function register(role, method = 'email', source = 'newsletter') {
  emailSeq++;
  // A per-run nonce keeps e-mails unique when the mix runs again against the same app.
  const email = `${role}${emailSeq}.${RUN_NONCE}@example.test`;
  const r = await appReq('POST', `/api/register?utm_source=${encodeURIComponent(source)}`, { email, role, registrationMethod: method });
  expectStatus('register', r, 201);
  const u = r.body && r.body.user;
  if (!u || typeof u.id !== 'string' || u.role !== role || typeof r.body.token !== 'string') {
    throw new Mismatch(`register: unexpected answer ${r.text.slice(0, 300)}`);
  }
  const jwt = decodeJwt(r.body.token);
  const now = Date.now() / 1000;
  if (!jwt || jwt.header.alg !== 'HS256' || jwt.claims.sub !== u.id || jwt.claims.role !== role
      || !(jwt.claims.iat <= now + 5) || !(jwt.claims.exp > now)) {
    throw new Mismatch(`register: token claims ${JSON.stringify(jwt && jwt.claims)} do not name user ${u.id} (${role})`);
  }
  users[role].push({ id: u.id, role, token: r.body.token, onboarded: new Set() });
  add('user_registrations_total', { user_type: role, method, source });
  event('registration');
  count('registrations');
}
// A view by user u (null: anonymous). The 404 of an unknown id is not a view.
async function viewContent(id, u = null) {
  const r = await asUser(u, 'GET', `/api/content/${encodeURIComponent(id)}`);
  const type = contentType.get(id);
  expectStatus(`view ${id}`, r, type ? 200 : 404);
  if (!type) { count('content_views_404'); return; }
  if (r.body.type !== type) throw new Mismatch(`view ${id}: type ${r.body.type}, expected ${type}`);
  add('content_views_total', { content_type: type });
  event('content_view');
  count('content_views');
}
// An upload by a creator's token, or (legacy: true) by an internal caller naming creator_id.
async function uploadContent(type = pick(['video', 'image', 'audio']), { legacy = false, by = null } = {}) {
  const creator = by || (users.creator.length ? pick(users.creator) : null);
  const body = { type, title: 'demo' };
  if (legacy || !creator) body.creator_id = creator ? creator.id : 'creator_seed';
  const r = await asUser(legacy ? null : creator, 'POST', '/api/content', body);
  expectStatus('upload', r, 201);
  if (r.body.type !== type) throw new Mismatch(`upload: type ${r.body.type}, expected ${type}`);
  contentIds.push(r.body.id);
  contentType.set(r.body.id, type);
  add('content_uploads_total', { content_type: type });
  event('content_upload');
  count('content_uploads');
}
// The player's report of seconds spent on content id, by u (null: anonymous). expect: 204, or
// 404 (unknown content) / 400 (bad duration), which are not engagement.
async function engage(id, duration, u = null, expect = 204) {
  const r = await asUser(u, 'POST', `/api/content/${encodeURIComponent(id)}/engagement`, { duration });
  expectStatus(`engagement ${id} ${duration}`, r, expect);
  if (expect !== 204) { count('engagement_rejected'); return; }
  observeEngagement(duration);
  event('content_engagement');
  count('engagement_reports');
}
// An onboarding step of u's funnel (the app picks it from the role). expect 404: a step of the
// other funnel; u null: no token, 401.
async function onboard(u, step, expect = 200) {
  const r = await asUser(u, 'POST', `/api/onboarding/${step}`);
  expectStatus(`onboarding ${step}`, r, expect);
  if (expect !== 200) { count('funnel_steps_rejected'); return; }
  const f = FUNNELS[u.role];
  if (r.body.funnel !== f.name || r.body.step !== step) throw new Mismatch(`onboarding ${step}: answer ${r.text.slice(0, 200)}`);
  u.onboarded.add(step);
  add('funnel_steps_total', { funnel: f.name, step });
  event('funnel_step');
  count('funnel_steps');
}
// The app's documented assignment: first byte of SHA-256("<experiment>:<user id>"), even = control.
const variantOf = (experiment, u) => (crypto.createHash('sha256').update(`${experiment}:${u.id}`).digest()[0] % 2 === 0 ? 'control' : 'treatment');
async function expose(u, experiment, expect = 200) {
  const r = await asUser(u, 'GET', `/api/experiments/${experiment}`);
  expectStatus(`experiment ${experiment}`, r, expect);
  if (expect !== 200) { count('experiment_exposures_rejected'); return; }
  const variant = variantOf(experiment, u);
  if (r.body.experiment !== experiment || r.body.variant !== variant) {
    throw new Mismatch(`experiment ${experiment}: answer ${r.text.slice(0, 200)}, expected variant ${variant}`);
  }
  add('experiment_exposures_total', { experiment, variant });
  event('experiment_exposure');
  count('experiment_exposures');
}

// inject: null | '429_once' | '500_once' | 'drop_once', optionally '@create'.
// guest: no token, the fan named in the body's fan_id (the app puts either in metadata[fan_id]).
async function tip({ amount, currency, pm, inject = null, doubleSubmit = false, guest = false }) {
  const cur = currency.toUpperCase();
  const out = PM_OUTCOME[pm];
  const fan = fanOrNull();
  const body = { amount, currency: currency.toLowerCase(), payment_method: pm,
    creator_id: users.creator.length ? pick(users.creator).id : 'creator_seed' };
  const payer = guest || !fan ? null : fan;
  if (!payer) body.fan_id = fan ? fan.id : 'fan_anon';
  const fanId = payer ? payer.id : body.fan_id;
  stripeUsers.add(fanId);
  if (inject) body.inject = inject;
  if (doubleSubmit) body.idempotency_key = `tip-${opt.seed}-${crypto.randomBytes(6).toString('hex')}`;
  const r = await asUser(payer, 'POST', '/api/tips', body);
  expectStatus(`tip ${pm} ${amount} ${cur}`, r, out.http);
  const got = r.body && r.body.status;
  if (got !== out.status) throw new Mismatch(`tip ${pm}: expected status ${out.status}, got ${got}`);
  if (out.status === 'failed' && (r.body.code !== out.code || r.body.decline_code !== out.decline_code)) {
    throw new Mismatch(`tip ${pm}: expected ${out.code}/${out.decline_code}, got ${r.body.code}/${r.body.decline_code}`);
  }
  const pi = r.body.payment_intent;
  const [fault, step] = inject ? [inject.split('@')[0], inject.split('@')[1] || 'confirm'] : [null, null];
  const confirmCode = out.http === 402 ? 402 : 200;
  // The app's exchanges with Stripe: create, then confirm; an injected 429/500 adds the failed
  // first attempt (the SDK retries with the same Idempotency-Key). A dropped response has no
  // status: it is not counted, its retry is answered by an idempotent replay (counted).
  if (step === 'create' && (fault === '429_once' || fault === '500_once')) api('/v1/payment_intents', 'POST', fault.slice(0, 3));
  api('/v1/payment_intents', 'POST', 200);
  if (step === 'confirm' && (fault === '429_once' || fault === '500_once')) api('/v1/payment_intents/{id}/confirm', 'POST', fault.slice(0, 3));
  api('/v1/payment_intents/{id}/confirm', 'POST', confirmCode);
  if (fault === 'drop_once') EXPECT.apiExchanges++; // the stand-in logs the dropped exchange too (status 0)
  add('payment_attempts_total', { status: out.status, currency: cur });
  event(`payment_${out.status}`);
  if (out.status === 'succeeded') {
    payers.add(fanId);
    converted.add(fanId);
    add('payment_amounts_sum', { currency: cur }, major(amount, cur));
    add('payment_amounts_count', { currency: cur });
    tipsOk.push({ pi, charge: r.body.latest_charge, currency: cur, amount, refunded: 0 });
  }
  if (out.status === 'failed') add('payment_failures_total', { code: out.code, decline_code: out.decline_code });
  webhook(WEBHOOK_FOR[out.status], 'processed', pi);
  count(`tips_${out.status}`);
  if (guest) count('tips_guest');
  if (inject) count(`tips_injected_${inject}`);
  if (doubleSubmit) {
    // The same tip submitted again (double click): the app passes the same idempotency keys, Stripe
    // replays both responses; no new payment, no new webhook.
    const again = await asUser(payer, 'POST', '/api/tips', body);
    expectStatus('tip double submit', again, out.http);
    if (again.body.payment_intent !== pi) throw new Mismatch(`double submit made a new payment intent ${again.body.payment_intent} != ${pi}`);
    api('/v1/payment_intents', 'POST', 200);
    api('/v1/payment_intents/{id}/confirm', 'POST', confirmCode);
    count('tips_double_submitted');
  }
  return pi;
}

async function subscribe({ currency, unitAmount, interval, intervalCount = 1, quantity = 1 }) {
  const cur = currency.toUpperCase();
  const fan = fanOrNull();
  const body = { currency: currency.toLowerCase(), unit_amount: unitAmount, interval, interval_count: intervalCount, quantity,
    creator_id: users.creator.length ? pick(users.creator).id : 'creator_seed', tier: pick(['bronze', 'silver', 'gold']) };
  if (!fan) body.fan_id = 'fan_anon';
  const fanId = fan ? fan.id : body.fan_id;
  stripeUsers.add(fanId);
  const r = await asUser(fan, 'POST', '/api/subscriptions', body);
  expectStatus(`subscribe ${interval}`, r, 201);
  if (r.body.status !== 'active') throw new Mismatch(`subscription status ${r.body.status}`);
  api('/v1/customers', 'POST', 200);
  api('/v1/prices', 'POST', 200);
  api('/v1/subscriptions', 'POST', 200);
  add('subscriptions_created_total', {});
  event('subscription_created');
  converted.add(fanId);
  activeSubs.set(r.body.subscription, { currency: cur, mrr: mrrOf(unitAmount, quantity, interval, intervalCount, cur) });
  seenCurrenciesMrr.add(cur);
  webhook('customer.subscription.created', 'processed', r.body.subscription);
  count('subscriptions_created');
  return r.body.subscription;
}

async function cancel(subId) {
  const r = await appReq('DELETE', `/api/subscriptions/${subId}`);
  expectStatus('cancel', r, 200);
  if (r.body.status !== 'canceled') throw new Mismatch(`cancel: status ${r.body.status}`);
  api('/v1/subscriptions/{id}', 'DELETE', 200);
  add('subscriptions_canceled_total', {});
  event('subscription_canceled');
  activeSubs.delete(subId);
  webhook('customer.subscription.deleted', 'processed', subId);
  count('subscriptions_canceled');
}

// by: 'payment_intent' | 'charge'; amount: undefined = what is left; expectFail: already refunded.
async function refund(t, { by = 'payment_intent', amount, expectFail = false } = {}) {
  const body = by === 'charge' ? { charge: t.charge } : { payment_intent: t.pi };
  if (amount !== undefined) body.amount = amount;
  const r = await appReq('POST', '/api/refunds', body);
  if (expectFail) {
    expectStatus('refund (already refunded)', r, 400);
    api('/v1/refunds', 'POST', 400);
    count('refunds_rejected');
    return;
  }
  expectStatus('refund', r, 201);
  const amt = amount === undefined ? t.amount - t.refunded : amount;
  if (r.body.amount !== amt) throw new Mismatch(`refund amount ${r.body.amount} != ${amt}`);
  t.refunded += amt;
  api('/v1/refunds', 'POST', 200);
  add('refunds_total', { currency: t.currency });
  event('refund');
  add('refund_amount_total', { currency: t.currency }, major(amt, t.currency));
  webhook('charge.refunded', 'processed', t.charge);
  count('refunds');
}

async function redeliver(objectId, type) {
  await waitIdle();
  const r = await ctl('POST', '/redeliver', { object_id: objectId, type });
  expectStatus('redeliver', r, 200);
  if (r.body.status !== 200) throw new Mismatch(`redelivered ${type} answered ${r.body.status}`);
  webhook(type, 'duplicate', objectId);
  count('webhooks_redelivered');
}

async function forgedWebhook(kind) {
  const t = Math.floor(Date.now() / 1000);
  const id = `evt_forged${crypto.randomBytes(8).toString('hex')}`;
  const type = kind === 'unsigned' ? 'charge.refunded' : 'payment_intent.succeeded';
  const obj = type === 'charge.refunded'
    ? { id: `ch_forged${crypto.randomBytes(6).toString('hex')}`, object: 'charge', amount: 50000, amount_refunded: 50000, currency: 'usd', refunded: true, status: 'succeeded' }
    : { id: `pi_forged${crypto.randomBytes(6).toString('hex')}`, object: 'payment_intent', amount: 99900, amount_received: 99900, currency: 'usd', status: 'succeeded', metadata: {} };
  const payload = JSON.stringify({ id, object: 'event', api_version: '2026-10-28.endive', created: t, data: { object: obj },
    livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type }, null, 2);
  const headers = { 'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' };
  if (kind !== 'unsigned') {
    const wrong = crypto.randomBytes(16).toString('hex'); // not the endpoint's secret
    headers['Stripe-Signature'] = `t=${t},v1=${crypto.createHmac('sha256', `whsec_${wrong}`).update(`${t}.${payload}`).digest('hex')}`;
  }
  const r = await appReq('POST', '/webhooks/stripe', payload, headers);
  expectStatus(`forged webhook (${kind})`, r, 400);
  // Without a Stripe-Signature header a POST is not a webhook delivery: nothing to count.
  if (kind !== 'unsigned') webhook(type, 'rejected', obj.id);
  count('webhooks_forged');
}

async function waitIdle() {
  for (let i = 0; i < 200; i++) {
    const r = await ctl('GET', '/idle');
    if (r.status === 200 && r.body.pending === 0) return;
    await sleep(50);
  }
  throw new Mismatch('stand-in still has webhooks in flight after 10 s');
}

// ------------------------------------------------------------------ the fixed mix
async function fixedMix() {
  for (const [role, method, source] of [['creator', 'email', 'newsletter'], ['creator', 'google', 'youtube'],
    ['fan', 'email', 'newsletter'], ['fan', 'google', 'twitter'], ['fan', 'facebook', 'instagram'],
    ['fan', 'apple', 'twitter'], ['fan', 'email', 'partner_blog'], ['fan', 'apple', 'newsletter']]) {
    await register(role, method, source);
  }
  const [cr1, cr2] = users.creator;
  const [f1, f2, f3, f4, f5, f6] = users.fan;
  await onboard(cr1, 'profile_setup');
  await onboard(cr1, 'payout_setup');
  await uploadContent('audio', { by: cr1 });                    // with the creator's token
  await onboard(cr1, 'first_upload');
  await onboard(cr2, 'profile_setup');
  await uploadContent('image', { by: cr2, legacy: true });      // older caller: creator_id in the body
  await onboard(f1, 'pick_interests');
  await onboard(f1, 'follow_creator');
  await onboard(f2, 'pick_interests');
  await onboard(f3, 'profile_setup', 404);                      // a creator's step: not in fan_onboarding
  await onboard(null, 'pick_interests', 401);                   // no token

  const views = [['c1', null], ['c2', f1], ['c1', f2], ['c3', null], [contentIds[5], f3], [contentIds[6], null], ['c5', f4], ['c1', cr2]];
  for (const [id, u] of views) await viewContent(id, u);
  await viewContent('c404'); // not found: not a view
  // Durations are multiples of 1/4 s, so every sum is exact in floating point; 5 and 60 sit on
  // bucket bounds (le is inclusive), 4000 is above the last one.
  const reports = [['c1', 0.5, null], ['c2', 3.75, f1], ['c2', 5, null], ['c1', 12.25, f2], ['c3', 45, null],
    [contentIds[5], 60, f3], ['c1', 90.5, f2], ['c5', 600, f4], ['c1', 1800.25, f1], [contentIds[6], 4000, f5]];
  for (const [id, d, u] of reports) await engage(id, d, u);
  await engage('c404', 30, f1, 404);                            // unknown content
  await engage('c1', '12', null, 400);                          // not a number

  for (const u of [cr1, cr2, f1, f2, f3, f4, f5, f6]) await expose(u, 'new_subscription_flow');
  await expose(f1, 'new_subscription_flow');                    // seen again: another exposure
  for (const u of [f1, f2, f3]) await expose(u, 'tip_button_placement');
  await expose(f4, 'holiday_banner', 404);                      // no such experiment

  const t = [];
  t.push(await tip({ amount: 500, currency: 'usd', pm: 'pm_card_visa' }));                 // 0
  t.push(await tip({ amount: 1500, currency: 'usd', pm: 'pm_card_visa' }));                // 1
  t.push(await tip({ amount: 1000, currency: 'eur', pm: 'pm_card_visa' }));                // 2
  t.push(await tip({ amount: 250, currency: 'eur', pm: 'pm_card_visa', guest: true }));    // 3
  t.push(await tip({ amount: 1200, currency: 'jpy', pm: 'pm_card_visa' }));                // 4
  t.push(await tip({ amount: 300, currency: 'jpy', pm: 'pm_card_visa' }));                 // 5
  await tip({ amount: 2000, currency: 'usd', pm: 'pm_card_chargeDeclined' });
  await tip({ amount: 800, currency: 'eur', pm: 'pm_card_chargeDeclinedInsufficientFunds' });
  await tip({ amount: 900, currency: 'usd', pm: 'pm_card_chargeDeclined', guest: true });
  await tip({ amount: 1000, currency: 'usd', pm: 'pm_card_authenticationRequired' });
  await tip({ amount: 700, currency: 'usd', pm: 'pm_card_visa', inject: '429_once' });
  await tip({ amount: 600, currency: 'eur', pm: 'pm_card_visa', inject: '500_once' });
  await tip({ amount: 300, currency: 'usd', pm: 'pm_card_visa', inject: '500_once@create' });
  await tip({ amount: 1100, currency: 'usd', pm: 'pm_card_visa', doubleSubmit: true });
  if (opt.withDrop) await tip({ amount: 400, currency: 'usd', pm: 'pm_card_visa', inject: 'drop_once' });
  await onboard(f1, 'first_tip');

  const s1 = await subscribe({ currency: 'usd', unitAmount: 999, interval: 'month' });
  const s2 = await subscribe({ currency: 'usd', unitAmount: 500, interval: 'month', quantity: 2 });
  await subscribe({ currency: 'usd', unitAmount: 12000, interval: 'year' });
  await subscribe({ currency: 'eur', unitAmount: 300, interval: 'week', quantity: 2 });
  await subscribe({ currency: 'eur', unitAmount: 1500, interval: 'month', intervalCount: 3 });
  await subscribe({ currency: 'jpy', unitAmount: 980, interval: 'month' });
  await subscribe({ currency: 'usd', unitAmount: 2400, interval: 'year', quantity: 2 });
  await cancel(s2);

  const ok = (pi) => tipsOk.find((x) => x.pi === pi);
  await refund(ok(t[1]));                                       // full, USD 15.00
  await refund(ok(t[2]), { by: 'charge', amount: 400 });        // partial, EUR 4.00
  await refund(ok(t[4]));                                       // full, JPY 1200
  await refund(ok(t[1]), { expectFail: true });                 // already refunded: 400, no refund

  await redeliver(t[0], 'payment_intent.succeeded');
  await redeliver(s1, 'customer.subscription.created');
  await forgedWebhook('bad_signature');
  await forgedWebhook('unsigned');
}

// ------------------------------------------------------------------ the live loop
let stopping = false;
async function loopMix() {
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopping = true; });
  await register('creator', pick(METHODS), pick(SOURCES));
  await register('fan', pick(METHODS), pick(SOURCES));
  const DURATIONS = [0.25, 1, 2.5, 4.75, 9, 15, 22.5, 30, 48.25, 75, 120, 310.5, 640, 1200, 2400.75, 5000];
  const currencies = [['usd', [300, 500, 1000, 2500]], ['eur', [200, 500, 1500]], ['jpy', [500, 1000, 3000]]];
  const actions = [
    [10, async () => viewContent(pick(contentIds), rnd() < 0.4 ? null : anyUser())],
    [2, async () => register(rnd() < 0.25 ? 'creator' : 'fan', pick(METHODS), pick(SOURCES))],
    [1, async () => uploadContent(pick(['video', 'image', 'audio']), { legacy: rnd() < 0.2 })],
    [5, async () => engage(pick(contentIds), pick(DURATIONS), rnd() < 0.4 ? null : anyUser())],
    [1.5, async () => {
      const todo = [...users.creator, ...users.fan].filter((u) => u.onboarded.size < FUNNELS[u.role].steps.length);
      if (!todo.length) return;
      const u = pick(todo);
      await onboard(u, FUNNELS[u.role].steps.find((st) => !u.onboarded.has(st)));
    }],
    [2, async () => expose(anyUser(), pick(EXPERIMENTS))],
    [8, async () => { const [c, a] = pick(currencies); await tip({ amount: pick(a), currency: c, pm: 'pm_card_visa', guest: rnd() < 0.2 }); }],
    [2, async () => { const [c, a] = pick(currencies); await tip({ amount: pick(a), currency: c, pm: pick(['pm_card_chargeDeclined', 'pm_card_chargeDeclinedInsufficientFunds']) }); }],
    [0.5, async () => tip({ amount: 1000, currency: 'usd', pm: 'pm_card_authenticationRequired' })],
    [0.3, async () => tip({ amount: 700, currency: 'usd', pm: 'pm_card_visa', inject: pick(['429_once', '500_once']) })],
    [0.3, async () => tip({ amount: 1100, currency: 'eur', pm: 'pm_card_visa', doubleSubmit: true })],
    [2, async () => {
      if (activeSubs.size >= 20) return cancel(pick([...activeSubs.keys()]));
      const [interval, unitAmount] = pick([['month', 999], ['month', 499], ['year', 9900], ['week', 300]]);
      return subscribe({ currency: pick(['usd', 'usd', 'eur']), unitAmount, interval, quantity: pick([1, 1, 2]) });
    }],
    [1, async () => { if (activeSubs.size) await cancel(pick([...activeSubs.keys()])); }],
    [1, async () => { const c = tipsOk.filter((x) => x.refunded < x.amount).slice(-20); if (c.length) await refund(pick(c)); }],
    [0.3, async () => { if (tipsOk.length) await redeliver(tipsOk[tipsOk.length - 1].pi, 'payment_intent.succeeded'); }],
    [0.2, async () => forgedWebhook(pick(['bad_signature', 'unsigned']))],
  ];
  const total = actions.reduce((s, [w]) => s + w, 0);
  let n = 0;
  while (!stopping && n < opt.maxActions) {
    let x = rnd() * total;
    const act = actions.find(([w]) => (x -= w) < 0) || actions[0];
    await act[1]();
    n++;
    writeTruth(false);
    await sleep(opt.intervalMs * (0.5 + rnd()));
  }
}

// ------------------------------------------------------------------ cross-checks and main
async function crossCheck(baseRequests, baseEvents) {
  await waitIdle();
  const reqs = (await ctl('GET', '/requests')).body.slice(baseRequests);
  const evs = (await ctl('GET', '/events')).body.slice(baseEvents);
  const problems = [];
  if (reqs.length !== EXPECT.apiExchanges) problems.push(`stand-in saw ${reqs.length} API exchanges, expected ${EXPECT.apiExchanges}`);
  const deliveries = evs.reduce((s, e) => s + e.deliveries.length, 0);
  if (deliveries !== EXPECT.deliveries) problems.push(`stand-in made ${deliveries} webhook deliveries, expected ${EXPECT.deliveries}`);
  const bad = evs.flatMap((e) => e.deliveries.filter((d) => d.status !== 200).map((d) => `${e.type} ${e.id} -> ${d.status}`));
  if (bad.length) problems.push(`webhook deliveries not answered 200: ${bad.join(', ')}`);
  const got = evs.map((e) => `${e.type} ${e.object_id}`).sort();
  const want = expectedWebhooks.map((e) => `${e.type} ${e.object_id}`).sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`events sent ${JSON.stringify(got)} != expected ${JSON.stringify(want)}`);
  const replayed = reqs.filter((r) => r.replayed).length;
  const injected = reqs.filter((r) => r.injected).length;
  const keys = new Map();
  for (const r of reqs) if (r.idempotency_key) keys.set(r.idempotency_key, (keys.get(r.idempotency_key) || 0) + 1);
  return { ok: problems.length === 0, problems, api_exchanges: reqs.length, webhook_events: evs.length,
    webhook_deliveries: deliveries, idempotent_replays: replayed, injected_faults: injected,
    idempotency_keys_reused: [...keys.values()].filter((v) => v > 1).length };
}

async function main() {
  const h = await ctl('GET', '/health').catch((e) => ({ status: 0, text: e.message }));
  if (h.status !== 200) { console.error(`mix: stand-in control API not reachable at ${opt.control} (${h.text}); run inside the demo netns`); process.exit(1); }
  const a = await appReq('GET', '/healthz').catch((e) => ({ status: 0, text: e.message }));
  if (a.status !== 200) { console.error(`mix: app not reachable at ${opt.app} (${a.text})`); process.exit(1); }
  await waitIdle();
  const baseRequests = (await ctl('GET', '/requests')).body.length;
  const baseEvents = (await ctl('GET', '/events')).body.length;
  try {
    if (opt.loop) await loopMix(); else await fixedMix();
  } catch (e) {
    if (e instanceof Mismatch) { console.error(`mix: ${e.message}`); writeTruth(false); process.exit(1); }
    throw e;
  }
  const checks = await crossCheck(baseRequests, baseEvents);
  writeTruth(true, checks);
  console.error(`mix: ${checks.ok ? 'ok' : 'CROSS-CHECK FAILED'}: ${checks.api_exchanges} API exchanges, ${checks.webhook_deliveries} webhook deliveries, ${checks.idempotent_replays} idempotent replays, ${checks.injected_faults} injected faults${checks.ok ? '' : '\n  ' + checks.problems.join('\n  ')}`);
  agent.destroy();
  process.exit(checks.ok ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });

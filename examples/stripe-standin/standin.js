#!/usr/bin/env node
// Stripe API stand-in for the bizprobe demo. Built-in modules only (https, http, crypto).
//
// It plays api.stripe.com on 127.0.0.1:443 inside the demo network namespace, with a certificate
// for api.stripe.com signed by a throw-away local CA (scripts/demo-env.sh makes both), so the demo
// app keeps the SDK's production defaults and bizprobe sees real TLS traffic to the real host name.
//
// What it does, like the real API:
//   - form-encoded requests (a[b][0][c]=v), JSON responses, Bearer sk_test_... auth, Request-Id,
//     Stripe-Version echoed, Content-Length framing (STANDIN_CHUNKED=1 switches to chunked);
//   - payment intents (create, confirm, retrieve, cancel) honouring Stripe's test payment methods,
//     charges, customers, prices, subscriptions (create, retrieve, cancel), refunds;
//   - Idempotency-Key on POST: the first response is stored and replayed with
//     `Idempotent-Replayed: true`; the same key with other parameters is a 400 idempotency_error;
//   - after each state change, a signed webhook event to WEBHOOK_URL (Stripe-Signature
//     t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>), pretty-printed JSON like Stripe's.
//     The endpoint is "subscribed" to: payment_intent.succeeded, payment_intent.payment_failed,
//     payment_intent.requires_action, customer.subscription.created, customer.subscription.deleted,
//     charge.refunded.
//
// Fault injection (for the scripted mix), set through metadata[inject] on a payment intent:
//   429_once   the confirm request fails once with 429 lock_timeout and `Stripe-Should-Retry: true`
//   500_once   the confirm request fails once with 500 api_error
//   drop_once  the confirm request is executed, its response stored, and the connection is reset
//              without an answer; the SDK's retry then gets the stored response, replayed
//   Append "@create" (e.g. 500_once@create) to hit the create request instead of the confirm.
//   "once" is per Idempotency-Key: the SDK's retry carries the same key and succeeds. A failed
//   429/500 attempt is not stored for idempotency (the request never started executing), as
//   with Stripe's own lock timeouts and transient errors.
//
// Control API (plain HTTP, CONTROL_PORT, default 127.0.0.1:12112), used by the mix and tests only:
//   GET  /health                   {"ok":true}
//   GET  /requests                 every API exchange: method, path, status, idempotency key, replayed
//   GET  /events                   every event with its deliveries (status per delivery)
//   GET  /idle                     {"pending": n}  webhooks queued or in flight
//   POST /redeliver                {"event_id"} or {"object_id","type"}: deliver the same event again
//
// Logs: one JSON line per API exchange and per webhook delivery on stdout. No API keys, e-mails or
// card data are logged (only the payment method's test token name).
'use strict';

const https = require('https');
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const cfg = {
  host: process.env.STANDIN_HOST || '127.0.0.1',
  port: Number(process.env.STANDIN_PORT || 443),
  cert: process.env.STANDIN_CERT,
  key: process.env.STANDIN_KEY,
  controlHost: process.env.CONTROL_HOST || '127.0.0.1',
  controlPort: Number(process.env.CONTROL_PORT || 12112),
  webhookUrl: process.env.WEBHOOK_URL || 'http://127.0.0.1:3000/webhooks/stripe',
  webhookSecret: process.env.STRIPE_WEBHOOK_SECRET || '',
  webhookDelayMs: Number(process.env.WEBHOOK_DELAY_MS || 20),
  chunked: process.env.STANDIN_CHUNKED === '1',
};
const DEFAULT_API_VERSION = '2026-10-28.endive';
const SUBSCRIBED = new Set([
  'payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.requires_action',
  'customer.subscription.created', 'customer.subscription.deleted', 'charge.refunded',
]);
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf',
  'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);

function log(obj) { process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), ...obj }) + '\n'); }

// ---------------------------------------------------------------- ids and helpers
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function rand62(n) {
  const b = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += B62[b[i] % 62];
  return s;
}
let seq = 0;
let connSeq = 0;
// Stripe ids: prefix, then an account-ish and time-ish part. Ours: 24 chars after the prefix.
function newId(prefix) { seq++; return `${prefix}_3Q${rand62(8)}${seq.toString(36).padStart(4, '0')}${rand62(10)}`; }
const now = () => Math.floor(Date.now() / 1000);

// Parse Stripe's form encoding: metadata[fan_id]=x, items[0][price]=y, expand[]=z.
function parseForm(body) {
  const out = {};
  for (const [k, v] of new URLSearchParams(body)) {
    const parts = [];
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(k);
    if (!m) { out[k] = v; continue; }
    parts.push(m[1]);
    for (const p of m[2].matchAll(/\[([^\]]*)\]/g)) parts.push(p[1]);
    let cur = out;
    for (let i = 0; i < parts.length; i++) {
      let key = parts[i];
      const last = i === parts.length - 1;
      if (Array.isArray(cur) && key === '') key = cur.length;
      if (last) { cur[key] = v; break; }
      const nextIsIndex = parts[i + 1] === '' || /^\d+$/.test(parts[i + 1]);
      if (cur[key] === undefined) cur[key] = nextIsIndex ? [] : {};
      cur = cur[key];
    }
  }
  return out;
}

class ApiError extends Error {
  constructor(status, error, headers) { super(error.message); this.status = status; this.error = error; this.headers = headers || {}; }
}
const invalid = (message, param, code) => new ApiError(400, { type: 'invalid_request_error', message, ...(param ? { param } : {}), ...(code ? { code } : {}) });
const missing = (kind, id, param = 'id') => new ApiError(404, { code: 'resource_missing', doc_url: 'https://docs.stripe.com/error-codes/resource-missing', message: `No such ${kind}: '${id}'`, param, type: 'invalid_request_error' });
function intParam(v, name) {
  if (v === undefined || v === '') throw invalid(`Missing required param: ${name}.`, name, 'parameter_missing');
  if (!/^\d+$/.test(String(v))) throw invalid(`Invalid integer: ${v}`, name, 'parameter_invalid_integer');
  return Number(v);
}
function currencyParam(v) {
  if (!v) throw invalid('Missing required param: currency.', 'currency', 'parameter_missing');
  const c = String(v).toLowerCase();
  if (!/^[a-z]{3}$/.test(c)) throw invalid(`Invalid currency: ${v}`, 'currency');
  return c;
}
const clone = (o) => JSON.parse(JSON.stringify(o));

// ---------------------------------------------------------------- state
const db = { customers: new Map(), prices: new Map(), products: new Map(), payment_intents: new Map(),
  charges: new Map(), subscriptions: new Map(), refunds: new Map() };
const idem = new Map();        // Idempotency-Key -> { fingerprint, status, headers, body }
const faulted = new Set();     // Idempotency-Keys that already had their injected fault
const requests = [];           // exchange log for the control API
const events = [];             // events with deliveries
const eventsById = new Map();

// ---------------------------------------------------------------- objects (key order as Stripe's)
function cardDetails(pm) {
  const last4 = { pm_card_visa: '4242', pm_card_chargeDeclined: '0002', pm_card_chargeDeclinedInsufficientFunds: '9995',
    pm_card_authenticationRequired: '3184', pm_card_chargeDeclinedExpiredCard: '0069', pm_card_chargeDeclinedIncorrectCvc: '0127',
    pm_card_mastercard: '4444' }[pm] || '4242';
  return { card: { amount_authorized: null, brand: pm === 'pm_card_mastercard' ? 'mastercard' : 'visa',
    checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' }, country: 'US',
    exp_month: 12, exp_year: 2034, funding: 'credit', last4, network: pm === 'pm_card_mastercard' ? 'mastercard' : 'visa',
    three_d_secure: null, wallet: null }, type: 'card' };
}

function newCustomer(p) {
  return { id: newId('cus').slice(0, 18), object: 'customer', address: null, balance: 0, created: now(), currency: null,
    default_source: null, delinquent: false, description: p.description || null, discount: null,
    email: p.email || null, invoice_prefix: rand62(8).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: (p.invoice_settings || {}).default_payment_method || null,
      footer: null, rendering_options: null },
    livemode: false, metadata: p.metadata || {}, name: p.name || null, next_invoice_sequence: 1, phone: null,
    preferred_locales: [], shipping: null, tax_exempt: 'none', test_clock: null };
}

function newPrice(p) {
  const currency = currencyParam(p.currency);
  const unit = intParam(p.unit_amount, 'unit_amount');
  let product = p.product;
  if (!product) {
    const pd = p.product_data || {};
    if (!pd.name) throw invalid('Missing required param: product_data[name].', 'product_data[name]', 'parameter_missing');
    product = newId('prod').slice(0, 19);
    db.products.set(product, { id: product, object: 'product', name: pd.name, created: now() });
  }
  let recurring = null;
  if (p.recurring) {
    const interval = p.recurring.interval;
    if (!['day', 'week', 'month', 'year'].includes(interval)) throw invalid(`Invalid recurring[interval]: must be one of day, week, month, or year`, 'recurring[interval]');
    recurring = { interval, interval_count: p.recurring.interval_count ? intParam(p.recurring.interval_count, 'recurring[interval_count]') : 1,
      meter: null, trial_period_days: null, usage_type: 'licensed' };
  }
  return { id: newId('price'), object: 'price', active: true, billing_scheme: 'per_unit', created: now(), currency,
    custom_unit_amount: null, livemode: false, lookup_key: null, metadata: p.metadata || {}, nickname: p.nickname || null,
    product, recurring, tax_behavior: 'unspecified', tiers_mode: null, transform_quantity: null,
    type: recurring ? 'recurring' : 'one_time', unit_amount: unit, unit_amount_decimal: String(unit) };
}

function newPaymentIntent(p) {
  const amount = intParam(p.amount, 'amount');
  if (amount < 1) throw invalid('This value must be greater than or equal to 1.', 'amount', 'parameter_invalid_integer');
  const currency = currencyParam(p.currency);
  const id = newId('pi');
  return { id, object: 'payment_intent', amount, amount_capturable: 0, amount_details: { tip: {} }, amount_received: 0,
    application: null, application_fee_amount: null, automatic_payment_methods: null, canceled_at: null,
    cancellation_reason: null, capture_method: 'automatic_async', client_secret: `${id}_secret_${rand62(25)}`,
    confirmation_method: 'automatic', created: now(), currency, customer: p.customer || null,
    description: p.description || null, last_payment_error: null, latest_charge: null, livemode: false,
    metadata: p.metadata || {}, next_action: null, on_behalf_of: null, payment_method: p.payment_method || null,
    payment_method_configuration_details: null, payment_method_options: { card: { installments: null, mandate_options: null,
      network: null, request_three_d_secure: 'automatic' } }, payment_method_types: ['card'], processing: null,
    receipt_email: null, review: null, setup_future_usage: null, shipping: null, source: null,
    statement_descriptor: null, statement_descriptor_suffix: null,
    status: p.payment_method ? 'requires_confirmation' : 'requires_payment_method', transfer_data: null, transfer_group: null };
}

function newCharge(pi, outcome) {
  const ok = outcome.ok;
  return { id: newId('ch'), object: 'charge', amount: pi.amount, amount_captured: ok ? pi.amount : 0, amount_refunded: 0,
    application: null, application_fee: null, application_fee_amount: null,
    balance_transaction: ok ? newId('txn') : null,
    billing_details: { address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      email: null, name: null, phone: null, tax_id: null },
    calculated_statement_descriptor: 'BIZPROBE DEMO', captured: ok, created: now(), currency: pi.currency,
    customer: pi.customer, description: pi.description, disputed: false, failure_balance_transaction: null,
    failure_code: ok ? null : outcome.code, failure_message: ok ? null : outcome.message, fraud_details: {},
    livemode: false, metadata: {}, on_behalf_of: null,
    outcome: ok
      ? { advice_code: null, network_advice_code: null, network_decline_code: null, network_status: 'approved_by_network',
        reason: null, risk_level: 'normal', risk_score: 32, seller_message: 'Payment complete.', type: 'authorized' }
      : { advice_code: 'try_again_later', network_advice_code: null, network_decline_code: null, network_status: 'declined_by_network',
        reason: outcome.decline_code, risk_level: 'normal', risk_score: 40, seller_message: 'The bank did not return any further details with this decline.',
        type: 'issuer_declined' },
    paid: ok, payment_intent: pi.id, payment_method: pi.payment_method, payment_method_details: cardDetails(pi.payment_method),
    receipt_email: null, receipt_number: null, receipt_url: null, refunded: false,
    refunds: { object: 'list', data: [], has_more: false, total_count: 0, url: '' },
    review: null, shipping: null, source: null, source_transfer: null, statement_descriptor: null,
    statement_descriptor_suffix: null, status: ok ? 'succeeded' : 'failed', transfer_data: null, transfer_group: null };
}

function newSubscription(p, customer, items) {
  const id = newId('sub');
  const t = now();
  const first = items[0];
  return { id, object: 'subscription', application: null, application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null }, billing_cycle_anchor: t,
    billing_cycle_anchor_config: null, billing_mode: { flexible: null, type: 'classic' }, billing_thresholds: null,
    cancel_at: null, cancel_at_period_end: false, canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null }, collection_method: 'charge_automatically',
    created: t, currency: first.price.currency, customer: customer.id, days_until_due: null,
    default_payment_method: p.default_payment_method || customer.invoice_settings.default_payment_method || null,
    default_source: null, default_tax_rates: [], description: p.description || null, discounts: [], ended_at: null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: { object: 'list', data: items.map((it) => ({ id: newId('si').slice(0, 17), object: 'subscription_item',
      billing_thresholds: null, created: t, current_period_end: periodEnd(t, it.price.recurring), current_period_start: t,
      discounts: [], metadata: {}, plan: planOf(it.price), price: it.price, quantity: it.quantity, subscription: id,
      tax_rates: [] })), has_more: false, total_count: items.length, url: `/v1/subscription_items?subscription=${id}` },
    latest_invoice: newId('in'), livemode: false, metadata: p.metadata || {}, next_pending_invoice_item_invoice: null,
    on_behalf_of: null, pause_collection: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    pending_invoice_item_interval: null, pending_setup_intent: null, pending_update: null, schedule: null, start_date: t,
    status: 'active', test_clock: null, transfer_data: null, trial_end: null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } }, trial_start: null };
}
function planOf(price) {
  return { id: price.id, object: 'plan', active: true, amount: price.unit_amount, amount_decimal: price.unit_amount_decimal,
    billing_scheme: 'per_unit', created: price.created, currency: price.currency, interval: price.recurring.interval,
    interval_count: price.recurring.interval_count, livemode: false, metadata: {}, meter: null, nickname: null,
    product: price.product, tiers_mode: null, transform_usage: null, trial_period_days: null, usage_type: 'licensed' };
}
function periodEnd(t, r) {
  const d = new Date(t * 1000);
  const n = r.interval_count;
  if (r.interval === 'day') d.setUTCDate(d.getUTCDate() + n);
  else if (r.interval === 'week') d.setUTCDate(d.getUTCDate() + 7 * n);
  else if (r.interval === 'month') d.setUTCMonth(d.getUTCMonth() + n);
  else d.setUTCFullYear(d.getUTCFullYear() + n);
  return Math.floor(d.getTime() / 1000);
}

// Stripe's test payment methods: what a confirm with each one does.
const DECLINES = {
  pm_card_chargeDeclined: { code: 'card_declined', decline_code: 'generic_declined', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_chargeDeclinedExpiredCard: { code: 'expired_card', decline_code: 'expired_card', message: 'Your card has expired.' },
  pm_card_chargeDeclinedIncorrectCvc: { code: 'incorrect_cvc', decline_code: 'incorrect_cvc', message: "Your card's security code is incorrect." },
};

// ---------------------------------------------------------------- webhooks
let deliveryChain = Promise.resolve();
let pending = 0;
function emitEvent(type, object, ctx) {
  if (!SUBSCRIBED.has(type)) return;
  const ev = { id: newId('evt'), object: 'event', api_version: ctx.apiVersion || DEFAULT_API_VERSION, created: now(),
    data: { object: clone(object) }, livemode: false, pending_webhooks: 1,
    request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey || null }, type };
  const rec = { id: ev.id, type, object_id: object.id, payload: JSON.stringify(ev, null, 2), deliveries: [] };
  events.push(rec);
  eventsById.set(rec.id, rec);
  // Sent after the API response has gone out, one at a time, in order.
  queueDelivery(rec, false);
  return rec;
}
function queueDelivery(rec, redelivery) {
  pending++;
  const p = deliveryChain.then(() => new Promise((r) => setTimeout(r, cfg.webhookDelayMs)))
    .then(() => deliver(rec, redelivery)).finally(() => { pending--; });
  deliveryChain = p.catch(() => {});
  return p;
}
function sign(payload, t) {
  return crypto.createHmac('sha256', cfg.webhookSecret).update(`${t}.${payload}`, 'utf8').digest('hex');
}
function deliver(rec, redelivery) {
  return new Promise((resolve) => {
    const t = now();
    const body = Buffer.from(rec.payload, 'utf8');
    const u = new URL(cfg.webhookUrl);
    const req = http.request({ host: u.hostname, port: u.port || 80, path: u.pathname + u.search, method: 'POST',
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length,
        'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)', 'Cache-Control': 'no-cache',
        Accept: '*/*; q=0.5, application/xml', 'Stripe-Signature': `t=${t},v1=${sign(rec.payload, t)}` } }, (res) => {
      res.resume();
      res.on('end', () => {
        rec.deliveries.push({ at: t, status: res.statusCode, redelivery });
        log({ kind: 'webhook', event: rec.id, type: rec.type, object: rec.object_id, status: res.statusCode, redelivery });
        resolve(res.statusCode);
      });
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      rec.deliveries.push({ at: t, status: 0, error: e.code || e.message, redelivery });
      log({ kind: 'webhook', event: rec.id, type: rec.type, object: rec.object_id, status: 0, error: e.code || e.message, redelivery });
      resolve(0);
    });
    req.end(body);
  });
}

// ---------------------------------------------------------------- API handlers
function confirmIntent(pi, p, ctx) {
  if (p.payment_method) pi.payment_method = p.payment_method;
  if (pi.status === 'succeeded') throw invalid('This PaymentIntent\'s status is succeeded, so it cannot be confirmed.', undefined, 'payment_intent_unexpected_state');
  if (!['requires_confirmation', 'requires_payment_method', 'requires_action'].includes(pi.status)) throw invalid(`This PaymentIntent's status is ${pi.status}.`, undefined, 'payment_intent_unexpected_state');
  if (!pi.payment_method) throw invalid('You cannot confirm this PaymentIntent because it\'s missing a payment method.', 'payment_method', 'payment_intent_unexpected_state');
  const pm = pi.payment_method;
  if (DECLINES[pm]) {
    const d = DECLINES[pm];
    const ch = newCharge(pi, { ok: false, ...d });
    db.charges.set(ch.id, ch);
    pi.latest_charge = ch.id;
    pi.status = 'requires_payment_method';
    pi.last_payment_error = { charge: ch.id, code: d.code, decline_code: d.decline_code,
      doc_url: `https://docs.stripe.com/error-codes/${d.code.replace(/_/g, '-')}`, message: d.message,
      payment_method: { id: pm, object: 'payment_method', card: cardDetails(pm).card, type: 'card' }, type: 'card_error' };
    emitEvent('payment_intent.payment_failed', pi, ctx);
    throw new ApiError(402, { charge: ch.id, code: d.code, decline_code: d.decline_code, doc_url: pi.last_payment_error.doc_url,
      message: d.message, payment_intent: clone(pi), payment_method: pi.last_payment_error.payment_method,
      request_log_url: `https://dashboard.stripe.com/test/logs/${ctx.requestId}?t=${now()}`, type: 'card_error' });
  }
  if (pm === 'pm_card_authenticationRequired' || pm === 'pm_card_threeDSecureRequired') {
    if (pi.status !== 'requires_action') {
      pi.status = 'requires_action';
      pi.next_action = { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: '', source: newId('src') } };
      emitEvent('payment_intent.requires_action', pi, ctx);
    }
    return pi;
  }
  const ch = newCharge(pi, { ok: true });
  db.charges.set(ch.id, ch);
  pi.latest_charge = ch.id;
  pi.status = 'succeeded';
  pi.amount_received = pi.amount;
  pi.last_payment_error = null;
  pi.next_action = null;
  emitEvent('payment_intent.succeeded', pi, ctx);
  return pi;
}

function injectFor(meta, step) {
  const v = meta && meta.inject;
  if (!v) return null;
  const [what, where] = String(v).split('@');
  return (where || 'confirm') === step ? what : null;
}

const routes = [
  ['POST', /^\/v1\/customers$/, (p) => { const c = newCustomer(p); db.customers.set(c.id, c); return c; }],
  ['GET', /^\/v1\/customers\/([^/]+)$/, (p, [id]) => db.customers.get(id) || (() => { throw missing('customer', id); })()],
  ['POST', /^\/v1\/prices$/, (p) => { const pr = newPrice(p); db.prices.set(pr.id, pr); return pr; }],
  ['GET', /^\/v1\/prices\/([^/]+)$/, (p, [id]) => db.prices.get(id) || (() => { throw missing('price', id); })()],
  ['POST', /^\/v1\/payment_intents$/, (p, m, ctx) => {
    const pi = newPaymentIntent(p);
    db.payment_intents.set(pi.id, pi);
    if (p.confirm === 'true') confirmIntent(pi, p, ctx);
    return pi;
  }],
  ['GET', /^\/v1\/payment_intents\/([^/]+)$/, (p, [id]) => db.payment_intents.get(id) || (() => { throw missing('payment_intent', id, 'intent'); })()],
  ['POST', /^\/v1\/payment_intents\/([^/]+)\/confirm$/, (p, [id], ctx) => {
    const pi = db.payment_intents.get(id);
    if (!pi) throw missing('payment_intent', id, 'intent');
    return confirmIntent(pi, p, ctx);
  }],
  ['POST', /^\/v1\/payment_intents\/([^/]+)\/cancel$/, (p, [id]) => {
    const pi = db.payment_intents.get(id);
    if (!pi) throw missing('payment_intent', id, 'intent');
    if (pi.status === 'succeeded' || pi.status === 'canceled') throw invalid(`You cannot cancel this PaymentIntent because it has a status of ${pi.status}.`, undefined, 'payment_intent_unexpected_state');
    pi.status = 'canceled'; pi.canceled_at = now(); pi.cancellation_reason = p.cancellation_reason || null;
    return pi;
  }],
  ['GET', /^\/v1\/charges\/([^/]+)$/, (p, [id]) => db.charges.get(id) || (() => { throw missing('charge', id); })()],
  ['POST', /^\/v1\/subscriptions$/, (p, m, ctx) => {
    const customer = db.customers.get(p.customer);
    if (!p.customer) throw invalid('Missing required param: customer.', 'customer', 'parameter_missing');
    if (!customer) throw missing('customer', p.customer, 'customer');
    const items = (p.items || []).map((it, i) => {
      let price = it.price && db.prices.get(it.price);
      if (it.price && !price) throw missing('price', it.price, `items[${i}][price]`);
      if (!price && it.price_data) { price = newPrice(it.price_data); db.prices.set(price.id, price); }
      if (!price) throw invalid(`Missing required param: items[${i}][price].`, `items[${i}][price]`, 'parameter_missing');
      if (!price.recurring) throw invalid('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', `items[${i}][price]`);
      return { price, quantity: it.quantity === undefined ? 1 : intParam(it.quantity, `items[${i}][quantity]`) };
    });
    if (!items.length) throw invalid('Missing required param: items.', 'items', 'parameter_missing');
    if (!p.default_payment_method && !customer.invoice_settings.default_payment_method)
      throw invalid('This customer has no attached payment source or default payment method.', undefined, 'resource_missing');
    const sub = newSubscription(p, customer, items);
    db.subscriptions.set(sub.id, sub);
    emitEvent('customer.subscription.created', sub, ctx);
    return sub;
  }],
  ['GET', /^\/v1\/subscriptions\/([^/]+)$/, (p, [id]) => db.subscriptions.get(id) || (() => { throw missing('subscription', id); })()],
  ['DELETE', /^\/v1\/subscriptions\/([^/]+)$/, (p, [id], ctx) => {
    const sub = db.subscriptions.get(id);
    if (!sub) throw missing('subscription', id);
    if (sub.status === 'canceled') throw missing('subscription', id); // Stripe: a canceled subscription is gone
    const t = now();
    sub.status = 'canceled'; sub.canceled_at = t; sub.ended_at = t;
    sub.cancellation_details = { comment: null, feedback: null, reason: 'cancellation_requested' };
    emitEvent('customer.subscription.deleted', sub, ctx);
    return sub;
  }],
  ['POST', /^\/v1\/refunds$/, (p, m, ctx) => {
    let ch;
    if (p.charge) { ch = db.charges.get(p.charge); if (!ch) throw missing('charge', p.charge, 'charge'); }
    else if (p.payment_intent) {
      const pi = db.payment_intents.get(p.payment_intent);
      if (!pi) throw missing('payment_intent', p.payment_intent, 'payment_intent');
      ch = pi.latest_charge && db.charges.get(pi.latest_charge);
      if (!ch || pi.status !== 'succeeded') throw invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, 'payment_intent', 'charge_not_refundable');
    } else throw invalid('One of the following params should be provided for this request: payment_intent or charge.', undefined, 'parameter_missing');
    if (ch.status !== 'succeeded') throw invalid(`Charge ${ch.id} has not been captured or has failed.`, 'charge', 'charge_not_refundable');
    const left = ch.amount_captured - ch.amount_refunded;
    if (left <= 0) throw invalid(`Charge ${ch.id} has already been refunded.`, undefined, 'charge_already_refunded');
    const amount = p.amount === undefined ? left : intParam(p.amount, 'amount');
    if (amount > left) throw invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${left})`, 'amount', 'amount_too_large');
    const re = { id: newId('re'), object: 'refund', amount, balance_transaction: newId('txn'), charge: ch.id, created: now(),
      currency: ch.currency, destination_details: { card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' }, type: 'card' },
      metadata: p.metadata || {}, payment_intent: ch.payment_intent, reason: p.reason || null, receipt_number: null,
      source_transfer_reversal: null, status: 'succeeded', transfer_reversal: null };
    db.refunds.set(re.id, re);
    ch.amount_refunded += amount;
    ch.refunded = ch.amount_refunded === ch.amount_captured;
    ch.refunds.data.unshift(re); ch.refunds.total_count++; ch.refunds.url = `/v1/charges/${ch.id}/refunds`;
    emitEvent('charge.refunded', ch, ctx);
    return re;
  }],
];

// ---------------------------------------------------------------- HTTP plumbing
function send(res, status, headers, obj) {
  const body = Buffer.from(JSON.stringify(obj, null, 2) + '\n', 'utf8');
  const h = { Server: 'nginx', Date: new Date().toUTCString(), 'Content-Type': 'application/json',
    'Access-Control-Allow-Credentials': 'true', 'Access-Control-Allow-Methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
    'Access-Control-Allow-Origin': '*', 'Access-Control-Max-Age': '300', 'Cache-Control': 'no-cache, no-store',
    'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload', ...headers };
  if (cfg.chunked) { res.writeHead(status, h); res.write(body.subarray(0, body.length >> 1)); res.end(body.subarray(body.length >> 1)); }
  else { h['Content-Length'] = body.length; res.writeHead(status, h); res.end(body); }
}

function handleApi(req, res, raw) {
  const url = new URL(req.url, 'https://api.stripe.com');
  const path = url.pathname;
  const requestId = `req_${rand62(14)}`;
  const apiVersion = req.headers['stripe-version'] || DEFAULT_API_VERSION;
  const key = req.method === 'POST' ? req.headers['idempotency-key'] : undefined;
  // Wire facts for the tracer's developers: which TLS connection (keep-alive reuse), framing, encoding.
  if (!req.socket.standinId) { req.socket.standinId = ++connSeq; req.socket.standinRequests = 0; }
  req.socket.standinRequests++;
  const entry = { at: Date.now(), method: req.method, path, idempotency_key: key || null, request_id: requestId,
    conn: req.socket.standinId, conn_request: req.socket.standinRequests,
    framing: req.headers['transfer-encoding'] ? `te:${req.headers['transfer-encoding']}` : `cl:${req.headers['content-length'] || 0}`,
    accept_encoding: req.headers['accept-encoding'] || null, content_encoding: req.headers['content-encoding'] || null };
  const baseHeaders = { 'Request-Id': requestId, 'Stripe-Version': apiVersion };
  if (key) baseHeaders['Idempotency-Key'] = key;
  const finish = (status, headers, obj, extra = {}) => {
    Object.assign(entry, { status, ...extra });
    requests.push(entry);
    log({ kind: 'api', ...entry });
    send(res, status, headers, obj);
  };

  const auth = req.headers.authorization || '';
  if (!/^Bearer sk_test_\S+$/.test(auth)) {
    return finish(401, baseHeaders, { error: { message: 'Invalid API Key provided.', type: 'invalid_request_error' } });
  }
  const params = req.method === 'GET' || req.method === 'DELETE' ? parseForm(url.search.slice(1) || raw) : parseForm(raw);
  const fingerprint = crypto.createHash('sha256').update(`${req.method} ${path}\n${raw}`).digest('hex');

  if (key && idem.has(key)) {
    const st = idem.get(key);
    if (st.fingerprint !== fingerprint) {
      return finish(400, baseHeaders, { error: { message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`, type: 'idempotency_error' } });
    }
    return finish(st.status, { ...st.headers, 'Idempotent-Replayed': 'true' }, st.body, { replayed: true, original_request_id: st.headers['Request-Id'] });
  }

  const route = routes.find(([m, re]) => m === req.method && re.test(path));
  if (!route) {
    return finish(404, baseHeaders, { error: { message: `Unrecognized request URL (${req.method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, type: 'invalid_request_error' } });
  }
  const ctx = { requestId, apiVersion, idempotencyKey: key };
  const args = route[1].exec(path).slice(1);
  // Injected faults hit the first attempt of an Idempotency-Key only; the SDK's retry reuses the key.
  const fault = key && !faulted.has(key) ? faultFor(req.method, path, params, args) : null;
  if (fault) faulted.add(key);
  if (fault === '429_once') {
    // Refused before executing: nothing is stored for the key, the retry executes.
    return finish(429, { ...baseHeaders, 'Stripe-Should-Retry': 'true' }, { error: { code: 'lock_timeout', doc_url: 'https://docs.stripe.com/error-codes/lock-timeout', message: 'This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request.', type: 'invalid_request_error' } }, { injected: fault });
  }
  if (fault === '500_once') {
    return finish(500, baseHeaders, { error: { message: 'An unknown error occurred', type: 'api_error' } }, { injected: fault });
  }
  let status = 200; let body; let headers = baseHeaders;
  try {
    body = route[2](params, args, ctx);
  } catch (e) {
    if (!(e instanceof ApiError)) { console.error(e); status = 500; body = { error: { message: 'An unknown error occurred', type: 'api_error' } }; }
    else { status = e.status; body = { error: { ...e.error, request_log_url: e.error.request_log_url || `https://dashboard.stripe.com/test/logs/${requestId}?t=${now()}` } }; headers = { ...baseHeaders, ...e.headers }; }
  }
  // Stripe stores the result of every request that started executing, errors included.
  if (key) idem.set(key, { fingerprint, status, headers, body: clone(body) });
  if (fault === 'drop_once') {
    Object.assign(entry, { status: 0, injected: fault });
    requests.push(entry);
    log({ kind: 'api', ...entry });
    req.socket.destroy();
    return;
  }
  finish(status, headers, body);
}

function faultFor(method, path, params, args) {
  if (method !== 'POST') return null;
  if (path === '/v1/payment_intents') return injectFor(params.metadata, 'create');
  if (/^\/v1\/payment_intents\/[^/]+\/confirm$/.test(path)) {
    const pi = db.payment_intents.get(args[0]);
    return pi ? injectFor(pi.metadata, 'confirm') : null;
  }
  return null;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- control API
async function handleControl(req, res) {
  const j = (status, obj) => { const b = JSON.stringify(obj); res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b) }); res.end(b); };
  const url = new URL(req.url, 'http://control');
  if (req.method === 'GET' && url.pathname === '/health') return j(200, { ok: true });
  if (req.method === 'GET' && url.pathname === '/requests') return j(200, requests);
  if (req.method === 'GET' && url.pathname === '/idle') return j(200, { pending });
  if (req.method === 'GET' && url.pathname === '/events') return j(200, events.map(({ payload, ...e }) => e));
  if (req.method === 'POST' && url.pathname === '/redeliver') {
    let p = {};
    try { p = JSON.parse((await readBody(req)) || '{}'); } catch { return j(400, { error: 'bad json' }); }
    const rec = p.event_id ? eventsById.get(p.event_id)
      : events.find((e) => e.object_id === p.object_id && e.type === p.type);
    if (!rec) return j(404, { error: 'no such event' });
    const status = await queueDelivery(rec, true);
    return j(200, { event_id: rec.id, type: rec.type, status });
  }
  j(404, { error: 'not found' });
}

// ---------------------------------------------------------------- start
if (!cfg.cert || !cfg.key) { console.error('standin: STANDIN_CERT and STANDIN_KEY are required'); process.exit(2); }
if (!cfg.webhookSecret) { console.error('standin: STRIPE_WEBHOOK_SECRET is required'); process.exit(2); }
const api = https.createServer({ cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key), ALPNProtocols: ['http/1.1'] },
  async (req, res) => {
    try { handleApi(req, res, await readBody(req)); } catch (e) { console.error(e); res.destroy(); }
  });
api.keepAliveTimeout = 60000;
api.listen(cfg.port, cfg.host, () => log({ kind: 'listening', api: `${cfg.host}:${cfg.port}`, webhook_url: cfg.webhookUrl, chunked: cfg.chunked }));
const control = http.createServer((req, res) => { handleControl(req, res).catch((e) => { console.error(e); res.destroy(); }); });
control.listen(cfg.controlPort, cfg.controlHost, () => log({ kind: 'listening', control: `${cfg.controlHost}:${cfg.controlPort}` }));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { api.close(); control.close(); process.exit(0); });

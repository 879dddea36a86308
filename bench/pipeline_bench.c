// SPDX-License-Identifier: MIT
/*
 * bizprobe bench: userspace CPU per HTTP exchange of the real pipeline, without BPF.
 *   pipeline_bench [REPETITIONS [WORKLOAD]]      (defaults: 7, every workload)
 *
 * Chunks are fed to http_tracker_feed as src/cli/pipeline.c feeds them (struct capture_chunk,
 * one per read/write call), and every exchange goes to stripe_semantics_on_exchange with a
 * metrics registry as src/cli/run.c wires it (webhook secret set, as bench/run.sh runs B).
 *   A: a trivial Node.js HTTPS server (bench/https-server.js): keep-alive GET / and its 200 with
 *      a 13-byte body, 64 connections, server role.
 *   B: the demo's payment mix (bench/tips.lua against examples/fan-platform), per cycle four
 *      exchanges: inbound POST /api/tips and its 201; outbound POST /v1/payment_intents and
 *      POST /v1/payment_intents/{id}/confirm with the stripe-node SDK's headers, answered with
 *      Stripe's response headers and a PaymentIntent shaped like Stripe's own fixture
 *      (stripe/openapi fixtures3.json, pretty-printed as the API sends it); an inbound signed
 *      payment_intent.succeeded webhook with the same PaymentIntent. 68 connections.
 * Every message is built before the clock starts; a repetition runs a fresh tracker, semantics
 * and registry over the same bytes, so ids never repeat within one. Each repetition checks that
 * every exchange was delivered and that the Stripe counters hold exactly the expected values,
 * so a broken pipeline fails the bench instead of looking fast.
 *
 *   G, G_KEPT: a server's HTML page, 32 KiB gzip-compressed by the app as compression
 *      middleware does, to keep-alive GETs on 64 connections: an exchange no consumer reads.
 *      G runs with the body filter as run.c wires it (the body is counted, not inflated);
 *      G_KEPT without one, keeping and inflating every body as the stage did before it.
 *   R0, R2: the rules stage alone (src/rules), 50 rules loaded as `run --rules` loads them, fed
 *      one completed exchange again and again: R0 one that no rule matches (GET of a static
 *      file), R2 one whose rule reads two JSON fields (a label from the request body, a
 *      histogram value from the response body). Each repetition checks the events emitted.
 * Prints one JSON line per workload: median and minimum ns per exchange over the repetitions.
 * Wall time is noisy on a small VM; for deterministic instruction counts run one repetition
 * under callgrind and collect only inside feed_all:
 *   valgrind --tool=callgrind --toggle-collect=feed_all build/bench/pipeline_bench 1 B
 * and divide the Ir total by the exchanges it printed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "bizprobe/http_exchange.h"
#include "bizprobe/metrics.h"
#include "bizprobe/business_event.h"
#include "bizprobe/rules.h"
#include "bizprobe/stripe.h"
#include "../tests/unit/stripe_sign.h"

#define A_CONNS	     64
#define A_ROUNDS     128 /* exchanges per connection per repetition */
#define G_PAGE_BYTES (32 * 1024)
#define G_ROUNDS     32
#define B_CYCLES     2048
#define B_BATCH	     32 /* cycles in flight at once: one per tip and per API connection */
#define B_HOOKCONNS  4
#define CHUNK_GAP_NS 20000ull /* between consecutive chunks */
#define START_NS     1000000000000ull
#define WALL0	     ((time_t)1764300000)
#define SECRET	     "whsec_bench_5a3f9c1e7b2d4a6f8e0c1b3d5f7a9c2e"
#define PID	     4242u
#define RULES_N	     50
#define RULES_EVALS  200000 /* exchanges per repetition of R0 and R2 */

struct feed_ev {
	unsigned conn;
	enum bp_dir dir;
	const uint8_t *data;
	uint32_t len;
};

struct workload {
	const char *name;
	struct conn_ref *conns;
	unsigned n_conns;
	struct feed_ev *evs;
	size_t n_evs, cap_evs;
	char **bufs; /* owned message bytes */
	size_t n_bufs;
	uint64_t exchanges;	 /* expected deliveries per repetition */
	unsigned cycles;	 /* B: tips, each one succeeded payment */
	uint64_t bodies_skipped; /* expected per repetition */
	bool keep_bodies;	 /* no body filter */
};

struct run_ctx {
	struct stripe_semantics *stripe;
	int64_t mono_to_wall_ns;
	uint64_t delivered;
};

static void die(const char *what)
{
	fprintf(stderr, "pipeline_bench: %s\n", what);
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Formats one message into a buffer the workload owns. */
static const char *wl_printf(struct workload *w, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("out of memory");
	w->bufs = realloc(w->bufs, (w->n_bufs + 1) * sizeof(*w->bufs));
	if (!w->bufs)
		die("out of memory");
	w->bufs[w->n_bufs++] = s;
	*len = (size_t)n;
	return s;
}

static void wl_add(struct workload *w, unsigned conn, enum bp_dir dir, const char *data, size_t len)
{
	if (w->n_evs == w->cap_evs) {
		w->cap_evs = w->cap_evs ? 2 * w->cap_evs : 1024;
		w->evs = realloc(w->evs, w->cap_evs * sizeof(*w->evs));
		if (!w->evs)
			die("out of memory");
	}
	w->evs[w->n_evs++] = (struct feed_ev){conn, dir, (const uint8_t *)data, (uint32_t)len};
}

static void wl_conns(struct workload *w, unsigned n)
{
	w->conns = calloc(n, sizeof(*w->conns));
	if (!w->conns)
		die("out of memory");
	w->n_conns = n;
	for (unsigned i = 0; i < n; i++) {
		w->conns[i].pid = PID;
		/* TLS connections are keyed by their SSL*: heap addresses a page apart. */
		w->conns[i].id = 0x55d0c0a01000ull + 0x1000ull * i;
		w->conns[i].generation = 1;
		w->conns[i].tls = true;
		memcpy(w->conns[i].comm, "node", 5);
	}
}

static void wl_free(struct workload *w)
{
	for (size_t i = 0; i < w->n_bufs; i++)
		free(w->bufs[i]);
	free(w->bufs);
	free(w->evs);
	free(w->conns);
}

/* ---------------------------------------------------------------- A */

static const char a_request[] = "GET / HTTP/1.1\r\n"
				"Host: 127.0.0.1:8443\r\n"
				"\r\n";

static const char a_response[] = "HTTP/1.1 200 OK\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 13\r\n"
				 "Date: Fri, 28 Nov 2025 10:00:00 GMT\r\n"
				 "Connection: keep-alive\r\n"
				 "Keep-Alive: timeout=5\r\n"
				 "\r\n"
				 "hello, bench\n";

static const char g_request[] = "GET /shop HTTP/1.1\r\n"
				"Host: shop.example\r\n"
				"Accept-Encoding: gzip, deflate, br\r\n"
				"\r\n";

/* wrk writes each request in one call and node answers each in one SSL_write. */
static void build_a(struct workload *w)
{
	w->name = "A";
	wl_conns(w, A_CONNS);
	for (unsigned r = 0; r < A_ROUNDS; r++) {
		for (unsigned c = 0; c < A_CONNS; c++)
			wl_add(w, c, BP_DIR_INGRESS, a_request, sizeof(a_request) - 1);
		for (unsigned c = 0; c < A_CONNS; c++)
			wl_add(w, c, BP_DIR_EGRESS, a_response, sizeof(a_response) - 1);
	}
	w->exchanges = (uint64_t)A_CONNS * A_ROUNDS;
}

/* ---------------------------------------------------------------- G */

/* A product listing: markup that repeats, names and prices that do not, as pages are. */
static char *page_html(size_t *len)
{
	static const char *const words[] = {"linen", "oak",   "walnut", "copper", "wool",  "slate",
					    "cedar", "brass", "clay",	"amber",  "birch", "flint"};
	char *s = malloc(G_PAGE_BYTES + 512);
	size_t n = 0;
	unsigned x = 12345;

	if (!s)
		die("out of memory");
	n += (size_t)sprintf(s, "<!doctype html><html><head><title>Shop</title></head>"
				"<body><ul>\n");
	for (unsigned i = 0; n < G_PAGE_BYTES - 200; i++) {
		x = x * 1103515245u + 12345u;
		n += (size_t)sprintf(s + n,
				     "<li class=\"item\"><a href=\"/product/%u\">%s %s no. %u</a>"
				     "<span class=\"price\">$%u.%02u</span></li>\n",
				     x >> 12, words[(x >> 8) % 12], words[(x >> 16) % 12], i,
				     (x >> 20) % 200, (x >> 4) % 100);
	}
	n += (size_t)sprintf(s + n, "</ul></body></html>\n");
	*len = n;
	return s;
}

static void build_g(struct workload *w, bool keep)
{
	size_t html_len, head_len, zcap;
	char *html = page_html(&html_len), *resp;
	z_stream z = {0};

	w->name = keep ? "G_KEPT" : "G";
	w->keep_bodies = keep;
	wl_conns(w, A_CONNS);
	zcap = compressBound(html_len) + 512;
	resp = malloc(zcap);
	if (!resp || deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("out of memory");
	z.next_in = (Bytef *)html;
	z.avail_in = (uInt)html_len;
	z.next_out = (Bytef *)resp + 512;
	z.avail_out = (uInt)(zcap - 512);
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		die("deflate");
	head_len = (size_t)snprintf(resp, 512,
				    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
				    "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n"
				    "Content-Length: %lu\r\nDate: Fri, 28 Nov 2025 10:00:00 GMT\r\n"
				    "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
				    z.total_out);
	memmove(resp + head_len, resp + 512, z.total_out);
	w->bufs = realloc(w->bufs, (w->n_bufs + 1) * sizeof(*w->bufs));
	if (!w->bufs)
		die("out of memory");
	w->bufs[w->n_bufs++] = resp;
	for (unsigned r = 0; r < G_ROUNDS; r++) {
		for (unsigned c = 0; c < A_CONNS; c++)
			wl_add(w, c, BP_DIR_INGRESS, g_request, sizeof(g_request) - 1);
		for (unsigned c = 0; c < A_CONNS; c++)
			wl_add(w, c, BP_DIR_EGRESS, resp, head_len + z.total_out);
	}
	deflateEnd(&z);
	free(html);
	w->exchanges = (uint64_t)A_CONNS * G_ROUNDS;
	w->bodies_skipped = keep ? 0 : w->exchanges;
}

/* ---------------------------------------------------------------- B */

/*
 * Stripe's payment_intent fixture (fixtures3.json) with the values a succeeded card tip has,
 * pretty-printed with two spaces as api.stripe.com sends it. %1$s is the line indent (the
 * object sits deeper inside an event), %2$s the id, %3$s the status, %4$s latest_charge,
 * %5$d amount_received.
 */
static const char pi_fmt[] = "{\n"
			     "%1$s  \"id\": \"%2$s\",\n"
			     "%1$s  \"object\": \"payment_intent\",\n"
			     "%1$s  \"amount\": 500,\n"
			     "%1$s  \"amount_capturable\": 0,\n"
			     "%1$s  \"amount_details\": {\n"
			     "%1$s    \"tip\": {}\n"
			     "%1$s  },\n"
			     "%1$s  \"amount_received\": %5$d,\n"
			     "%1$s  \"application\": null,\n"
			     "%1$s  \"application_fee_amount\": null,\n"
			     "%1$s  \"automatic_payment_methods\": null,\n"
			     "%1$s  \"canceled_at\": null,\n"
			     "%1$s  \"cancellation_reason\": null,\n"
			     "%1$s  \"capture_method\": \"automatic\",\n"
			     "%1$s  \"client_secret\": \"%2$s_secret_Dm43xiq1k0ywrRRjDoi8y1gkM\",\n"
			     "%1$s  \"confirmation_method\": \"automatic\",\n"
			     "%1$s  \"created\": 1764300000,\n"
			     "%1$s  \"currency\": \"usd\",\n"
			     "%1$s  \"customer\": null,\n"
			     "%1$s  \"customer_account\": null,\n"
			     "%1$s  \"description\": \"Tip\",\n"
			     "%1$s  \"excluded_payment_method_types\": null,\n"
			     "%1$s  \"last_payment_error\": null,\n"
			     "%1$s  \"latest_charge\": %4$s,\n"
			     "%1$s  \"livemode\": false,\n"
			     "%1$s  \"metadata\": {\n"
			     "%1$s    \"creator_id\": \"cr_bench\",\n"
			     "%1$s    \"fan_id\": \"fan_bench\"\n"
			     "%1$s  },\n"
			     "%1$s  \"next_action\": null,\n"
			     "%1$s  \"on_behalf_of\": null,\n"
			     "%1$s  \"payment_method\": \"pm_1PgafyB7WZ01zgkWcard0001\",\n"
			     "%1$s  \"payment_method_configuration_details\": null,\n"
			     "%1$s  \"payment_method_options\": {\n"
			     "%1$s    \"card\": {\n"
			     "%1$s      \"installments\": null,\n"
			     "%1$s      \"mandate_options\": null,\n"
			     "%1$s      \"network\": null,\n"
			     "%1$s      \"request_three_d_secure\": \"automatic\"\n"
			     "%1$s    }\n"
			     "%1$s  },\n"
			     "%1$s  \"payment_method_types\": [\n"
			     "%1$s    \"card\"\n"
			     "%1$s  ],\n"
			     "%1$s  \"processing\": null,\n"
			     "%1$s  \"receipt_email\": null,\n"
			     "%1$s  \"review\": null,\n"
			     "%1$s  \"setup_future_usage\": null,\n"
			     "%1$s  \"shipping\": null,\n"
			     "%1$s  \"source\": null,\n"
			     "%1$s  \"statement_descriptor\": null,\n"
			     "%1$s  \"statement_descriptor_suffix\": null,\n"
			     "%1$s  \"status\": \"%3$s\",\n"
			     "%1$s  \"transfer_data\": null,\n"
			     "%1$s  \"transfer_group\": null\n"
			     "%1$s}";

/* The stripe-node SDK (23.1.0) on Node 20, through an https.Agent with keepAlive. */
static const char sdk_headers_fmt[] =
    "POST %s HTTP/1.1\r\n"
    "Accept: application/json\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\n"
    "User-Agent: Stripe/v1 NodeBindings/23.1.0\r\n"
    "X-Stripe-Client-User-Agent: {\"bindings_version\":\"23.1.0\",\"lang\":\"node\","
    "\"publisher\":\"stripe\",\"uname\":\"Linux version 6.1.0-28-amd64\",\"typescript\":false,"
    "\"platform\":\"linux\",\"lang_version\":\"v20.19.2\"}\r\n"
    "Stripe-Version: 2026-10-28.endive\r\n"
    "Authorization: Bearer sk_test_51PgafyB7WZ01zgkWbenchNotARealKeyButShapedLikeOne0000\r\n"
    "Idempotency-Key: stripe-node-retry-0b6c8a4e-%04x-4e0f-9d2a-%012x\r\n"
    "X-Stripe-Client-Telemetry: {\"last_request_metrics\":{\"request_id\":\"req_%014u\","
    "\"request_duration_ms\":41}}\r\n"
    "Content-Length: %zu\r\n"
    "Host: api.stripe.com\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "%s";

/* api.stripe.com's response headers. */
static const char stripe_resp_fmt[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx\r\n"
    "Date: Fri, 28 Nov 2025 10:00:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: %zu\r\n"
    "Connection: keep-alive\r\n"
    "Access-Control-Allow-Credentials: true\r\n"
    "Access-Control-Allow-Methods: GET, HEAD, PUT, PATCH, POST, DELETE\r\n"
    "Access-Control-Allow-Origin: *\r\n"
    "Access-Control-Expose-Headers: Request-Id, Stripe-Manage-Version, Stripe-Should-Retry, "
    "X-Stripe-External-Auth-Required, X-Stripe-Privileged-Session-Required\r\n"
    "Access-Control-Max-Age: 300\r\n"
    "Cache-Control: no-cache, no-store\r\n"
    "Content-Security-Policy: base-uri 'none'; default-src 'none'; form-action 'none'; "
    "frame-ancestors 'none'; img-src 'self'; script-src 'self' 'report-sample'; style-src "
    "'self'; worker-src 'none'; upgrade-insecure-requests; report-uri "
    "https://q.stripe.com/csp-violation?q=bench\r\n"
    "Idempotency-Key: stripe-node-retry-0b6c8a4e-%04x-4e0f-9d2a-%012x\r\n"
    "Original-Request: req_%014u\r\n"
    "Request-Id: req_%014u\r\n"
    "Stripe-Should-Retry: false\r\n"
    "Stripe-Version: 2026-10-28.endive\r\n"
    "Vary: Origin\r\n"
    "X-Stripe-Priority-Routing-Enabled: true\r\n"
    "X-Stripe-Routing-Context-Priority-Tier: api-testmode\r\n"
    "Strict-Transport-Security: max-age=63072000; includeSubDomains; preload\r\n"
    "\r\n"
    "%s";

static const char tip_body[] = "{\"amount\":500,\"currency\":\"usd\",\"payment_method\":"
			       "\"pm_card_visa\",\"fan_id\":\"fan_bench\",\"creator_id\":"
			       "\"cr_bench\"}";

static const char create_form[] =
    "amount=500&currency=usd&payment_method=pm_card_visa&payment_method_types%5B0%5D=card"
    "&description=Tip&metadata%5Bfan_id%5D=fan_bench&metadata%5Bcreator_id%5D=cr_bench";

/* Express 5's answer to a JSON route. */
static const char express_resp_fmt[] = "HTTP/1.1 %d %s\r\n"
				       "X-Powered-By: Express\r\n"
				       "Content-Type: application/json; charset=utf-8\r\n"
				       "Content-Length: %zu\r\n"
				       "ETag: W/\"%zx-bench\"\r\n"
				       "Date: Fri, 28 Nov 2025 10:00:00 GMT\r\n"
				       "Connection: keep-alive\r\n"
				       "Keep-Alive: timeout=5\r\n"
				       "\r\n"
				       "%s";

static const char *express_resp(struct workload *w, size_t *len, int status, const char *reason,
				const char *body)
{
	size_t n = strlen(body);

	return wl_printf(w, len, express_resp_fmt, status, reason, n, n, body);
}

static const char *stripe_call(struct workload *w, size_t *len, const char *target,
			       const char *form, unsigned seq)
{
	return wl_printf(w, len, sdk_headers_fmt, target, seq & 0xffff, seq, seq, strlen(form),
			 form);
}

static const char *stripe_answer(struct workload *w, size_t *len, const char *body, unsigned seq)
{
	return wl_printf(w, len, stripe_resp_fmt, strlen(body), seq & 0xffff, seq, seq, seq, body);
}

static char *pi_json(const char *indent, const char *id, const char *status, const char *charge,
		     int received)
{
	char *s;

	if (asprintf(&s, pi_fmt, indent, id, status, charge, received) < 0)
		die("out of memory");
	return s;
}

/* Stripe-Signature over "<t>.<body>", computed here with OpenSSL's one-shot HMAC(). */
static void sign(char *out, size_t size, time_t t, const char *body)
{
	char hex[65];

	if (!stripe_sign_v1(hex, SECRET, t, body))
		die("out of memory");
	snprintf(out, size, "t=%lld,v1=%s", (long long)t, hex);
}

static const char *webhook_request(struct workload *w, size_t *len, unsigned i, const char *pi)
{
	char *event, sig[128];
	const char *s;

	if (asprintf(&event,
		     "{\n  \"id\": \"evt_3PbenchB7WZ01zgkW%06u\",\n  \"object\": \"event\",\n"
		     "  \"api_version\": \"2026-10-28.endive\",\n  \"created\": %lld,\n"
		     "  \"data\": {\n    \"object\": %s\n  },\n  \"livemode\": false,\n"
		     "  \"pending_webhooks\": 1,\n  \"request\": {\n"
		     "    \"id\": \"req_%014u\",\n    \"idempotency_key\": null\n  },\n"
		     "  \"type\": \"payment_intent.succeeded\"\n}",
		     i, (long long)WALL0, pi, i) < 0)
		die("out of memory");
	sign(sig, sizeof(sig), WALL0, event);
	s = wl_printf(w, len,
		      "POST /webhooks/stripe HTTP/1.1\r\n"
		      "Content-Type: application/json; charset=utf-8\r\n"
		      "Content-Length: %zu\r\n"
		      "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
		      "Cache-Control: no-cache\r\n"
		      "Accept: */*; q=0.5, application/xml\r\n"
		      "Stripe-Signature: %s\r\n"
		      "Host: fans.example.com\r\n"
		      "Connection: keep-alive\r\n"
		      "\r\n"
		      "%s",
		      strlen(event), sig, event);
	free(event);
	return s;
}

/* One cycle's messages, in the order of its phases (see build_b). */
struct cycle {
	const char *msg[8];
	size_t len[8];
};

enum { TIP_REQ, CREATE_REQ, CREATE_RESP, CONFIRM_REQ, CONFIRM_RESP, TIP_RESP, HOOK_REQ, HOOK_RESP };

static void build_cycle(struct workload *w, unsigned i, struct cycle *c)
{
	char id[40], charge[48], target[80], tip_resp[160];
	char *created, *confirmed, *in_event;

	snprintf(id, sizeof(id), "pi_3PbenchB7WZ01zgkW%06u", i);
	snprintf(charge, sizeof(charge), "\"ch_3PbenchB7WZ01zgkW%06u\"", i);
	snprintf(target, sizeof(target), "/v1/payment_intents/%s/confirm", id);
	snprintf(tip_resp, sizeof(tip_resp),
		 "{\"payment_intent\":\"%s\",\"status\":\"succeeded\",\"latest_charge\":%s}", id,
		 charge);
	created = pi_json("", id, "requires_confirmation", "null", 0);
	confirmed = pi_json("", id, "succeeded", charge, 500);
	in_event = pi_json("    ", id, "succeeded", charge, 500);

	c->msg[TIP_REQ] = wl_printf(w, &c->len[TIP_REQ],
				    "POST /api/tips HTTP/1.1\r\n"
				    "Host: 127.0.0.1:3000\r\n"
				    "Content-Type: application/json\r\n"
				    "Content-Length: %zu\r\n"
				    "\r\n"
				    "%s",
				    strlen(tip_body), tip_body);
	c->msg[CREATE_REQ] =
	    stripe_call(w, &c->len[CREATE_REQ], "/v1/payment_intents", create_form, 2 * i);
	c->msg[CREATE_RESP] = stripe_answer(w, &c->len[CREATE_RESP], created, 2 * i);
	c->msg[CONFIRM_REQ] = stripe_call(w, &c->len[CONFIRM_REQ], target, "", 2 * i + 1);
	c->msg[CONFIRM_RESP] = stripe_answer(w, &c->len[CONFIRM_RESP], confirmed, 2 * i + 1);
	c->msg[TIP_RESP] = express_resp(w, &c->len[TIP_RESP], 201, "Created", tip_resp);
	c->msg[HOOK_REQ] = webhook_request(w, &c->len[HOOK_REQ], i, in_event);
	c->msg[HOOK_RESP] = express_resp(w, &c->len[HOOK_RESP], 200, "OK", "{\"received\":true}");
	free(created);
	free(confirmed);
	free(in_event);
}

/*
 * Connections: B_BATCH inbound tip connections (wrk), B_BATCH outbound API connections (the
 * SDK's keep-alive pool), B_HOOKCONNS inbound webhook connections. A batch of cycles runs phase
 * by phase (every tip request, then every create call, ...), so the connections interleave as
 * concurrent requests do; webhooks arrive one at a time, as Stripe delivers them.
 */
static void build_b(struct workload *w)
{
	static const struct {
		unsigned msg;
		unsigned conn_base;
		enum bp_dir dir;
	} phases[] = {
	    {TIP_REQ, 0, BP_DIR_INGRESS},
	    {CREATE_REQ, B_BATCH, BP_DIR_EGRESS},
	    {CREATE_RESP, B_BATCH, BP_DIR_INGRESS},
	    {CONFIRM_REQ, B_BATCH, BP_DIR_EGRESS},
	    {CONFIRM_RESP, B_BATCH, BP_DIR_INGRESS},
	    {TIP_RESP, 0, BP_DIR_EGRESS},
	};
	struct cycle batch[B_BATCH];
	unsigned hook_conn = 2 * B_BATCH;

	w->name = "B";
	wl_conns(w, 2 * B_BATCH + B_HOOKCONNS);
	for (unsigned first = 0; first < B_CYCLES; first += B_BATCH) {
		for (unsigned k = 0; k < B_BATCH; k++)
			build_cycle(w, first + k, &batch[k]);
		for (size_t p = 0; p < sizeof(phases) / sizeof(phases[0]); p++) {
			for (unsigned k = 0; k < B_BATCH; k++)
				wl_add(w, phases[p].conn_base + k, phases[p].dir,
				       batch[k].msg[phases[p].msg], batch[k].len[phases[p].msg]);
		}
		for (unsigned k = 0; k < B_BATCH; k++) {
			unsigned conn = hook_conn + (first + k) % B_HOOKCONNS;

			wl_add(w, conn, BP_DIR_INGRESS, batch[k].msg[HOOK_REQ],
			       batch[k].len[HOOK_REQ]);
			wl_add(w, conn, BP_DIR_EGRESS, batch[k].msg[HOOK_RESP],
			       batch[k].len[HOOK_RESP]);
		}
	}
	w->exchanges = 4ull * B_CYCLES;
	w->cycles = B_CYCLES;
}

/* ---------------------------------------------------------------- the pipeline */

/* As src/cli/pipeline.c's on_exchange followed by src/cli/run.c's. */
static void on_exchange(const struct http_exchange *ex, void *ctx)
{
	struct run_ctx *r = ctx;
	uint64_t wall = (uint64_t)((int64_t)ex->resp.last_ts_ns + r->mono_to_wall_ns);

	r->delivered++;
	stripe_semantics_on_exchange(r->stripe, ex, (time_t)(wall / 1000000000ull));
}

/* The measured part; not inlined so that callgrind can collect exactly this. */
__attribute__((noinline)) void feed_all(struct http_tracker *ht, const struct workload *w)
{
	struct capture_chunk chunk = {0};
	uint64_t ts = START_NS;

	for (size_t i = 0; i < w->n_evs; i++) {
		const struct feed_ev *e = &w->evs[i];

		chunk.conn = w->conns[e->conn];
		chunk.ts_ns = ts += CHUNK_GAP_NS;
		chunk.dir = e->dir;
		chunk.data = e->data;
		chunk.len = e->len;
		http_tracker_feed(ht, &chunk);
	}
}

static double counter(struct metrics_registry *reg, const char *name, const char *const *labels)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	double v = 0;

	if (!f || metrics_get(f, labels, &v))
		return -1;
	return v;
}

/* Exact ground truth of one repetition; false (with a message) when anything differs. */
static bool verify(const struct workload *w, struct http_tracker *ht, struct metrics_registry *reg,
		   const struct run_ctx *r)
{
	static const char *const attempt[] = {"succeeded", "USD"};
	static const char *const processed[] = {"payment_intent.succeeded", "processed"};
	static const char *const create[] = {"/v1/payment_intents", "POST", "200"};
	static const char *const confirm[] = {"/v1/payment_intents/{id}/confirm", "POST", "200"};
	struct http_tracker_stats hs;
	double n = w->cycles;
	bool ok;

	http_tracker_get_stats(ht, &hs);
	ok = r->delivered == w->exchanges && hs.exchanges == w->exchanges && !hs.parse_errors &&
	     !hs.truncated && !hs.unmatched && hs.bodies_skipped == w->bodies_skipped;
	if (w->cycles)
		ok = ok && counter(reg, "direct_fan_payment_attempts_total", attempt) == n &&
		     counter(reg, "direct_fan_webhook_events_total", processed) == n &&
		     counter(reg, "direct_fan_stripe_api_requests_total", create) == n &&
		     counter(reg, "direct_fan_stripe_api_requests_total", confirm) == n;
	else
		ok = ok && metrics_family_series(metrics_registry_find(
			       reg, "direct_fan_stripe_api_requests_total")) == 0;
	if (!ok)
		fprintf(stderr,
			"pipeline_bench %s: wrong result: delivered %llu (tracker %llu, parse "
			"errors %llu, bodies skipped %llu) of %llu; payment attempts %.0f, "
			"webhooks %.0f, API calls "
			"%.0f + %.0f\n",
			w->name, (unsigned long long)r->delivered, (unsigned long long)hs.exchanges,
			(unsigned long long)hs.parse_errors, (unsigned long long)hs.bodies_skipped,
			(unsigned long long)w->exchanges,
			counter(reg, "direct_fan_payment_attempts_total", attempt),
			counter(reg, "direct_fan_webhook_events_total", processed),
			counter(reg, "direct_fan_stripe_api_requests_total", create),
			counter(reg, "direct_fan_stripe_api_requests_total", confirm));
	return ok;
}

/* As src/cli/run.c's bodies_wanted, with the one consumer here that reads bodies. */
static bool bodies_wanted(const struct http_exchange *head, void *ctx)
{
	const struct run_ctx *r = ctx;

	return stripe_semantics_wants_bodies(r->stripe, head);
}

/* One repetition with a fresh pipeline; returns ns per exchange, or < 0 on a wrong result. */
static double run_once(const struct workload *w)
{
	struct stripe_config scfg = {.webhook_secret = SECRET};
	struct metrics_registry *reg = metrics_registry_new();
	struct run_ctx r = {.mono_to_wall_ns = (int64_t)WALL0 * 1000000000ll - (int64_t)START_NS};
	struct http_tracker *ht;
	struct business_metrics *bm = reg ? business_metrics_new(reg, NULL) : NULL;
	struct biz_event_sink sink = {business_metrics_on_event, bm};
	double t0, t1;
	bool ok;

	if (!bm)
		die("out of memory");
	r.stripe = stripe_semantics_new(&sink, &scfg);
	struct http_tracker_config hcfg = {.body_filter = w->keep_bodies ? NULL : bodies_wanted,
					   .body_filter_ctx = &r};

	ht = http_tracker_new(&hcfg, on_exchange, &r);
	if (!r.stripe || !ht)
		die("out of memory");
	t0 = now_ns();
	feed_all(ht, w);
	t1 = now_ns();
	ok = verify(w, ht, reg, &r);
	http_tracker_free(ht);
	stripe_semantics_free(r.stripe);
	business_metrics_free(bm);
	metrics_registry_free(reg);
	return ok ? (t1 - t0) / (double)w->exchanges : -1;
}

static int bench(struct workload *w, int reps)
{
	double *ns = calloc((size_t)reps, sizeof(double));
	size_t bytes = 0;

	if (!ns)
		die("out of memory");
	for (size_t i = 0; i < w->n_evs; i++)
		bytes += w->evs[i].len;
	for (int i = 0; i < reps; i++) {
		ns[i] = run_once(w);
		if (ns[i] < 0) {
			free(ns);
			return 1;
		}
	}
	qsort(ns, (size_t)reps, sizeof(double), cmp_d);
	printf("{\"workload\":\"%s\",\"exchanges\":%llu,\"connections\":%u,\"bytes_per_exchange\":"
	       "%.0f,\"repetitions\":%d,\"ns_per_exchange_median\":%.0f,"
	       "\"ns_per_exchange_min\":%.0f,\"verified\":true}\n",
	       w->name, (unsigned long long)w->exchanges, w->n_conns,
	       (double)bytes / (double)w->exchanges, reps, ns[reps / 2], ns[0]);
	fflush(stdout);
	free(ns);
	return 0;
}

/* 49 rules on routes of other shapes and methods, and the checkout rule R2 matches. */
static char *rules_yaml(void)
{
	size_t cap = 64 * 1024, len = 0;
	char *y = malloc(cap);

	if (!y)
		die("out of memory");
	len += (size_t)snprintf(y + len, cap - len, "version: 1\nevents:\n");
	for (int i = 0; i < RULES_N - 1; i++)
		len += (size_t)snprintf(
		    y + len, cap - len,
		    "  - name: ev%d\n    metric: ev%d_total\n"
		    "    when: {method: %s, route: \"/api/area%d/{id}%s\", status: 2xx}\n"
		    "    labels:\n      kind: {request_json: kind, values: [a, b, c]}\n",
		    i, i, i % 3 ? "POST" : "GET", i, i % 2 ? "/items" : "");
	snprintf(y + len, cap - len,
		 "  - name: checkout\n    metric: checkout_amount\n    type: histogram\n"
		 "    buckets: [10, 50, 100, 500]\n    value: {response_json: order.total}\n"
		 "    when: {method: POST, route: /api/checkout, status: 200}\n"
		 "    labels:\n      plan: {request_json: cart.plan, values: [free, plus, pro]}\n");
	return y;
}

static void count_event(const struct business_event *ev, void *ctx)
{
	(*(uint64_t *)ctx)++;
	(void)ev;
}

static void rules_exchange(struct http_exchange *ex, bool match)
{
	static const char req_body[] = "{\"cart\":{\"items\":[{\"sku\":\"bk-101\",\"qty\":2}],"
				       "\"plan\":\"plus\"},\"coupon\":null}";
	static const char resp_body[] = "{\"order\":{\"id\":\"o_81f2\",\"items\":2,\"total\":49.5,"
					"\"currency\":\"EUR\"},\"ok\":true}";

	memset(ex, 0, sizeof(*ex));
	ex->role = HTTP_ROLE_SERVER;
	snprintf(ex->method, sizeof(ex->method), "%s", match ? "POST" : "GET");
	ex->target = ex->path = match ? "/api/checkout" : "/static/js/app.3f9c1e.js";
	ex->query = "";
	ex->host = "shop.example";
	ex->status = 200;
	ex->duration_ns = 1200000;
	ex->req.headers[0] = (struct http_header){"Content-Type", "application/json"};
	ex->req.n_headers = 1;
	ex->resp.headers[0] = (struct http_header){"Content-Type", "application/json"};
	ex->resp.n_headers = 1;
	if (match) {
		ex->req.body = (const uint8_t *)req_body;
		ex->req.body_len = ex->req.wire_body_bytes = sizeof(req_body) - 1;
		ex->resp.body = (const uint8_t *)resp_body;
		ex->resp.body_len = ex->resp.wire_body_bytes = sizeof(resp_body) - 1;
	}
}

static int bench_rules(const char *name, bool match, int reps)
{
	char *yaml = rules_yaml();
	struct rules *r = rules_load_buffer("bench.yaml", yaml, strlen(yaml), NULL, NULL, NULL);
	double *ns = calloc((size_t)reps, sizeof(double));
	struct http_exchange ex;
	uint64_t events = 0;
	struct rules_env env = {.sink = {count_event, &events}};

	if (!r || !ns || rules_count(r) != RULES_N)
		die("rules did not load");
	rules_exchange(&ex, match);
	for (int i = 0; i < reps; i++) {
		double t0, t1;

		events = 0;
		t0 = now_ns();
		for (int n = 0; n < RULES_EVALS; n++)
			rules_eval(r, &env, &ex, WALL0 * 1000000000ull);
		t1 = now_ns();
		if (events != (match ? RULES_EVALS : 0)) {
			fprintf(stderr, "pipeline_bench: %s: %llu events, expected %d\n", name,
				(unsigned long long)events, match ? RULES_EVALS : 0);
			return 1;
		}
		ns[i] = (t1 - t0) / RULES_EVALS;
	}
	qsort(ns, (size_t)reps, sizeof(double), cmp_d);
	printf("{\"workload\":\"%s\",\"rules\":%d,\"exchanges\":%d,\"repetitions\":%d,"
	       "\"ns_per_exchange_median\":%.0f,\"ns_per_exchange_min\":%.0f,\"verified\":true}\n",
	       name, RULES_N, RULES_EVALS, reps, ns[reps / 2], ns[0]);
	fflush(stdout);
	rules_free(r);
	free(yaml);
	free(ns);
	return 0;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 7;
	const char *only = argc > 2 ? argv[2] : NULL;
	struct workload a = {0}, b = {0}, g = {0}, gk = {0};
	int rc = 0;

	if (reps < 1) {
		fprintf(stderr, "usage: pipeline_bench [REPETITIONS [A|B|G|G_KEPT|R0|R2]]\n");
		return 2;
	}
	if (!only || !strcmp(only, "A")) {
		build_a(&a);
		rc |= bench(&a, reps);
	}
	if (!only || !strcmp(only, "B")) {
		build_b(&b);
		rc |= bench(&b, reps);
	}
	if (!only || !strcmp(only, "G")) {
		build_g(&g, false);
		rc |= bench(&g, reps);
	}
	if (!only || !strcmp(only, "G_KEPT")) {
		build_g(&gk, true);
		rc |= bench(&gk, reps);
	}
	if (!only || !strcmp(only, "R0"))
		rc |= bench_rules("R0", false, reps);
	if (!only || !strcmp(only, "R2"))
		rc |= bench_rules("R2", true, reps);
	wl_free(&a);
	wl_free(&b);
	wl_free(&g);
	wl_free(&gk);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * Evaluating rules on hand-built exchanges: every value source, route params, status classes,
 * hosts, the route index against a reference matcher, lazy bodies, bounded labels, identity
 * order, JWTs, opt-out, tracking off, the user override and histogram values. Pseudonyms are
 * checked against HMAC-SHA256 computed here with libcrypto, not against the code under test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bizprobe/rules.h"

#define SALT	"test-salt-7f3a"
#define WALL_NS (1764300000ULL * 1000000000ULL)
#define MAX_GOT 64

struct got {
	enum biz_event_kind kind;
	char name[64];
	const struct biz_metric_spec *metric;
	unsigned n_labels;
	char lname[BIZ_EVENT_MAX_LABELS][64];
	char lval[BIZ_EVENT_MAX_LABELS][256];
	bool has_value;
	double value;
	bool has_user;
	char user[PSEUDONYM_LEN];
	bool has_user_type;
	char user_type[64];
	uint64_t wall_ns;
};

struct fx {
	struct pseudonymizer *p;
	struct rules_env env;
	struct got got[MAX_GOT];
	unsigned n;
	struct rules *r;
};

/* The sink copies: what an event points to is valid only during the call. */
static void sink_fn(const struct business_event *ev, void *ctx)
{
	struct fx *f = ctx;
	struct got *g;

	assert_true(f->n < MAX_GOT);
	g = &f->got[f->n++];
	memset(g, 0, sizeof(*g));
	g->kind = ev->kind;
	assert_non_null(ev->name);
	snprintf(g->name, sizeof(g->name), "%s", ev->name);
	g->metric = ev->metric;
	assert_true(ev->n_labels <= BIZ_EVENT_MAX_LABELS);
	g->n_labels = ev->n_labels;
	for (unsigned i = 0; i < ev->n_labels; i++) {
		assert_non_null(ev->labels[i].name);
		assert_non_null(ev->labels[i].value);
		snprintf(g->lname[i], sizeof(g->lname[i]), "%s", ev->labels[i].name);
		snprintf(g->lval[i], sizeof(g->lval[i]), "%s", ev->labels[i].value);
	}
	g->has_value = ev->has_value;
	g->value = ev->value;
	if (ev->user) {
		g->has_user = true;
		assert_int_equal(strlen(ev->user), PSEUDONYM_LEN - 1);
		snprintf(g->user, sizeof(g->user), "%s", ev->user);
	}
	if (ev->user_type) {
		g->has_user_type = true;
		snprintf(g->user_type, sizeof(g->user_type), "%s", ev->user_type);
	}
	g->wall_ns = ev->wall_ns;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	f->p = pseudonymizer_new(SALT, NULL, err, sizeof(err));
	assert_non_null(f->p);
	f->env.pseudonymizer = f->p;
	f->env.sink.fn = sink_fn;
	f->env.sink.ctx = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rules_free(f->r);
	pseudonymizer_free(f->p);
	free(f);
	return 0;
}

static void print_diag(const struct rules_diag *d, void *ctx)
{
	fprintf(stderr, "%s:%u:%u: %s\n", d->file, d->line, d->col, d->message);
	if (!d->warning)
		(*(int *)ctx)++;
}

static struct rules *load(struct fx *f, const char *text)
{
	int errors = 0;

	rules_free(f->r);
	f->r = rules_load_buffer("t.yaml", text, strlen(text), NULL, print_diag, &errors);
	assert_int_equal(errors, 0);
	assert_non_null(f->r);
	return f->r;
}

/* Ground truth: hex(HMAC-SHA256(SALT, id)). */
static void hmac_hex(const char *id, char out[PSEUDONYM_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	assert_non_null(HMAC(EVP_sha256(), SALT, (int)strlen(SALT), (const unsigned char *)id,
			     strlen(id), mac, &len));
	assert_int_equal(len, 32);
	for (unsigned i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
}

/* An exchange as the HTTP stage delivers it. Strings are the caller's and outlive it. */
struct xb {
	struct http_exchange ex;
	char path[1024];
	char query[1024];
};

static void xb_init(struct xb *x, const char *method, const char *target, int status)
{
	const char *q = strchr(target, '?');

	memset(x, 0, sizeof(*x));
	x->ex.role = HTTP_ROLE_SERVER;
	snprintf(x->ex.method, sizeof(x->ex.method), "%s", method);
	x->ex.target = target;
	snprintf(x->path, sizeof(x->path), "%.*s", q ? (int)(q - target) : (int)strlen(target),
		 target);
	snprintf(x->query, sizeof(x->query), "%s", q ? q + 1 : "");
	x->ex.path = x->path;
	x->ex.query = x->query;
	x->ex.host = "fans.example.com";
	x->ex.status = status;
	x->ex.duration_ns = 250 * 1000 * 1000;
	x->ex.req.body = (const uint8_t *)"";
	x->ex.resp.body = (const uint8_t *)"";
}

static void xb_header(struct http_message *m, const char *name, const char *value)
{
	assert_true(m->n_headers < HTTP_MAX_HEADERS);
	m->headers[m->n_headers].name = name;
	m->headers[m->n_headers].value = value;
	m->n_headers++;
}

static void xb_body(struct http_message *m, const char *body)
{
	m->body = (const uint8_t *)body;
	m->body_len = strlen(body);
	m->wire_body_bytes = m->body_len;
}

static void eval(struct fx *f, const struct xb *x)
{
	rules_eval(f->r, &f->env, &x->ex, WALL_NS);
}

static const char *lab(const struct got *g, const char *name)
{
	for (unsigned i = 0; i < g->n_labels; i++)
		if (!strcmp(g->lname[i], name))
			return g->lval[i];
	fail_msg("no label %s", name);
	return NULL;
}

static struct rules_stats stats(struct fx *f)
{
	struct rules_stats s;

	rules_get_stats(f->r, &s);
	return s;
}

static void b64url(const char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (uint32_t)(uint8_t)in[i + 1] << 8 |
			     (uint8_t)in[i + 2];

		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16;

		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (uint32_t)(uint8_t)in[i + 1] << 8;

		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* "Bearer <jwt>": HS256-signed with key when given, else with a junk signature. */
static void bearer(char *out, size_t size, const char *header, const char *payload, const char *key)
{
	char h[512], p[1024], sig[128], input[1600];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	b64url(header, strlen(header), h);
	b64url(payload, strlen(payload), p);
	snprintf(input, sizeof(input), "%s.%s", h, p);
	if (key) {
		assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key),
				     (const unsigned char *)input, strlen(input), mac, &len));
		b64url((const char *)mac, len, sig);
	} else {
		snprintf(sig, sizeof(sig), "c2lnbmF0dXJl");
	}
	snprintf(out, size, "Bearer %s.%s", input, sig);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* The issue's example file, on the exchanges it describes. */
static void test_issue_example(void **state)
{
	struct fx *f = *state;
	char want[PSEUDONYM_LEN];
	const struct biz_metric_spec *m;
	struct xb x;

	load(f, "version: 1\n"
		"identity:\n"
		"  - jwt_claim: sub\n"
		"  - header: X-User-Id\n"
		"  - cookie: uid\n"
		"user_type: {jwt_claim: role, values: [fan, creator]}\n"
		"events:\n"
		"  - name: registration\n"
		"    metric: user_registrations_total\n"
		"    when: {role: server, method: POST, route: /api/register, status: 2xx}\n"
		"    labels:\n"
		"      user_type: {request_json: role, values: [fan, creator]}\n"
		"      method:    {request_json: registrationMethod, values: [email, google, "
		"facebook, apple]}\n"
		"      source:    {query: utm_source, max_values: 20}\n"
		"    user: {response_json: user.id}\n"
		"  - name: content_engagement\n"
		"    metric: content_engagement_duration_seconds\n"
		"    type: histogram\n"
		"    buckets: [1, 5, 15, 30, 60, 300, 900, 3600]\n"
		"    value: {request_json: duration}\n"
		"    when: {method: POST, route: \"/api/content/{id}/engagement\", status: 2xx}\n");
	assert_int_equal(rules_count(f->r), 2);

	xb_init(&x, "POST", "/api/register?utm_source=twitter&x=1", 201);
	xb_header(&x.ex.req, "Content-Type", "application/json");
	xb_body(&x.ex.req, "{\"email\":\"a@b.example\",\"role\":\"creator\","
			   "\"registrationMethod\":\"google\"}");
	xb_body(&x.ex.resp, "{\"user\":{\"id\":\"u-1001\",\"role\":\"creator\"},\"token\":\"t\"}");
	eval(f, &x);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->got[0].kind, BIZ_RULE_EVENT);
	assert_string_equal(f->got[0].name, "registration");
	assert_int_equal(f->got[0].wall_ns, WALL_NS);
	assert_int_equal(f->got[0].n_labels, 3);
	assert_string_equal(f->got[0].lname[0], "user_type");
	assert_string_equal(f->got[0].lval[0], "creator");
	assert_string_equal(f->got[0].lname[1], "method");
	assert_string_equal(f->got[0].lval[1], "google");
	assert_string_equal(f->got[0].lname[2], "source");
	assert_string_equal(f->got[0].lval[2], "twitter");
	assert_false(f->got[0].has_value);
	hmac_hex("u-1001", want);
	assert_true(f->got[0].has_user);
	assert_string_equal(f->got[0].user, want);
	assert_false(f->got[0].has_user_type); /* no token: no role */
	m = f->got[0].metric;
	assert_non_null(m);
	assert_string_equal(m->name, "direct_fan_user_registrations_total");
	assert_int_equal(m->type, METRICS_COUNTER);
	assert_int_equal(m->n_labels, 3);
	assert_string_equal(m->label_names[0], "user_type");
	assert_string_equal(m->label_names[1], "method");
	assert_string_equal(m->label_names[2], "source");
	assert_non_null(m->help);
	/* Every combination fits: (2 + 2) * (4 + 2) * (20 + 2) label sets and the overflow. */
	assert_int_equal(m->max_series, 4 * 6 * 22 + 1);

	xb_init(&x, "POST", "/api/content/c-77/engagement", 204);
	xb_body(&x.ex.req, "{\"duration\": 42.5}");
	eval(f, &x);
	assert_int_equal(f->n, 2);
	assert_string_equal(f->got[1].name, "content_engagement");
	assert_int_equal(f->got[1].n_labels, 0);
	assert_true(f->got[1].has_value);
	assert_true(f->got[1].value == 42.5);
	m = f->got[1].metric;
	assert_string_equal(m->name, "direct_fan_content_engagement_duration_seconds");
	assert_int_equal(m->type, METRICS_HISTOGRAM);
	assert_int_equal(m->n_buckets, 8);
	assert_true(m->buckets[0] == 1 && m->buckets[7] == 3600);

	/* A 400 is not a registration, a GET is not one either. */
	xb_init(&x, "POST", "/api/register", 400);
	eval(f, &x);
	xb_init(&x, "GET", "/api/register", 200);
	eval(f, &x);
	assert_int_equal(f->n, 2);
	assert_int_equal(stats(f).exchanges, 4);
	assert_int_equal(stats(f).matched, 2);
	assert_int_equal(stats(f).events, 2);
}

/* Every source on one exchange. */
static void test_sources(void **state)
{
	struct fx *f = *state;
	struct xb x;
	struct got *g;

	load(f, "version: 1\n"
		"events:\n"
		"  - name: a\n"
		"    when: {method: PUT, route: \"/shop/{shop}/items/{item}\"}\n"
		"    labels:\n"
		"      shop: {path: shop}\n"
		"      item: {path: item}\n"
		"      q: {query: q}\n"
		"      h: {header: x-client}\n"
		"      rh: {response_header: X-Cache}\n"
		"      c: {cookie: lang}\n"
		"      f: {request_form: plan}\n"
		"      k: {const: fixed}\n"
		"  - name: b\n"
		"    when: {method: PUT, route: \"/shop/{shop}/items/{item}\"}\n"
		"    labels:\n"
		"      s: {request_json: a.b}\n"
		"      n: {request_json: \"items[1].price\"}\n"
		"      d: {request_json: items.0.sku}\n"
		"      t: {request_json: ok}\n"
		"      nul: {request_json: none}\n"
		"      obj: {request_json: items}\n"
		"      esc: {request_json: name}\n"
		"      r: {response_json: \"list[0][1]\"}\n"
		"  - name: c\n"
		"    when: {method: PUT, route: \"/shop/{shop}/items/{item}\"}\n"
		"    labels:\n"
		"      rq: request_bytes\n"
		"      rs: {response_bytes: true}\n"
		"      du: {duration: ~}\n"
		"      st: status\n"
		"      jw: {jwt_claim: plan}\n"
		"      jn: {jwt_claim: org.id}\n"
		"      miss: {query: nope}\n"
		"      neg: {request_json: neg}\n");

	/* request_form and request_json read the same body here: a JSON body is no form. */
	xb_init(&x, "PUT", "/shop/caf%C3%A9/items/42?q=two+words&z=1", 200);
	xb_header(&x.ex.req, "X-Client", "ios");
	xb_header(&x.ex.req, "Cookie", "a=1; lang=de");
	xb_header(&x.ex.resp, "x-cache", "HIT");
	xb_body(
	    &x.ex.req,
	    "{\"a\":{\"b\":\"deep\"},\"items\":[{\"sku\":\"s1\",\"price\":1},{\"price\":12.50}],"
	    "\"ok\":true,\"none\":null,\"name\":\"caf\\u00e9 \\\"x\\\"\",\"neg\":-3e2}");
	xb_body(&x.ex.resp, "{\"list\":[[\"x\",\"y\"]]}");
	x.ex.req.wire_body_bytes = 5000; /* before inflating */
	x.ex.duration_ns = 1500 * 1000 * 1000;
	x.ex.status = 200;
	{
		static char auth[2048];

		bearer(auth, sizeof(auth), HS256,
		       "{\"sub\":\"u1\",\"plan\":\"pro\",\"org\":{\"id\":9001}}", NULL);
		xb_header(&x.ex.req, "Authorization", auth);
	}
	eval(f, &x);
	assert_int_equal(f->n, 3);
	g = &f->got[0];
	assert_string_equal(g->name, "a");
	assert_string_equal(lab(g, "shop"), "café"); /* %XX decoded */
	assert_string_equal(lab(g, "item"), "42");
	assert_string_equal(lab(g, "q"), "two words");
	assert_string_equal(lab(g, "h"), "ios");
	assert_string_equal(lab(g, "rh"), "HIT");
	assert_string_equal(lab(g, "c"), "de");
	assert_string_equal(lab(g, "f"), "");
	assert_string_equal(lab(g, "k"), "fixed");
	g = &f->got[1];
	assert_string_equal(g->name, "b");
	assert_string_equal(lab(g, "s"), "deep");
	assert_string_equal(lab(g, "n"), "12.50"); /* as written */
	assert_string_equal(lab(g, "d"), "s1");
	assert_string_equal(lab(g, "t"), "true");
	assert_string_equal(lab(g, "nul"), "");
	assert_string_equal(lab(g, "obj"), "");
	assert_string_equal(lab(g, "esc"), "café \"x\"");
	assert_string_equal(lab(g, "r"), "y");
	g = &f->got[2];
	assert_string_equal(lab(g, "rq"), "5000");
	assert_string_equal(lab(g, "rs"), "20"); /* {"list":[["x","y"]]} */
	assert_string_equal(lab(g, "du"), "1.5");
	assert_string_equal(lab(g, "st"), "200");
	assert_string_equal(lab(g, "jw"), "pro");
	assert_string_equal(lab(g, "jn"), "9001");
	assert_string_equal(lab(g, "miss"), "");
	assert_string_equal(lab(g, "neg"), "-3e2");
	assert_int_equal(stats(f).bodies_parsed, 2);
	assert_int_equal(stats(f).body_errors, 0);

	/* A form body, and a request without a Cookie or query. */
	load(f, "version: 1\nevents:\n"
		"  - name: f\n"
		"    when: {method: POST, route: /signup}\n"
		"    labels:\n"
		"      plan: {request_form: plan}\n"
		"      meta: {request_form: \"meta[src]\"}\n"
		"      c: {cookie: lang}\n"
		"      q: {query: q}\n");
	xb_init(&x, "POST", "/signup", 201);
	xb_body(&x.ex.req, "email=a%40b.example&plan=pro+plus&meta%5Bsrc%5D=ad");
	eval(f, &x);
	assert_int_equal(f->n, 4);
	assert_string_equal(lab(&f->got[3], "plan"), "pro plus");
	assert_string_equal(lab(&f->got[3], "meta"), "ad");
	assert_string_equal(lab(&f->got[3], "c"), "");
	assert_string_equal(lab(&f->got[3], "q"), "");
}

static void test_routes(void **state)
{
	struct fx *f = *state;
	struct xb x;

	load(f, "version: 1\nevents:\n"
		"  - {name: exact, when: {method: GET, route: /api/items}}\n"
		"  - {name: param, when: {method: GET, route: \"/api/items/{id}\"}}\n"
		"  - {name: two, when: {method: [GET, HEAD], route: \"/api/{kind}/{id}\"}}\n"
		"  - {name: anymethod, when: {route: \"/api/items/{id}\"}}\n"
		"  - {name: anyroute, when: {method: DELETE}}\n"
		"  - {name: root, when: {method: GET, route: /}}\n"
		"  - {name: client, when: {role: client, method: GET, route: /api/items}}\n"
		"  - name: id\n"
		"    when: {method: PATCH, route: \"/api/items/{id}\"}\n"
		"    labels: {id: {path: id, max_values: 5}}\n");
	xb_init(&x, "GET", "/api/items", 200);
	eval(f, &x);
	assert_int_equal(f->n, 1);
	assert_string_equal(f->got[0].name, "exact");
	/* One trailing slash is the same route; the query is not part of the path. */
	xb_init(&x, "GET", "/api/items/?page=2", 200);
	eval(f, &x);
	assert_int_equal(f->n, 2);
	assert_string_equal(f->got[1].name, "exact");
	/* Several rules match: events in declaration order. */
	xb_init(&x, "GET", "/api/items/7", 200);
	eval(f, &x);
	assert_int_equal(f->n, 5);
	assert_string_equal(f->got[2].name, "param");
	assert_string_equal(f->got[3].name, "two");
	assert_string_equal(f->got[4].name, "anymethod");
	xb_init(&x, "HEAD", "/api/users/7", 200);
	eval(f, &x);
	assert_int_equal(f->n, 6);
	assert_string_equal(f->got[5].name, "two");
	xb_init(&x, "DELETE", "/anything/at/all", 200);
	eval(f, &x);
	assert_int_equal(f->n, 7);
	assert_string_equal(f->got[6].name, "anyroute");
	xb_init(&x, "DELETE", "/api/items/9", 204);
	eval(f, &x);
	assert_int_equal(f->n, 9);
	assert_string_equal(f->got[7].name, "anymethod");
	assert_string_equal(f->got[8].name, "anyroute");
	xb_init(&x, "GET", "/", 200);
	eval(f, &x);
	assert_int_equal(f->n, 10);
	assert_string_equal(f->got[9].name, "root");
	xb_init(&x, "PATCH", "/api/items/a%2Fb", 200);
	eval(f, &x);
	assert_int_equal(f->n, 12);
	assert_string_equal(f->got[10].name, "anymethod");
	assert_string_equal(f->got[11].name, "id");
	assert_string_equal(lab(&f->got[11], "id"), "a/b");
	/* No match: other segments, counts, an empty {param}, lower-case method, a client
	 * exchange for server rules, a non-path target. */
	f->n = 0;
	xb_init(&x, "GET", "/api/itemz", 200);
	eval(f, &x);
	xb_init(&x, "GET", "/api/items/7/x/y", 200);
	eval(f, &x);
	xb_init(&x, "PUT", "/api/items//", 200);
	eval(f, &x);
	xb_init(&x, "get", "/api/items", 200);
	eval(f, &x);
	xb_init(&x, "OPTIONS", "*", 200);
	eval(f, &x);
	xb_init(&x, "GET", "/API/items", 200);
	eval(f, &x);
	assert_int_equal(f->n, 0);
	xb_init(&x, "GET", "/api/items", 200);
	x.ex.role = HTTP_ROLE_CLIENT;
	eval(f, &x);
	assert_int_equal(f->n, 1);
	assert_string_equal(f->got[0].name, "client");
}

static void test_status_and_host(void **state)
{
	struct fx *f = *state;
	static const struct {
		int status;
		const char *host;
		const char *want; /* names, comma separated */
	} cases[] = {
	    {201, "fans.example.com", "exact,class,list,any,wild"},
	    {204, "fans.example.com", "class,list,any"},
	    {200, "FANS.example.com:8443", "class,list,any,host"},
	    {302, "fans.example.com", "list,any"},
	    {404, "", "any"},
	    {201, "api.example.com", "exact,class,list,any,wild"},
	    {201, "a.b.example.com", "exact,class,list,any,wild"},
	    {201, "example.com", "exact,class,list,any"},
	    {201, "badexample.com", "exact,class,list,any"},
	    {500, "x.example.com:80", "any,wild"},
	};

	load(f,
	     "version: 1\nevents:\n"
	     "  - {name: exact, when: {route: /s, status: 201}}\n"
	     "  - {name: class, when: {route: /s, status: 2xx}}\n"
	     "  - {name: list, when: {route: /s, status: [201, 204, \"200\", 3XX]}}\n"
	     "  - {name: any, when: {route: /s}}\n"
	     "  - {name: host, when: {route: /s, host: fans.example.com, status: 200}}\n"
	     "  - {name: wild, when: {route: /s, host: \"*.example.com\", status: [201, 5xx]}}\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char names[256] = "";
		struct xb x;

		f->n = 0;
		xb_init(&x, "GET", "/s", cases[i].status);
		x.ex.host = cases[i].host;
		eval(f, &x);
		for (unsigned k = 0; k < f->n; k++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 k ? "," : "", f->got[k].name);
		if (strcmp(names, cases[i].want))
			fail_msg("status %d host %s: got %s, want %s", cases[i].status,
				 cases[i].host, names, cases[i].want);
	}
}

/* The index against a reference matcher written here: 60 rules of many shapes, every path of
 * a grid, the set of events must be exactly the rules whose template matches. */
static bool ref_match(const char *tmpl, const char *path)
{
	char t[256], p[256], *ts, *ps, *tt, *pt;

	snprintf(t, sizeof(t), "%s", tmpl);
	snprintf(p, sizeof(p), "%s", path);
	tt = strtok_r(t, "/", &ts);
	pt = strtok_r(p, "/", &ps);
	while (tt && pt) {
		if (tt[0] != '{' && strcmp(tt, pt))
			return false;
		tt = strtok_r(NULL, "/", &ts);
		pt = strtok_r(NULL, "/", &ps);
	}
	return !tt && !pt;
}

static void test_index_against_reference(void **state)
{
	static const char *const seg_lit[] = {"api", "v1", "users", "items", "x"};
	struct fx *f = *state;
	char *text = malloc(64 * 1024), tmpl[60][128], path[256];
	size_t off;
	unsigned checked = 0;

	assert_non_null(text);
	off = (size_t)sprintf(text, "version: 1\nevents:\n");
	for (int i = 0; i < 60; i++) {
		int nseg = 1 + i % 4;
		size_t o = 0;

		for (int s = 0; s < nseg; s++) {
			/* Rule i has a {param} at segment s when bit s of i / 4 is set. */
			if ((i / 4) >> s & 1)
				o += (size_t)sprintf(tmpl[i] + o, "/{p%d}", s);
			else
				o += (size_t)sprintf(tmpl[i] + o, "/%s", seg_lit[(i + s) % 5]);
		}
		off += (size_t)sprintf(text + off,
				       "  - {name: r%d, when: {method: %s, route: \"%s\"}}\n", i,
				       i % 3 ? "GET" : "POST", tmpl[i]);
	}
	load(f, text);
	free(text);
	/* Every path of 1 to 3 segments over the literals and one value no rule names. */
	for (int n = 1; n <= 3; n++) {
		int combos = 1;

		for (int k = 0; k < n; k++)
			combos *= 6;
		for (int c = 0; c < combos; c++) {
			for (int m = 0; m < 2; m++) {
				const char *method = m ? "POST" : "GET";
				char want[1024] = "", got[1024] = "";
				size_t o = 0;
				struct xb x;
				int v = c;

				for (int k = 0; k < n; k++, v /= 6)
					o += (size_t)sprintf(path + o, "/%s",
							     v % 6 == 5 ? "zz9" : seg_lit[v % 6]);
				for (int i = 0; i < 60; i++)
					if (!strcmp(method, i % 3 ? "GET" : "POST") &&
					    ref_match(tmpl[i], path))
						sprintf(want + strlen(want), "r%d,", i);
				f->n = 0;
				xb_init(&x, method, path, 200);
				eval(f, &x);
				for (unsigned k = 0; k < f->n; k++)
					sprintf(got + strlen(got), "%s,", f->got[k].name);
				if (strcmp(want, got))
					fail_msg("%s %s: got %s want %s", method, path, got, want);
				checked++;
			}
		}
	}
	assert_int_equal(checked, 2 * (6 + 36 + 216));
}

/* A body is parsed only when a rule that matched reads a field of it, and at most once. */
static void test_lazy_bodies(void **state)
{
	struct fx *f = *state;
	struct xb x;

	load(f, "version: 1\nevents:\n"
		"  - {name: nobody, when: {method: GET, route: /a}}\n"
		"  - name: two_fields\n"
		"    when: {method: POST, route: /b}\n"
		"    labels: {x: {request_json: x}, y: {request_json: y}}\n"
		"  - name: again\n"
		"    when: {method: POST, route: /b}\n"
		"    labels: {x: {request_json: x}}\n"
		"  - name: both\n"
		"    when: {method: POST, route: /c}\n"
		"    labels: {x: {request_json: x}, r: {response_json: r}}\n");
	xb_init(&x, "GET", "/a", 200);
	xb_body(&x.ex.req, "{\"x\":1}");
	xb_body(&x.ex.resp, "{\"r\":1}");
	eval(f, &x);
	xb_init(&x, "POST", "/nomatch", 200);
	xb_body(&x.ex.req, "{\"x\":1}");
	eval(f, &x);
	assert_int_equal(f->n, 1);
	assert_int_equal(stats(f).bodies_parsed, 0);

	xb_init(&x, "POST", "/b", 200);
	xb_body(&x.ex.req, "{\"x\":\"1\",\"y\":\"2\"}");
	eval(f, &x);
	assert_int_equal(f->n, 3);
	assert_string_equal(lab(&f->got[1], "y"), "2");
	assert_string_equal(lab(&f->got[2], "x"), "1");
	assert_int_equal(stats(f).bodies_parsed, 1); /* two rules, three fields, one parse */

	xb_init(&x, "POST", "/c", 200);
	xb_body(&x.ex.req, "{\"x\":\"3\"}");
	xb_body(&x.ex.resp, "{\"r\":\"4\"}");
	eval(f, &x);
	assert_int_equal(stats(f).bodies_parsed, 3);
	assert_int_equal(stats(f).body_errors, 0);

	/* Not JSON: one error for the body however many fields, the fields are absent. */
	xb_init(&x, "POST", "/b", 200);
	xb_body(&x.ex.req, "x=1&y=2");
	eval(f, &x);
	assert_int_equal(f->n, 6);
	assert_string_equal(lab(&f->got[4], "x"), "");
	assert_string_equal(lab(&f->got[5], "x"), "");
	assert_int_equal(stats(f).bodies_parsed, 4);
	assert_int_equal(stats(f).body_errors, 1);
	/* Truncated: not even tokenized. Empty: an error, nothing to parse. */
	xb_init(&x, "POST", "/b", 200);
	xb_body(&x.ex.req, "{\"x\":\"1\",\"y\":");
	x.ex.req.body_truncated = true;
	eval(f, &x);
	xb_init(&x, "POST", "/b", 200);
	eval(f, &x);
	assert_int_equal(stats(f).bodies_parsed, 4);
	assert_int_equal(stats(f).body_errors, 3);
	/* Trailing bytes after the object, or a second value, are not one JSON document. */
	xb_init(&x, "POST", "/b", 200);
	xb_body(&x.ex.req, "{\"x\":\"1\"} {}");
	eval(f, &x);
	assert_int_equal(stats(f).body_errors, 4);
	assert_string_equal(lab(&f->got[f->n - 1], "x"), "");
	/* An array at the top is a document too. */
	load(f, "version: 1\nevents:\n"
		"  - {name: arr, when: {route: /d}, labels: {x: {request_json: \"[1].k\"}}}\n");
	f->n = 0;
	xb_init(&x, "POST", "/d", 200);
	xb_body(&x.ex.req, " [ {\"k\":\"a\"}, {\"k\":\"b\"} ]\n");
	eval(f, &x);
	assert_string_equal(lab(&f->got[0], "x"), "b");
}

static void test_bounded_labels(void **state)
{
	struct fx *f = *state;
	static const char *const seq[] = {"a", "b", "c", "a", "", "d", "b"};
	static const char *const want_first2[] = {"a", "b", "other", "a", "", "other", "b"};
	static const char *const want_list[] = {"a", "b", "other", "a", "", "other", "b"};
	char target[512], long_val[200];
	struct xb x;

	load(f, "version: 1\nevents:\n"
		"  - name: e\n"
		"    metric: e_total\n"
		"    when: {route: /e}\n"
		"    labels:\n"
		"      first2: {query: v, max_values: 2}\n"
		"      list: {query: v, values: [a, b]}\n"
		"      dflt: {query: n}\n");
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		snprintf(target, sizeof(target), "/e?v=%s&n=%zu", seq[i], i);
		xb_init(&x, "GET", target, 200);
		eval(f, &x);
		assert_int_equal(f->n, i + 1);
		assert_string_equal(lab(&f->got[i], "first2"), want_first2[i]);
		assert_string_equal(lab(&f->got[i], "list"), want_list[i]);
	}
	/* The default bound is 20: values 0..6 are taken already, 7..19 are kept, 20 is not. */
	for (int i = 7; i <= 21; i++) {
		f->n = 0;
		snprintf(target, sizeof(target), "/e?v=a&n=%d", i);
		xb_init(&x, "GET", target, 200);
		eval(f, &x);
		assert_string_equal(lab(&f->got[0], "dflt"), i < 20 ? target + 9 : "other");
	}
	f->n = 0;
	xb_init(&x, "GET", "/e?n=3", 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[0], "dflt"), "3");
	/* 128 bytes are a value, 129 are "other"; so are control bytes and broken UTF-8. */
	load(f, "version: 1\nevents:\n  - {name: l, when: {route: /l}, labels: {v: {query: v}}}\n");
	memset(long_val, 'x', 129);
	long_val[128] = '\0';
	snprintf(target, sizeof(target), "/l?v=%s", long_val);
	f->n = 0;
	xb_init(&x, "GET", target, 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[0], "v"), long_val);
	long_val[128] = 'x';
	long_val[129] = '\0';
	snprintf(target, sizeof(target), "/l?v=%s", long_val);
	xb_init(&x, "GET", target, 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[1], "v"), "other");
	xb_init(&x, "GET", "/l?v=a%0Ab", 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[2], "v"), "other");
	xb_init(&x, "GET", "/l?v=%C3%28", 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[3], "v"), "other");
	xb_init(&x, "GET", "/l?v=%E2%82%AC", 200);
	eval(f, &x);
	assert_string_equal(lab(&f->got[4], "v"), "€");
}

static const char *const identity_rules = "version: 1\n"
					  "identity:\n"
					  "  - jwt_claim: sub\n"
					  "  - header: X-User-Id\n"
					  "  - cookie: uid\n"
					  "user_type: {header: X-Role, values: [fan, creator]}\n"
					  "events:\n"
					  "  - {name: view, when: {route: /v}}\n"
					  "  - {name: view2, when: {route: /v}}\n";

static void test_identity_order(void **state)
{
	struct fx *f = *state;
	char jwt[1024], bad_jwt[] = "Bearer not.a.jwt", want[PSEUDONYM_LEN];
	struct xb x;

	load(f, identity_rules);
	bearer(jwt, sizeof(jwt), HS256, "{\"sub\":\"jwt-user\",\"role\":\"fan\"}", NULL);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Authorization", jwt);
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "Cookie", "uid=cookie-user");
	xb_header(&x.ex.req, "X-Role", "creator");
	eval(f, &x);
	assert_int_equal(f->n, 2);
	hmac_hex("jwt-user", want);
	assert_string_equal(f->got[0].user, want);
	assert_string_equal(f->got[1].user, want);
	assert_string_equal(f->got[0].user_type, "creator");

	/* A bad token is an identity error, and the next source is used. */
	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Authorization", bad_jwt);
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "Cookie", "uid=cookie-user");
	xb_header(&x.ex.req, "X-Role", "admin");
	eval(f, &x);
	hmac_hex("header-user", want);
	assert_string_equal(f->got[2].user, want);
	assert_string_equal(f->got[2].user_type, "other");
	assert_int_equal(stats(f).identity_errors, 1);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Cookie", "theme=dark");
	xb_header(&x.ex.req, "cookie", "uid=\"cookie-user\"");
	xb_header(&x.ex.req, "X-User-Id", ""); /* empty: no value */
	eval(f, &x);
	hmac_hex("cookie-user", want);
	assert_string_equal(f->got[4].user, want);
	assert_false(f->got[4].has_user_type);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Authorization", "Basic dXNlcjpwYXNz");
	eval(f, &x);
	assert_false(f->got[6].has_user);
	assert_int_equal(f->n, 8);
	assert_int_equal(stats(f).identity_errors, 1);
	assert_int_equal(stats(f).opted_out, 0);
}

static void test_opt_out(void **state)
{
	struct fx *f = *state;
	char want[PSEUDONYM_LEN];
	struct xb x;

	load(f, identity_rules);
	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "Sec-GPC", "1");
	xb_header(&x.ex.req, "X-Role", "fan");
	eval(f, &x);
	assert_int_equal(f->n, 2);
	assert_false(f->got[0].has_user);
	assert_false(f->got[1].has_user);
	assert_string_equal(f->got[0].user_type, "fan");
	assert_int_equal(stats(f).opted_out, 2);
	assert_int_equal(stats(f).events, 2);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "DNT", "1");
	eval(f, &x);
	assert_false(f->got[2].has_user);
	assert_int_equal(stats(f).opted_out, 4);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "DNT", "0");
	eval(f, &x);
	hmac_hex("header-user", want);
	assert_string_equal(f->got[4].user, want);
	assert_int_equal(stats(f).opted_out, 4);
}

/* Tracking off: events count, no identity source is read at all (a bad token is not even
 * decoded, so it is no identity error). */
static void test_tracking_off(void **state)
{
	struct fx *f = *state;
	struct xb x;

	load(f, identity_rules);
	f->env.pseudonymizer = NULL;
	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Authorization", "Bearer not.a.jwt");
	xb_header(&x.ex.req, "X-User-Id", "header-user");
	xb_header(&x.ex.req, "Sec-GPC", "1");
	xb_header(&x.ex.req, "X-Role", "creator");
	eval(f, &x);
	assert_int_equal(f->n, 2);
	assert_false(f->got[0].has_user);
	assert_false(f->got[1].has_user);
	assert_string_equal(f->got[0].user_type, "creator");
	assert_int_equal(stats(f).identity_errors, 0);
	assert_int_equal(stats(f).opted_out, 0);
	assert_int_equal(stats(f).events, 2);
}

static void test_user_override(void **state)
{
	struct fx *f = *state;
	char want[PSEUDONYM_LEN];
	struct xb x;

	load(f, "version: 1\n"
		"identity: [{header: X-User-Id}]\n"
		"events:\n"
		"  - name: follow\n"
		"    when: {method: POST, route: \"/api/creators/{creator}/follow\"}\n"
		"    user: {path: creator}\n"
		"  - name: signup\n"
		"    when: {method: POST, route: /signup}\n"
		"    user: {response_json: user.id}\n"
		"  - name: plain\n"
		"    when: {method: POST, route: /signup}\n");
	xb_init(&x, "POST", "/api/creators/cr-9/follow", 200);
	xb_header(&x.ex.req, "X-User-Id", "fan-1");
	eval(f, &x);
	hmac_hex("cr-9", want);
	assert_string_equal(f->got[0].user, want);

	xb_init(&x, "POST", "/signup", 201);
	xb_header(&x.ex.req, "X-User-Id", "fan-1");
	xb_body(&x.ex.resp, "{\"user\":{\"id\":12345}}");
	eval(f, &x);
	assert_int_equal(f->n, 3);
	hmac_hex("12345", want);
	assert_string_equal(f->got[1].user, want);
	hmac_hex("fan-1", want);
	assert_string_equal(f->got[2].user, want);

	/* The override's source absent: nobody, never the requester in its place. */
	xb_init(&x, "POST", "/signup", 400);
	xb_header(&x.ex.req, "X-User-Id", "fan-1");
	xb_body(&x.ex.resp, "{\"error\":\"taken\"}");
	eval(f, &x);
	assert_false(f->got[3].has_user);
	assert_string_equal(f->got[4].user, want);
	/* Opted out: the override is not read either. */
	xb_init(&x, "POST", "/signup", 201);
	xb_header(&x.ex.req, "Sec-GPC", "1");
	xb_body(&x.ex.resp, "{\"user\":{\"id\":12345}}");
	eval(f, &x);
	assert_false(f->got[5].has_user);
	assert_false(f->got[6].has_user);
	assert_int_equal(stats(f).bodies_parsed, 2); /* the 201's and the 400's answers */
}

static void test_jwt_verified(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/bizprobe-jwt-XXXXXX", key[256], rules_path[256], text[1024];
	char good[1024], forged[1024], none[1024], expired[1024], want[PSEUDONYM_LEN];
	const char *secret = "jwt-secret-for-tests";
	int errors = 0;
	struct xb x;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof(key), "%s/jwt.key", dir);
	snprintf(rules_path, sizeof(rules_path), "%s/rules.yaml", dir);
	fp = fopen(key, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", secret);
	fclose(fp);
	assert_int_equal(chmod(key, 0600), 0);
	snprintf(text, sizeof(text),
		 "version: 1\n"
		 "identity: [{jwt_claim: sub}, {header: X-User-Id}]\n"
		 "jwt_secret_file: %s\n"
		 "user_type: {jwt_claim: role, values: [fan, creator]}\n"
		 "events:\n  - {name: v, when: {route: /v}}\n",
		 key);
	fp = fopen(rules_path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	f->r = rules_load_file(rules_path, NULL, print_diag, &errors);
	assert_non_null(f->r);

	bearer(good, sizeof(good), HS256,
	       "{\"sub\":\"signed\",\"role\":\"creator\",\"exp\":1764400000}", secret);
	bearer(forged, sizeof(forged), HS256, "{\"sub\":\"forged\",\"role\":\"creator\"}",
	       "another-key");
	bearer(none, sizeof(none), "{\"alg\":\"none\"}", "{\"sub\":\"none\",\"role\":\"fan\"}",
	       NULL);
	/* exp one second before the exchange's time. */
	bearer(expired, sizeof(expired), HS256, "{\"sub\":\"old\",\"exp\":1764299999}", secret);

	xb_init(&x, "GET", "/v", 200);
	xb_header(&x.ex.req, "Authorization", good);
	eval(f, &x);
	hmac_hex("signed", want);
	assert_string_equal(f->got[0].user, want);
	assert_string_equal(f->got[0].user_type, "creator");

	const char *bad[] = {forged, none, expired};
	for (int i = 0; i < 3; i++) {
		xb_init(&x, "GET", "/v", 200);
		xb_header(&x.ex.req, "Authorization", bad[i]);
		xb_header(&x.ex.req, "X-User-Id", "fallback");
		eval(f, &x);
		hmac_hex("fallback", want);
		assert_string_equal(f->got[1 + i].user, want);
		/* The unverified role is not believed either. */
		assert_false(f->got[1 + i].has_user_type);
	}
	assert_int_equal(stats(f).identity_errors, 3);
	unlink(key);
	unlink(rules_path);
	rmdir(dir);
}

static void test_histogram_values(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *body;
		bool has;
		double v;
	} cases[] = {
	    {"{\"d\":12.5}", true, 12.5},   {"{\"d\":\"7\"}", true, 7},
	    {"{\"d\":-0.25}", true, -0.25}, {"{\"d\":1e3}", true, 1000},
	    {"{\"d\":\"abc\"}", false, 0},  {"{\"d\":true}", false, 0},
	    {"{\"d\":null}", false, 0},	    {"{\"e\":1}", false, 0},
	    {"{\"d\":\"nan\"}", false, 0},  {"{\"d\":\" 5\"}", false, 0},
	    {"{\"d\":\"0x10\"}", false, 0}, {"{\"d\":1e999}", false, 0},
	};
	unsigned errors = 0;
	struct xb x;

	load(f, "version: 1\nevents:\n"
		"  - {name: h, metric: h_seconds, type: histogram, value: {request_json: d}, "
		"when: {route: /h}}\n"
		"  - {name: t, metric: t_seconds, type: histogram, value: duration, when: {route: "
		"/t}}\n"
		"  - {name: q, metric: q_amount, type: histogram, buckets: [1, 10], value: {query: "
		"amount}, when: {route: /q}}\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xb_init(&x, "POST", "/h", 200);
		xb_body(&x.ex.req, cases[i].body);
		eval(f, &x);
		assert_int_equal(f->n, i + 1);
		/* The event counts either way; a lost observation is counted. */
		if (cases[i].has != f->got[i].has_value)
			fail_msg("%s: has_value %d", cases[i].body, f->got[i].has_value);
		if (cases[i].has)
			assert_true(f->got[i].value == cases[i].v);
		else
			errors++;
		assert_int_equal(stats(f).body_errors, errors);
	}
	assert_int_equal(f->got[0].metric->n_buckets, 11); /* Prometheus's defaults */
	assert_true(f->got[0].metric->buckets[0] == 0.005);
	f->n = 0;
	xb_init(&x, "GET", "/t", 200);
	x.ex.duration_ns = 2500 * 1000 * 1000ULL;
	eval(f, &x);
	assert_true(f->got[0].has_value);
	assert_true(f->got[0].value == 2.5);
	xb_init(&x, "GET", "/q?amount=49.90", 200);
	eval(f, &x);
	assert_true(f->got[1].value == 49.9);
	assert_int_equal(f->got[1].metric->n_buckets, 2);
	/* A body that is not JSON: one body error, not two. */
	xb_init(&x, "POST", "/h", 200);
	xb_body(&x.ex.req, "<html>");
	eval(f, &x);
	assert_false(f->got[2].has_value);
	assert_int_equal(stats(f).body_errors, errors + 1);
}

static void test_shared_metric(void **state)
{
	struct fx *f = *state;
	struct xb x;

	load(f,
	     "version: 1\nevents:\n"
	     "  - {name: s1, metric: steps_total, when: {route: /a}, labels: {step: {const: a}}}\n"
	     "  - {name: s2, metric: steps_total, when: {route: /a}, labels: {step: {const: b}}}\n"
	     "  - {name: s3, when: {route: /a}}\n");
	xb_init(&x, "GET", "/a", 200);
	eval(f, &x);
	assert_int_equal(f->n, 3);
	assert_ptr_equal(f->got[0].metric, f->got[1].metric);
	assert_null(f->got[2].metric);
	assert_string_equal(lab(&f->got[1], "step"), "b");
}

/* Hostile bytes: nothing crashes, and what is not usable is absent or "other". */
static void test_hostile(void **state)
{
	struct fx *f = *state;
	static char body[70000], path[4096], hdr[9000];
	unsigned seed = 12345;
	struct xb x;

	load(f, "version: 1\n"
		"identity: [{jwt_claim: sub}, {cookie: uid}, {header: X-User-Id}]\n"
		"events:\n"
		"  - name: h\n"
		"    metric: h_seconds\n"
		"    type: histogram\n"
		"    value: {request_json: a.b.c}\n"
		"    labels:\n"
		"      a: {request_json: \"x[3].y\"}\n"
		"      b: {response_json: a}\n"
		"      c: {cookie: c}\n"
		"      d: {query: q}\n"
		"      e: {request_form: f}\n"
		"      g: {path: p}\n"
		"    when: {route: \"/{p}\"}\n"
		"  - {name: any, when: {method: GET}, labels: {q: {query: q}}}\n");
	/* Deep nesting, an unterminated string, random bytes. */
	for (int i = 0; i < 30000; i++)
		body[i] = '[';
	body[30000] = '\0';
	xb_init(&x, "POST", "/x", 200);
	xb_body(&x.ex.req, body);
	xb_body(&x.ex.resp, "{\"a\":\"\\ud800\\u0000");
	eval(f, &x);
	assert_string_equal(lab(&f->got[0], "a"), "");
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % 300);

		for (size_t i = 0; i < n; i++)
			body[i] = (char)(rand_r(&seed) % 4 ? "{}[]\":,\\ax0.-eu"[rand_r(&seed) % 16]
							   : rand_r(&seed));
		body[n] = '\0';
		for (size_t i = 0; i < 64; i++)
			path[i] = (char)(rand_r(&seed) % 3 ? "/a%?=&q"[rand_r(&seed) % 7]
							   : 1 + rand_r(&seed) % 255);
		path[0] = '/';
		path[64] = '\0';
		for (size_t i = 0; i < 100; i++)
			hdr[i] = (char)(1 + rand_r(&seed) % 255);
		hdr[100] = '\0';
		xb_init(&x, rand_r(&seed) % 2 ? "GET" : "POST", path, 200);
		xb_body(&x.ex.req, body);
		xb_body(&x.ex.resp, body);
		xb_header(&x.ex.req, "Cookie", hdr);
		xb_header(&x.ex.req, "Authorization", hdr);
		xb_header(&x.ex.req, "X-User-Id", hdr);
		f->n = 0;
		eval(f, &x);
		for (unsigned k = 0; k < f->n; k++)
			for (unsigned l = 0; l < f->got[k].n_labels; l++)
				assert_true(strlen(f->got[k].lval[l]) <= 128);
	}
	/* Long values: a path of 40 segments matches no route, an 8 KiB cookie is no user. */
	path[0] = '\0';
	for (int i = 0; i < 40; i++)
		strcat(path, "/s");
	f->n = 0;
	xb_init(&x, "POST", path, 200);
	eval(f, &x);
	assert_int_equal(f->n, 0);
	memcpy(hdr, "uid=", 4);
	memset(hdr + 4, 'u', 8000);
	hdr[8004] = '\0';
	xb_init(&x, "POST", "/z", 200);
	xb_header(&x.ex.req, "Cookie", hdr);
	eval(f, &x);
	assert_int_equal(f->n, 1);
	assert_false(f->got[0].has_user);
}

/* What the HTTP stage asks before the bodies arrive: a rule whose role, method, route and host
 * match the request's head and that reads a JSON or form field, whatever its status condition.
 * Rules that read no body still count exchanges whose bodies were not kept, and never read one. */
static void test_wants_bodies(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *method, *target, *host;
		enum http_role role;
		bool want;
	} cases[] = {
	    {"POST", "/api/checkout", "shop.example", HTTP_ROLE_SERVER, true},
	    {"POST", "/api/checkout?step=2", "shop.example", HTTP_ROLE_SERVER, true},
	    {"GET", "/api/checkout", "shop.example", HTTP_ROLE_SERVER, false},
	    {"POST", "/api/checkout", "shop.example", HTTP_ROLE_CLIENT, false},
	    {"POST", "/api/checkout/x", "shop.example", HTTP_ROLE_SERVER, false},
	    {"GET", "/static/app.js", "shop.example", HTTP_ROLE_SERVER, false},
	    {"PUT", "/v2/orders/81", "api.partner.example", HTTP_ROLE_CLIENT, true},
	    {"PUT", "/v2/orders/81", "api.partner.example:443", HTTP_ROLE_CLIENT, true},
	    {"PUT", "/v2/orders/81", "other.example", HTTP_ROLE_CLIENT, false},
	    {"GET", "/u/7", "", HTTP_ROLE_SERVER, true},
	    {"GET", "/page/7", "shop.example", HTTP_ROLE_SERVER, false}, /* reads the path only */
	};

	load(f, "version: 1\nevents:\n"
		"  - {name: checkout, when: {method: POST, route: /api/checkout, status: 201},\n"
		"     labels: {plan: {request_json: plan, values: [a, b]}}}\n"
		"  - {name: order, when: {role: client, method: PUT, route: \"/v2/orders/{id}\",\n"
		"       host: api.partner.example}, value: {response_json: total}}\n"
		"  - {name: profile, when: {route: \"/u/{id}\", status: 5xx},\n"
		"     user: {request_form: uid}}\n"
		"  - {name: page, when: {route: \"/page/{id}\"}, labels: {id: {path: id}}}\n");
	assert_false(rules_wants_bodies(NULL, NULL));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xb x;

		xb_init(&x, cases[i].method, cases[i].target, 0);
		x.ex.host = cases[i].host;
		x.ex.role = cases[i].role;
		if (rules_wants_bodies(f->r, &x.ex) != cases[i].want)
			fail_msg("%s %s on %s: wants %d", cases[i].method, cases[i].target,
				 cases[i].host, !cases[i].want);
		if (cases[i].want)
			continue;
		/* As the HTTP stage delivers it then: bodies counted, not kept. */
		x.ex.req.body_skipped = x.ex.resp.body_skipped = true;
		x.ex.req.wire_body_bytes = x.ex.resp.wire_body_bytes = 5000;
		for (int status = 100; status < 600; status += 50) {
			x.ex.status = status + 1;
			eval(f, &x);
		}
		assert_int_equal(stats(f).body_errors, 0);
		assert_int_equal(stats(f).bodies_parsed, 0);
	}
	assert_true(f->n > 0); /* the page rule counted its exchanges */

	/* A user type read from a body applies to every event: every matched route keeps bodies. */
	rules_free(f->r);
	f->r = NULL;
	load(f, "version: 1\nuser_type: {request_json: kind, values: [fan, creator]}\nevents:\n"
		"  - {name: page, when: {route: \"/page/{id}\"}}\n");
	{
		struct xb x;

		xb_init(&x, "GET", "/page/7", 0);
		assert_true(rules_wants_bodies(f->r, &x.ex));
		xb_init(&x, "GET", "/other", 0);
		assert_false(rules_wants_bodies(f->r, &x.ex));
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_issue_example),
	    T(test_sources),
	    T(test_routes),
	    T(test_status_and_host),
	    T(test_index_against_reference),
	    T(test_lazy_bodies),
	    T(test_bounded_labels),
	    T(test_identity_order),
	    T(test_opt_out),
	    T(test_tracking_off),
	    T(test_user_override),
	    T(test_jwt_verified),
	    T(test_histogram_values),
	    T(test_shared_metric),
	    T(test_hostile),
	    T(test_wants_bodies),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}

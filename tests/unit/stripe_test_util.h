/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for the Stripe semantics tests: recorded exchanges built as struct http_exchange
 * values (bodies from tests/unit/fixtures/stripe/), webhook signatures (stripe_sign.h),
 * metric read-back.
 */
#ifndef BIZPROBE_STRIPE_TEST_UTIL_H
#define BIZPROBE_STRIPE_TEST_UTIL_H

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bizprobe/business_event.h"
#include "bizprobe/http_exchange.h"
#include "bizprobe/metrics.h"
#include "bizprobe/stripe.h"
#include "stripe_sign.h"

#define T0	    ((time_t)1764300000) /* wall clock of the recorded traffic */
#define TEST_SECRET "whsec_test_5a3f9c1e7b2d4a6f8e0c1b3d5f7a9c2e"

struct tx {
	struct http_exchange ex;
	char *req_body;
	char *resp_body;
	char sig[256];
};

/* Reads fixtures/stripe/<name> from the first of: $BIZPROBE_SRCDIR/tests/unit, the directory
 * of this header as compiled (relative to the build's working directory), and ../../tests/unit
 * from the test binary (build/tests/test_x), so that tests run from any directory. */
static inline FILE *fixture_open(const char *name, char *path, size_t size)
{
	const char *env = getenv("BIZPROBE_SRCDIR");
	char dir[512], exe[512];
	ssize_t n;
	FILE *f;

	if (env) {
		snprintf(path, size, "%s/tests/unit/fixtures/stripe/%s", env, name);
		if ((f = fopen(path, "rb")))
			return f;
	}
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	snprintf(path, size, "%s/fixtures/stripe/%s", dirname(dir), name);
	if ((f = fopen(path, "rb")))
		return f;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	snprintf(path, size, "%s/../../tests/unit/fixtures/stripe/%s", dirname(exe), name);
	return fopen(path, "rb");
}

static inline char *fixture_load(const char *name)
{
	char path[1024];
	FILE *f = fixture_open(name, path, sizeof(path));
	char *buf;
	long n;

	if (!f) {
		fprintf(stderr, "cannot open fixture %s (last tried %s): %s\n", name, path,
			strerror(errno));
		abort();
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static inline void tx_header(struct http_message *m, const char *name, const char *value)
{
	m->headers[m->n_headers].name = name;
	m->headers[m->n_headers].value = value;
	m->n_headers++;
}

static inline void tx_set_bodies(struct tx *t, const char *req_body, char *resp_body)
{
	t->req_body = req_body ? strdup(req_body) : NULL;
	t->resp_body = resp_body;
	t->ex.req.body = (const uint8_t *)t->req_body;
	t->ex.req.body_len = t->req_body ? strlen(t->req_body) : 0;
	t->ex.req.wire_body_bytes = t->ex.req.body_len;
	t->ex.resp.body = (const uint8_t *)t->resp_body;
	t->ex.resp.body_len = t->resp_body ? strlen(t->resp_body) : 0;
	t->ex.resp.wire_body_bytes = t->ex.resp.body_len;
}

/* An outbound call to api.stripe.com as the stripe-node SDK sends it. resp_body is owned. */
static inline void tx_api(struct tx *t, const char *method, const char *target, int status,
			  const char *req_body, char *resp_body)
{
	memset(t, 0, sizeof(*t));
	t->ex.role = HTTP_ROLE_CLIENT;
	snprintf(t->ex.method, sizeof(t->ex.method), "%s", method);
	t->ex.target = target;
	t->ex.path = target; /* tests pass targets without query unless they set path */
	t->ex.query = "";
	t->ex.host = "api.stripe.com";
	t->ex.status = status;
	t->ex.conn.tls = true;
	t->ex.duration_ns = 180 * 1000 * 1000; /* 0.18 s */
	tx_header(&t->ex.req, "Host", "api.stripe.com");
	tx_header(&t->ex.req, "Authorization", "Bearer sk_test_51NotARealKeyButShapedLikeOne");
	tx_header(&t->ex.req, "Stripe-Version", "2024-06-20");
	tx_header(&t->ex.req, "User-Agent", "Stripe/v1 NodeBindings/16.2.0");
	if (req_body)
		tx_header(&t->ex.req, "Content-Type", "application/x-www-form-urlencoded");
	tx_header(&t->ex.resp, "Content-Type", "application/json");
	tx_header(&t->ex.resp, "Request-Id", "req_Q1w2e3r4t5y6");
	tx_header(&t->ex.resp, "Stripe-Version", "2024-06-20");
	tx_set_bodies(t, req_body, resp_body);
}

static inline void tx_sign(struct tx *t, const char *secret, time_t ts, const char *body)
{
	char hex[65];

	if (!stripe_sign_v1(hex, secret, ts, body))
		abort();
	/* Stripe also sends a v0 (test-mode legacy) signature; it must be ignored. */
	snprintf(t->sig, sizeof(t->sig), "t=%lld,v1=%s,v0=%s", (long long)ts, hex,
		 "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39");
}

/* A webhook delivery to the app, signed with secret at ts (unsigned if secret is NULL, with a
 * junk signature header). body is owned. */
static inline void tx_webhook(struct tx *t, const char *path, char *body, const char *secret,
			      time_t ts, int app_status)
{
	memset(t, 0, sizeof(*t));
	t->ex.role = HTTP_ROLE_SERVER;
	snprintf(t->ex.method, sizeof(t->ex.method), "POST");
	t->ex.target = path;
	t->ex.path = path;
	t->ex.query = "";
	t->ex.host = "fans.example.com";
	t->ex.status = app_status;
	t->ex.duration_ns = 12 * 1000 * 1000;
	if (secret)
		tx_sign(t, secret, ts, body);
	else
		snprintf(t->sig, sizeof(t->sig), "t=%lld,v1=%064d", (long long)ts, 0);
	tx_header(&t->ex.req, "Host", "fans.example.com");
	tx_header(&t->ex.req, "User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)");
	tx_header(&t->ex.req, "Content-Type", "application/json; charset=utf-8");
	tx_header(&t->ex.req, "Cache-Control", "no-cache");
	tx_header(&t->ex.req, "stripe-signature", t->sig); /* lower case as seen via proxies */
	tx_header(&t->ex.resp, "Content-Type", "application/json");
	t->req_body = body;
	t->ex.req.body = (const uint8_t *)body;
	t->ex.req.body_len = strlen(body);
	t->ex.req.wire_body_bytes = t->ex.req.body_len;
	t->resp_body = strdup("{\"received\":true}");
	t->ex.resp.body = (const uint8_t *)t->resp_body;
	t->ex.resp.body_len = strlen(t->resp_body);
}

static inline void tx_free(struct tx *t)
{
	free(t->req_body);
	free(t->resp_body);
	t->req_body = t->resp_body = NULL;
}

/* Value of a counter/gauge series (histograms: the sum); 0 when the series does not exist. */
static inline double mval(struct metrics_registry *reg, const char *name, const char *const *labels)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	double v = 0;

	if (!f) {
		fprintf(stderr, "no family %s\n", name);
		abort();
	}
	if (metrics_get(f, labels, &v))
		return 0;
	return v;
}

static inline uint64_t mcount(struct metrics_registry *reg, const char *name,
			      const char *const *labels)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	uint64_t c = 0;

	if (!f || metrics_get_histogram(f, labels, &c, NULL))
		return 0;
	return c;
}

struct msum_ctx {
	const char *name;
	double sum;
	unsigned series;
};

static inline int msum_series(const struct metrics_family_info *fam,
			      const struct metrics_series_info *s, void *ctx)
{
	struct msum_ctx *c = ctx;

	if (!strcmp(fam->name, c->name)) {
		c->sum += fam->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
		c->series++;
	}
	return 0;
}

/* Sum over every series of a family (histograms: total count). */
static inline double msum(struct metrics_registry *reg, const char *name, unsigned *series)
{
	struct metrics_visitor v = {NULL, msum_series};
	struct msum_ctx c = {name, 0, 0};

	metrics_registry_visit(reg, &v, &c);
	if (series)
		*series = c.series;
	return c.sum;
}

#define L(...) ((const char *const[]){__VA_ARGS__})

/* Stripe semantics wired to the metrics stage, as `bizprobe run` wires them. */
struct stripe_pipeline {
	struct metrics_registry *reg;
	struct business_metrics *bm;
	struct stripe_semantics *s;
};

static inline int stripe_pipeline_init(struct stripe_pipeline *p,
				       const struct business_metrics_config *bcfg,
				       const struct stripe_config *cfg)
{
	struct biz_event_sink sink;

	p->reg = metrics_registry_new();
	p->bm = p->reg ? business_metrics_new(p->reg, bcfg) : NULL;
	sink = (struct biz_event_sink){business_metrics_on_event, p->bm};
	p->s = p->bm ? stripe_semantics_new(&sink, cfg) : NULL;
	return p->s ? 0 : -1;
}

static inline void stripe_pipeline_fini(struct stripe_pipeline *p)
{
	stripe_semantics_free(p->s);
	business_metrics_free(p->bm);
	metrics_registry_free(p->reg);
}

#endif

// SPDX-License-Identifier: MIT
/*
 * Stripe semantics on arbitrary exchanges with api.stripe.com and arbitrary webhook deliveries
 * (no signing secret, as when none is configured: any body is accepted). Every event must be
 * well formed: NUL-terminated labels within the bound, finite values, an MRR never negative.
 */
#include <math.h>

#include "bizprobe/stripe.h"
#include "fuzz_util.h"

static const char *const paths[] = {
    "/v1/payment_intents", "/v1/payment_intents/pi_1/confirm", "/v1/subscriptions",
    "/v1/subscriptions/sub_1", "/v1/refunds", "/v1/charges/ch_1", "/v1/checkout/sessions",
    "/webhooks/stripe"};

static void on_event(const struct business_event *ev, void *ctx)
{

	(void)ctx;
	if (ev->n_labels > BIZ_EVENT_MAX_LABELS)
		abort();
	for (unsigned i = 0; i < ev->n_labels; i++)
		fuzz_sink += strlen(ev->labels[i].name) + strlen(ev->labels[i].value);
	if (ev->name)
		fuzz_sink += strlen(ev->name);
	if (ev->has_value && !isfinite(ev->value))
		abort();
	if (ev->kind == BIZ_MRR && ev->value < 0)
		abort();
}

static void set_body(struct http_message *m, struct fuzz_in *in, uint8_t **keep)
{
	size_t n;
	const uint8_t *p = fuzz_bytes(in, 65536, &n);

	/* NUL-terminated, as the HTTP stage delivers bodies. */
	*keep = malloc(n + 1);
	if (!*keep)
		abort();
	memcpy(*keep, p, n);
	(*keep)[n] = '\0';
	m->body = *keep;
	m->body_len = n;
	m->wire_body_bytes = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct biz_event_sink sink = {on_event, NULL};
	struct stripe_config cfg = {.max_tracked = 16, .max_subscriptions = 8};
	struct stripe_semantics *s = stripe_semantics_new(&sink, &cfg);
	time_t now = 1764300000;

	if (!s)
		abort();
	while (in.n) {
		struct http_exchange ex;
		uint8_t op = fuzz_u8(&in), *req = NULL, *resp = NULL;
		char *path = NULL;

		memset(&ex, 0, sizeof(ex));
		ex.role = op & 1 ? HTTP_ROLE_SERVER : HTTP_ROLE_CLIENT;
		strcpy(ex.method, op & 2 ? "POST" : (op & 4 ? "DELETE" : "GET"));
		ex.host = ex.role == HTTP_ROLE_CLIENT ? "api.stripe.com" : "shop.example";
		if (op & 8) {
			path = fuzz_str(&in, 128);
			ex.path = path;
		} else {
			ex.path = paths[(op >> 4) % (sizeof(paths) / sizeof(paths[0]))];
		}
		ex.target = ex.path;
		ex.query = "";
		ex.status = 200 + (fuzz_u8(&in) % 4) * 100 + (op & 0x80 ? 2 : 0);
		ex.req.headers[0].name = "Stripe-Signature";
		ex.req.headers[0].value = "t=1,v1=00";
		ex.req.headers[1].name = "Content-Type";
		ex.req.headers[1].value = "application/x-www-form-urlencoded";
		ex.req.n_headers = ex.role == HTTP_ROLE_SERVER ? 1 : 2;
		set_body(&ex.req, &in, &req);
		set_body(&ex.resp, &in, &resp);
		ex.req.body_truncated = ex.truncated = (op & 0x40) && (op & 0x20);
		ex.duration_ns = 1000000;
		stripe_semantics_on_exchange(s, &ex, now);
		now += op & 0x40 ? 4000 : 1;
		stripe_semantics_tick(s, now);
		free(req);
		free(resp);
		free(path);
	}
	stripe_semantics_flush(s);
	stripe_semantics_free(s);
	return 0;
}

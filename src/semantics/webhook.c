// SPDX-License-Identifier: MIT
/*
 * Inbound Stripe webhooks: a POST carrying Stripe-Signature, on any path (apps mount their
 * handler where they like). An event is processed only if the app accepted it (2xx), its
 * signature verifies when a secret is configured, and its evt_ id was not processed before
 * (redeliveries count once, as "duplicate"). Outcomes of <ns>_webhook_events_total: processed,
 * duplicate, rejected (the app refused it, or a bad or stale signature, or not an event: each
 * refusal counts, since a webhook endpoint that fails is what the payments team must see; Stripe
 * redelivers it and a later accepted delivery is processed), truncated (body cut by the
 * capture: neither signature nor content
 * can be checked, so it is counted but not interpreted; a later complete redelivery is still
 * processed).
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_internal.h"

#define WEBHOOK_SIG_LEN 32 /* SHA-256 */
#define WEBHOOK_MAX_V1	8  /* v1 entries considered (Stripe sends one per active secret) */

/* HMAC-SHA256 keyed with the webhook secret, set up once (include/bizprobe/keyed_mac.h): fetching
 * the MAC, making a context and hashing the key into it cost more than the SHA-256 of a 2 KiB
 * event. Stripe signs with the whole whsec_ string as the key. */
struct keyed_mac *webhook_mac_new(const char *secret)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};

	if (!secret)
		return NULL;
	return keyed_mac_new("HMAC", params, secret, strlen(secret), WEBHOOK_SIG_LEN);
}

/* HMAC of "<t>.<body>", as Stripe signs it. */
static int hmac_sha256(struct keyed_mac *m, const char *t, size_t tlen, const uint8_t *body,
		       size_t len, uint8_t out[WEBHOOK_SIG_LEN])
{
	const struct keyed_mac_part parts[] = {{t, tlen}, {".", 1}, {body, len}};

	return keyed_mac_run(m, parts, 3, out);
}

int webhook_verify_with(struct keyed_mac *mac, const char *header, const uint8_t *body,
			size_t body_len, time_t now, unsigned tolerance_s)
{
	uint8_t sigs[WEBHOOK_MAX_V1][WEBHOOK_SIG_LEN], expected[WEBHOOK_SIG_LEN];
	const char *p = header, *t = NULL;
	size_t tlen = 0;
	unsigned n_sigs = 0;
	bool match = false;
	long long ts;
	int err;

	if (!header || !mac)
		return -EINVAL;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);

		while (*p == ' ' && len) {
			p++;
			len--;
		}
		if (eq) {
			size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
			const char *v = eq + 1;

			if (klen == 1 && p[0] == 't') {
				t = v;
				tlen = vlen;
			} else if (klen == 2 && !memcmp(p, "v1", 2) &&
				   vlen == 2 * WEBHOOK_SIG_LEN && n_sigs < WEBHOOK_MAX_V1) {
				bool ok = true;

				for (size_t i = 0; i < WEBHOOK_SIG_LEN && ok; i++) {
					int hi = form_hexval(v[2 * i]),
					    lo = form_hexval(v[2 * i + 1]);

					ok = hi >= 0 && lo >= 0;
					sigs[n_sigs][i] = (uint8_t)(hi * 16 + lo);
				}
				if (ok)
					n_sigs++;
			}
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (!t || !tlen || tlen > 19 || strspn(t, "0123456789") < tlen || !n_sigs)
		return -EINVAL;
	ts = strtoll(t, NULL, 10);
	err = hmac_sha256(mac, t, tlen, body, body_len, expected);
	if (err)
		return err;
	/* Constant time, and no early exit: which entry matched must not leak through timing. */
	for (unsigned i = 0; i < n_sigs; i++)
		match |= CRYPTO_memcmp(sigs[i], expected, WEBHOOK_SIG_LEN) == 0;
	if (!match)
		return -EPERM;
	if (ts < (long long)now - (long long)tolerance_s ||
	    ts > (long long)now + (long long)tolerance_s)
		return -ETIMEDOUT;
	return 0;
}

int webhook_verify_signature(const char *header, const uint8_t *body, size_t body_len,
			     const char *secret, time_t now, unsigned tolerance_s)
{
	struct keyed_mac *mac;
	int err;

	if (!header || !secret || !*secret)
		return -EINVAL;
	mac = webhook_mac_new(secret);
	if (!mac)
		return -EIO;
	err = webhook_verify_with(mac, header, body, body_len, now, tolerance_s);
	keyed_mac_free(mac);
	return err;
}

static void count_event(struct stripe_semantics *s, const char *type, const char *outcome)
{
	const char *labels[] = {stripe_event_type_label(type), outcome};

	stripe_emit(s, BIZ_WEBHOOK_DELIVERY, NULL, labels, 2, false, 0, NULL);
}

void webhook_handle(struct stripe_semantics *s, const struct http_exchange *ex)
{
	const char *sig = stripe_header(&ex->req, "Stripe-Signature");
	bool parsed;
	struct json_val evt;
	const char *type, *id;
	bool created;

	s->stats.webhook_exchanges++;
	if (ex->req.body_truncated) {
		/* Neither the signature nor the event can be checked on part of a body. */
		const char *labels[] = {"webhook"};

		s->stats.truncated++;
		stripe_emit(s, BIZ_STRIPE_TRUNCATED, NULL, labels, 1, false, 0, NULL);
		count_event(s, NULL, "truncated");
		return;
	}
	parsed = !json_doc_load(s->doc, ex->req.body, ex->req.body_len);
	evt = json_doc_root(s->doc);
	type = stripe_json_str(evt, "type");
	id = stripe_json_str(evt, "id");
	if (ex->status < 200 || ex->status > 299) {
		count_event(s, type, "rejected");
		return;
	}
	if (s->webhook_secret &&
	    webhook_verify_with(s->webhook_mac, sig, ex->req.body, ex->req.body_len, s->now,
				s->tolerance_s)) {
		count_event(s, type, "rejected");
		return;
	}
	if (!parsed || !type || !id) {
		s->stats.parse_errors++;
		count_event(s, type, "rejected");
		return;
	}
	if (!stripe_lru_put(s->events, id, &created))
		return;
	if (!created) {
		count_event(s, type, "duplicate");
		return;
	}
	count_event(s, type, "processed");
	stripe_object_dispatch(s, stripe_json_obj(stripe_json_obj(evt, "data"), "object"), type,
			       STRIPE_SRC_WEBHOOK);
}

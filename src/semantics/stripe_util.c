// SPDX-License-Identifier: MIT
/*
 * Small Stripe helpers: JSON access, label sanitising (every label value is bounded and free of
 * identifiers), currency units, endpoint templates, form bodies, header lookup.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stripe_internal.h"

const char *stripe_json_str(struct json_val o, const char *key)
{
	return json_string(json_get(o, key));
}

bool stripe_json_int(struct json_val o, const char *key, int64_t *out)
{
	return json_int64(json_get(o, key), out);
}

struct json_val stripe_json_obj(struct json_val o, const char *key)
{
	struct json_val v = json_get(o, key);

	return json_is_object(v) ? v : (struct json_val){NULL, -1};
}

struct json_val stripe_json_array(struct json_val o, const char *key)
{
	struct json_val v = json_get(o, key);

	return json_is_array(v) ? v : (struct json_val){NULL, -1};
}

const char *stripe_json_ref(struct json_val o, const char *key)
{
	const char *id = stripe_json_str(o, key);

	if (id)
		return id;
	return stripe_json_str(stripe_json_obj(o, key), "id");
}

void stripe_currency_label(const char *cur, char *out, size_t size)
{
	if (cur && strlen(cur) == 3 && isalpha((unsigned char)cur[0]) &&
	    isalpha((unsigned char)cur[1]) && isalpha((unsigned char)cur[2])) {
		/* Once or twice per payment: by hand, not a snprintf (cut to size as it would). */
		for (size_t i = 0; i < 3 && i + 1 < size; i++)
			out[i] = (char)toupper((unsigned char)cur[i]);
		if (size)
			out[size < 4 ? size - 1 : 3] = '\0';
		return;
	}
	snprintf(out, size, "%s", METRICS_OVERFLOW_VALUE);
}

void stripe_code_label(const char *code, const char *dflt, char *out, size_t size)
{
	size_t n;

	if (!code || !*code) {
		snprintf(out, size, "%s", dflt);
		return;
	}
	n = strlen(code);
	if (n > 48 || strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
		snprintf(out, size, "%s", METRICS_OVERFLOW_VALUE);
		return;
	}
	snprintf(out, size, "%s", code);
}

/* Event types a subscription platform sees; anything else is "other" so that the type label
 * stays bounded whatever a (possibly forged) body says. */
static const char *const known_event_types[] = {
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.created",
    "customer.deleted",
    "customer.updated",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "invoice.created",
    "invoice.finalized",
    "invoice.finalization_failed",
    "invoice.marked_uncollectible",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.upcoming",
    "invoice.updated",
    "invoice.voided",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.detached",
    "payout.paid",
    "payout.failed",
    "price.created",
    "price.updated",
    "product.created",
    "product.updated",
    "refund.created",
    "refund.failed",
    "refund.updated",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
};

const char *stripe_event_type_label(const char *type)
{
	if (type) {
		for (size_t i = 0; i < sizeof(known_event_types) / sizeof(known_event_types[0]);
		     i++) {
			if (!strcmp(type, known_event_types[i]))
				return known_event_types[i];
		}
	}
	return METRICS_OVERFLOW_VALUE;
}

/* https://docs.stripe.com/currencies#zero-decimal and #three-decimal */
static const char *const zero_decimal[] = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
					   "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"};
static const char *const three_decimal[] = {"BHD", "JOD", "KWD", "OMR", "TND"};

static bool in_list(const char *cur, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcasecmp(cur, list[i]))
			return true;
	}
	return false;
}

double stripe_currency_divisor(const char *currency)
{
	if (currency && in_list(currency, zero_decimal, sizeof(zero_decimal) / sizeof(char *)))
		return 1.0;
	if (currency && in_list(currency, three_decimal, sizeof(three_decimal) / sizeof(char *)))
		return 1000.0;
	return 100.0;
}

double stripe_amount_to_major(int64_t minor, const char *currency)
{
	return (double)minor / stripe_currency_divisor(currency);
}

/* Resources that span two segments (/v1/checkout/sessions/{id}). */
static const char *const namespaces[] = {
    "apps",
    "billing",
    "billing_portal",
    "checkout",
    "climate",
    "entitlements",
    "financial_connections",
    "forwarding",
    "identity",
    "issuing",
    "radar",
    "reporting",
    "sigma",
    "tax",
    "terminal",
    "test_helpers",
    "treasury",
};
/* Collection-level words that sit where an id would (/v1/customers/search). */
static const char *const collection_words[] = {"search", "upcoming", "preview"};

static bool word_in(const char *seg, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(list[i]) == len && !memcmp(seg, list[i], len))
			return true;
	}
	return false;
}

static bool segment_is_word(const char *seg, size_t len)
{
	return len > 0 && len <= 40 && strspn(seg, "abcdefghijklmnopqrstuvwxyz_") >= len;
}

/* Appends "/" and len bytes of seg, NUL-terminated; false when that does not fit. Every API
 * exchange templates its path, so this is a copy rather than a snprintf per segment. */
static bool append_segment(char *out, size_t size, size_t *used, const char *seg, size_t len)
{
	if (len + 2 > size - *used)
		return false;
	out[(*used)++] = '/';
	memcpy(out + *used, seg, len);
	*used += len;
	out[*used] = '\0';
	return true;
}

/*
 * Stripe paths alternate names and ids after the version and the resource:
 * /v1/customers/{id}/sources/{id}, /v1/payment_intents/{id}/confirm. Templating by position
 * rather than by the look of a segment also hides custom ids that look like words (Stripe
 * lets apps choose customer and price ids).
 */
void stripe_endpoint_template(const char *path, char *out, size_t size)
{
	const char *p = path;
	size_t used = 0;
	int seg_no = 0;
	bool id_slot = false;

	if (!path || path[0] != '/' || size < 8)
		goto other;
	out[0] = '\0';
	while (*p == '/') {
		const char *seg = p + 1;
		size_t len = strcspn(seg, "/?#");
		const char *txt = NULL;

		p = seg + len;
		if (!len)
			continue;
		if (++seg_no > 7)
			goto other;
		if (seg_no == 1) {
			if (len != 2 || seg[0] != 'v' || !isdigit((unsigned char)seg[1]))
				goto other;
		} else if (id_slot) {
			if (!word_in(seg, len, collection_words,
				     sizeof(collection_words) / sizeof(collection_words[0])))
				txt = "{id}";
			id_slot = false;
		} else {
			if (!segment_is_word(seg, len))
				goto other;
			/* After /v1/<namespace>, the resource name follows, not an id. */
			id_slot =
			    !(seg_no == 2 && word_in(seg, len, namespaces,
						     sizeof(namespaces) / sizeof(namespaces[0])));
		}
		if (!append_segment(out, size, &used, txt ? txt : seg, txt ? strlen(txt) : len))
			goto other;
	}
	if (!used)
		snprintf(out, size, "/");
	return;
other:
	snprintf(out, size, "%s", METRICS_OVERFLOW_VALUE);
}

const char *stripe_header(const struct http_message *m, const char *name)
{
	for (unsigned i = 0; i < m->n_headers && i < HTTP_MAX_HEADERS; i++) {
		const char *h = m->headers[i].name;

		/* First letter, case folded, as a filter before strcasecmp (see message.c). */
		if (h && ((h[0] ^ name[0]) & ~0x20) == 0 && !strcasecmp(h, name))
			return m->headers[i].value ? m->headers[i].value : "";
	}
	return NULL;
}

/* Label names per event kind, in the order business_event.h documents. */
static const char *const *label_names_of(enum biz_event_kind kind)
{
	static const char *const attempt[] = {"status", "currency", "code", "decline_code"};
	static const char *const currency[] = {"currency"};
	static const char *const webhook[] = {"type", "outcome"};
	static const char *const api[] = {"endpoint", "method", "code"};
	static const char *const truncated[] = {"source"};
	static const char *const pending[] = {"status", "currency"};

	switch (kind) {
	case BIZ_PAYMENT_ATTEMPT:
		return attempt;
	case BIZ_WEBHOOK_DELIVERY:
		return webhook;
	case BIZ_STRIPE_API_REQUEST:
		return api;
	case BIZ_STRIPE_TRUNCATED:
		return truncated;
	case BIZ_PAYMENTS_PENDING:
		/* Two labels: with the default's one name the second was read past its array (the
		 * ASan build of test_stripe, issue 16). */
		return pending;
	default:
		return currency;
	}
}

void stripe_emit(struct stripe_semantics *s, enum biz_event_kind kind, const char *name,
		 const char *const *values, unsigned n_values, bool has_value, double value,
		 const char *user)
{
	stripe_emit_about(s, kind, name, values, n_values, has_value, value, user, NULL);
}

void stripe_emit_about(struct stripe_semantics *s, enum biz_event_kind kind, const char *name,
		       const char *const *values, unsigned n_values, bool has_value, double value,
		       const char *user, const char *subject)
{
	const char *const *names = label_names_of(kind);
	struct business_event ev = {
	    .kind = kind,
	    .name = name,
	    .has_value = has_value,
	    .value = value,
	    .user = user,
	    .subject = subject,
	    .wall_ns = (uint64_t)s->now * 1000000000ull,
	};

	for (unsigned i = 0; i < n_values && i < BIZ_EVENT_MAX_LABELS; i++)
		ev.labels[ev.n_labels++] = (struct biz_label){names[i], values[i]};
	biz_emit(&s->sink, &ev);
}

bool stripe_object_user(const struct stripe_semantics *s, struct json_val obj,
			char out[PSEUDONYM_LEN])
{
	struct json_val meta;

	if (!s->pseudonymizer || s->untracked_users)
		return false;
	meta = stripe_json_obj(obj, "metadata");
	for (unsigned i = 0; i < s->n_user_keys; i++) {
		const char *id = stripe_json_str(meta, s->user_keys[i]);

		if (id && *id) {
			pseudonymize(s->pseudonymizer, id, strlen(id), out);
			return true;
		}
	}
	return false;
}

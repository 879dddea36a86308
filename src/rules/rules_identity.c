// SPDX-License-Identifier: MIT
/*
 * Who an event is about: the requester, from the rules file's `identity` sources in order (the
 * first that yields a value wins), or the event's own `user:` source; pseudonymized the moment
 * it is read (bizprobe/identity.h), the raw copy wiped before anything else happens.
 *
 * Nothing identifying is read when tracking is off (no pseudonymizer), and a request that opts
 * out (Sec-GPC: 1, DNT: 1) is counted without a user. The user type is a bounded word, not an
 * identity: it is read in every case.
 */
#include <string.h>
#include <strings.h>

#include "rules_internal.h"

/* Seconds since the epoch of the exchange, for a JWT's exp: replayed traffic (rules test) is
 * judged at the time it was recorded. */
static int64_t rules_ctx_now(const struct rules_ctx *c)
{
	return (int64_t)(c->wall_ns / 1000000000ULL);
}

const struct json_doc *rules_ctx_jwt(struct rules_ctx *c)
{
	const char *auth, *tok;
	size_t len;

	if (c->jwt_state)
		return c->jwt;
	c->jwt_state = -1;
	auth = http_message_header(&c->ex->req, "Authorization");
	if (!auth)
		return NULL;
	while (*auth == ' ' || *auth == '\t')
		auth++;
	/* The scheme is case-insensitive (RFC 9110 section 11.1). */
	if (strncasecmp(auth, "Bearer", 6) || (auth[6] != ' ' && auth[6] != '\t'))
		return NULL;
	tok = auth + 6;
	while (*tok == ' ' || *tok == '\t')
		tok++;
	len = strcspn(tok, " \t\r\n");
	if (!len)
		return NULL;
	if (jwt_decode(tok, len, c->r->jwt_secret, c->r->jwt_secret_len, rules_ctx_now(c),
		       &c->jwt) != JWT_OK) {
		/* Present but unusable: malformed, forged, alg:none under a secret, expired. */
		c->r->stats.identity_errors++;
		c->jwt = NULL;
		return NULL;
	}
	c->jwt_state = 1;
	return c->jwt;
}

/* Reads s and pseudonymizes it into out; false when it gave nothing usable. */
static bool rules_pseudonymize_source(struct rules_ctx *c, const struct rules_source *s,
				      char out[PSEUDONYM_LEN])
{
	char raw[RULES_MAX_READ];
	size_t len = 0;
	enum rules_read_status st = rules_source_read(c, s, raw, sizeof(raw), &len);
	bool ok = false;

	if (st == RULES_READ_OK && len) {
		pseudonymize(c->env->pseudonymizer, raw, len, out);
		ok = true;
	} else if (st == RULES_READ_TOO_LONG) {
		/* Cutting it would give a pseudonym of someone else. */
		c->r->stats.identity_errors++;
	}
	/* The raw value never outlives this function; even an unusable one may be an id. */
	explicit_bzero(raw, sizeof(raw));
	return ok;
}

static bool rules_opted_out(struct rules_ctx *c)
{
	if (c->opted_out < 0)
		c->opted_out = privacy_opted_out(http_message_header(&c->ex->req, "Sec-GPC"),
						 http_message_header(&c->ex->req, "DNT"));
	return c->opted_out;
}

const char *rules_identity_user(struct rules_ctx *c, const struct rules_event *ev,
				char out[PSEUDONYM_LEN])
{
	if (!c->env->pseudonymizer)
		return NULL;
	if (rules_opted_out(c)) {
		c->r->stats.opted_out++;
		return NULL;
	}
	/* The event is about someone else (a registration's new user id): that user or nobody,
	 * never the requester in their place. */
	if (ev->has_user)
		return rules_pseudonymize_source(c, &ev->user, out) ? out : NULL;
	if (!c->requester_state) {
		c->requester_state = -1;
		for (unsigned i = 0; i < c->r->n_identity; i++) {
			if (rules_pseudonymize_source(c, &c->r->identity[i], c->requester)) {
				c->requester_state = 1;
				break;
			}
		}
	}
	if (c->requester_state < 0)
		return NULL;
	memcpy(out, c->requester, PSEUDONYM_LEN);
	return out;
}

const char *rules_identity_user_type(struct rules_ctx *c)
{
	char raw[RULES_MAX_READ];
	enum rules_read_status st;
	size_t len = 0;

	if (!c->r->has_user_type)
		return NULL;
	if (c->user_type_state)
		return c->user_type;
	c->user_type_state = 1;
	st = rules_source_read(c, &c->r->user_type.src, raw, sizeof(raw), &len);
	if (st == RULES_READ_TOO_LONG)
		c->user_type = RULES_OTHER;
	else if (st == RULES_READ_OK && len)
		c->user_type = rules_label_bound(&c->r->user_type, raw, len, true);
	else
		c->user_type = NULL; /* unknown: no type rather than "" */
	return c->user_type;
}

void rules_ctx_release(struct rules_ctx *c)
{
	json_doc_free(c->jwt);
	c->jwt = NULL;
	explicit_bzero(c->requester, sizeof(c->requester));
}

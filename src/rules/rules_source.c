// SPDX-License-Identifier: MIT
/*
 * Value sources: where a label, a value, a user or an identity is read from in one exchange
 * (a {param} of the route, the query, a header, a cookie, a JSON or form field of a body, a JWT
 * claim, a constant, or the exchange's own sizes, duration and status).
 *
 * Every read writes into a buffer of the caller's with a bound, so that hostile bytes can make a
 * value unusable but never overflow anything; bodies are tokenized at most once per exchange
 * and only when a rule that matched reads a field of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bizprobe/form.h"
#include "rules_internal.h"

static const char *const rules_source_names[] = {
    [RULES_SRC_PATH] = "path",
    [RULES_SRC_QUERY] = "query",
    [RULES_SRC_HEADER] = "header",
    [RULES_SRC_RESPONSE_HEADER] = "response_header",
    [RULES_SRC_COOKIE] = "cookie",
    [RULES_SRC_REQUEST_JSON] = "request_json",
    [RULES_SRC_RESPONSE_JSON] = "response_json",
    [RULES_SRC_REQUEST_FORM] = "request_form",
    [RULES_SRC_JWT_CLAIM] = "jwt_claim",
    [RULES_SRC_CONST] = "const",
    [RULES_SRC_REQUEST_BYTES] = "request_bytes",
    [RULES_SRC_RESPONSE_BYTES] = "response_bytes",
    [RULES_SRC_DURATION] = "duration",
    [RULES_SRC_STATUS] = "status",
};

#define RULES_N_SOURCES (sizeof(rules_source_names) / sizeof(rules_source_names[0]))

const char *rules_source_name(enum rules_src_kind k)
{
	return (unsigned)k < RULES_N_SOURCES && rules_source_names[k] ? rules_source_names[k] : "?";
}

enum rules_src_kind rules_source_kind(const char *name)
{
	for (unsigned k = 1; k < RULES_N_SOURCES; k++)
		if (!strcmp(rules_source_names[k], name))
			return (enum rules_src_kind)k;
	return RULES_SRC_NONE;
}

static bool rules_source_has_arg(enum rules_src_kind k)
{
	return k < RULES_SRC_REQUEST_BYTES;
}

/* Header names are tokens (RFC 9110 section 5.1); anything else could never match. */
static bool rules_header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static int rules_source_arg(struct rules_loader *l, const yaml_node_t *v, struct rules_source *s)
{
	const char *what = rules_source_name(s->kind);
	int n;

	if (!rules_source_has_arg(s->kind)) {
		/* {duration: true}, {status: ~}: the value says nothing, but a list or a
		 * mapping there is a mistake. */
		if (!rules_yaml_scalar(v)) {
			rules_diag_at(l, v, false, "%s takes no argument (write {%s: true})", what,
				      what);
			return -EINVAL;
		}
		return 0;
	}
	if (rules_yaml_string(l, v, what, RULES_MAX_ARG, &s->arg))
		return -EINVAL;
	switch (s->kind) {
	case RULES_SRC_HEADER:
	case RULES_SRC_RESPONSE_HEADER:
		if (!rules_header_name_ok(s->arg)) {
			rules_diag_at(l, v, false, "%s: '%s' is not a header name", what, s->arg);
			return -EINVAL;
		}
		break;
	case RULES_SRC_REQUEST_JSON:
	case RULES_SRC_RESPONSE_JSON:
	case RULES_SRC_JWT_CLAIM:
		n = rules_jpath_parse(s->arg, &s->jbuf, s->jpath, RULES_MAX_JPATH);
		if (n == -ENOMEM) {
			rules_diag_at(l, v, false, "out of memory");
			return -ENOMEM;
		}
		if (n < 0) {
			rules_diag_at(l, v, false,
				      "%s: '%s' is not a field path (names separated by dots, "
				      "array indexes as .0 or [0], at most %d steps)",
				      what, s->arg, RULES_MAX_JPATH);
			return -EINVAL;
		}
		s->n_jpath = (unsigned)n;
		break;
	case RULES_SRC_PATH:
	case RULES_SRC_QUERY:
	case RULES_SRC_COOKIE:
	case RULES_SRC_REQUEST_FORM:
		if (!*s->arg) {
			rules_diag_at(l, v, false, "%s needs a name", what);
			return -EINVAL;
		}
		break;
	default:
		break;
	}
	return 0;
}

int rules_source_parse(struct rules_loader *l, const yaml_node_t *n, const char *what,
		       uint32_t kinds, const char *const *extra, struct rules_source *out)
{
	const char *word = rules_yaml_scalar(n);
	const char *allowed[RULES_N_SOURCES + 8];
	char list[256];
	yaml_node_pair_t *p;
	unsigned na = 0;
	size_t off = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	list[0] = '\0';
	for (unsigned k = 1; k < RULES_N_SOURCES; k++) {
		if (!(kinds & RULES_KIND(k)))
			continue;
		allowed[na++] = rules_source_names[k];
		if (off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
						off ? ", " : "", rules_source_names[k]);
	}
	if (word && !rules_yaml_is_null(n)) {
		enum rules_src_kind k = rules_source_kind(word);

		if (k == RULES_SRC_NONE || rules_source_has_arg(k) || !(kinds & RULES_KIND(k))) {
			rules_diag_at(
			    l, n, false,
			    "%s must be a mapping {SOURCE: argument}, SOURCE one of %s (a "
			    "bare word only for request_bytes, response_bytes, duration, "
			    "status)",
			    what, list);
			return -EINVAL;
		}
		out->kind = k;
		out->line = (unsigned)n->start_mark.line + 1;
		out->col = (unsigned)n->start_mark.column + 1;
		return 0;
	}
	if (!n || n->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, n, false,
			      "%s must be a mapping {SOURCE: argument}, SOURCE one of %s", what,
			      list);
		return -EINVAL;
	}
	for (; extra && *extra && na < RULES_N_SOURCES + 7; extra++)
		allowed[na++] = *extra;
	allowed[na] = NULL;
	if (rules_yaml_check_keys(l, n, what, allowed))
		rc = -EINVAL;
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = rules_yaml_node(l, p->key);
		const char *ks = rules_yaml_scalar(k);
		enum rules_src_kind kind = ks ? rules_source_kind(ks) : RULES_SRC_NONE;

		if (kind == RULES_SRC_NONE || !(kinds & RULES_KIND(kind)))
			continue;
		if (out->kind != RULES_SRC_NONE) {
			rules_diag_at(l, k, false, "%s has two sources (%s and %s): give one", what,
				      rules_source_name(out->kind), ks);
			rc = -EINVAL;
			continue;
		}
		out->kind = kind;
		out->line = (unsigned)k->start_mark.line + 1;
		out->col = (unsigned)k->start_mark.column + 1;
		if (rules_source_arg(l, rules_yaml_node(l, p->value), out))
			rc = -EINVAL;
	}
	if (out->kind == RULES_SRC_NONE && !rc) {
		rules_diag_at(l, n, false, "%s has no source (one of %s)", what, list);
		rc = -EINVAL;
	}
	return rc;
}

void rules_source_free(struct rules_source *s)
{
	free(s->arg);
	free(s->jbuf);
	memset(s, 0, sizeof(*s));
}

bool rules_source_same(const struct rules_source *a, const struct rules_source *b)
{
	if (a->kind != b->kind)
		return false;
	if (!a->arg || !b->arg)
		return !a->arg && !b->arg;
	if (a->kind == RULES_SRC_HEADER || a->kind == RULES_SRC_RESPONSE_HEADER)
		return !strcasecmp(a->arg, b->arg);
	/* A path is the same field however it is spelt: items.0.id and items[0].id. */
	if (a->n_jpath || b->n_jpath) {
		if (a->n_jpath != b->n_jpath)
			return false;
		for (unsigned i = 0; i < a->n_jpath; i++)
			if (a->jpath[i].key_len != b->jpath[i].key_len ||
			    memcmp(a->jpath[i].key, b->jpath[i].key, a->jpath[i].key_len))
				return false;
		return true;
	}
	return !strcmp(a->arg, b->arg);
}

bool rules_source_mail_like(const struct rules_source *s)
{
	if (!s->arg || s->kind == RULES_SRC_CONST)
		return false;
	/* "mail" covers email, e_mail, mailAddress, X-Mail. */
	return strcasestr(s->arg, "mail") != NULL;
}

/* %XX decoding of a path segment; returns the length or -ENOSPC. */
static int rules_pct_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '%' && i + 2 < len && form_hexval(in[i + 1]) >= 0 &&
		    form_hexval(in[i + 2]) >= 0) {
			ch = (char)(form_hexval(in[i + 1]) * 16 + form_hexval(in[i + 2]));
			i += 2;
		}
		if (o + 1 >= size)
			return -ENOSPC;
		out[o++] = ch;
	}
	out[o] = '\0';
	return (int)o;
}

static enum rules_read_status rules_copy(const char *s, size_t n, char *out, size_t size,
					 size_t *len)
{
	if (n >= size)
		return RULES_READ_TOO_LONG;
	memcpy(out, s, n);
	out[n] = '\0';
	*len = n;
	return RULES_READ_OK;
}

static enum rules_read_status rules_from_rc(int rc, size_t *len)
{
	if (rc == -ENOSPC)
		return RULES_READ_TOO_LONG;
	if (rc < 0)
		return RULES_READ_ABSENT;
	*len = (size_t)rc;
	return RULES_READ_OK;
}

/* The body as JSON, parsed on first use. A body that is empty, cut or not JSON is one error per
 * exchange however many fields are read from it. */
static struct rules_json *rules_body_json(struct rules_ctx *c, bool resp)
{
	const struct http_message *m = resp ? &c->ex->resp : &c->ex->req;
	enum rules_body_state *st = resp ? &c->resp_body : &c->req_body;
	struct rules_json *j = resp ? c->r->resp_json : c->r->req_json;

	if (*st == RULES_BODY_UNTRIED) {
		*st = RULES_BODY_BAD;
		if (!m->body || !m->body_len || m->body_truncated) {
			c->r->stats.body_errors++;
		} else {
			c->r->stats.bodies_parsed++;
			if (rules_json_parse(j, (const char *)m->body, m->body_len))
				c->r->stats.body_errors++;
			else
				*st = RULES_BODY_OK;
		}
	}
	return *st == RULES_BODY_OK ? j : NULL;
}

/* A JWT claim at path: strings and integers, the types a claim that names someone has. */
static enum rules_read_status rules_jwt_read(struct rules_ctx *c, const struct rules_source *s,
					     char *out, size_t size, size_t *len)
{
	const struct json_doc *d = rules_ctx_jwt(c);
	struct json_val v = json_doc_root(d);
	const char *str;
	int64_t i;

	if (!d)
		return RULES_READ_ABSENT;
	for (unsigned k = 0; k < s->n_jpath && json_present(v); k++) {
		const struct rules_jstep *st = &s->jpath[k];

		if (json_is_array(v) && st->index >= 0) {
			struct json_val e = json_first(v);

			for (long n = 0; n < st->index && json_present(e); n++)
				e = json_next(v, e);
			v = e;
		} else {
			v = json_get(v, st->key);
		}
	}
	str = json_string(v);
	if (str)
		return rules_copy(str, strlen(str), out, size, len);
	if (json_int64(v, &i)) {
		int n = snprintf(out, size, "%" PRId64, i);

		if (n < 0 || (size_t)n >= size)
			return RULES_READ_TOO_LONG;
		*len = (size_t)n;
		return RULES_READ_OK;
	}
	return RULES_READ_ABSENT;
}

static enum rules_read_status rules_number(char *out, size_t size, size_t *len, const char *fmt,
					   ...) __attribute__((format(printf, 4, 5)));

static enum rules_read_status rules_number(char *out, size_t size, size_t *len, const char *fmt,
					   ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return RULES_READ_TOO_LONG;
	*len = (size_t)n;
	return RULES_READ_OK;
}

enum rules_read_status rules_source_read(struct rules_ctx *c, const struct rules_source *s,
					 char *out, size_t size, size_t *len)
{
	const struct http_exchange *ex = c->ex;
	struct rules_json *j;
	const char *h;
	int rc;

	*len = 0;
	if (size)
		out[0] = '\0';
	switch (s->kind) {
	case RULES_SRC_PATH:
		if (!c->ev || s->param >= c->path.n || c->ev->route.any)
			return RULES_READ_ABSENT;
		rc = rules_pct_decode(c->path.seg[s->param], c->path.len[s->param], out, size);
		return rules_from_rc(rc, len);
	case RULES_SRC_QUERY:
		if (!ex->query)
			return RULES_READ_ABSENT;
		rc = form_urlencoded_get(ex->query, strlen(ex->query), s->arg, out, size);
		return rules_from_rc(rc, len);
	case RULES_SRC_HEADER:
	case RULES_SRC_RESPONSE_HEADER:
		h = http_message_header(s->kind == RULES_SRC_HEADER ? &ex->req : &ex->resp, s->arg);
		return h ? rules_copy(h, strlen(h), out, size, len) : RULES_READ_ABSENT;
	case RULES_SRC_COOKIE:
		/* A request may carry several Cookie headers (HTTP/1.1 allows it for cookies
		 * only in practice): the first that has the cookie wins. */
		for (unsigned i = 0; i < ex->req.n_headers; i++) {
			if (strcasecmp(ex->req.headers[i].name, "Cookie"))
				continue;
			rc = http_cookie_get(ex->req.headers[i].value, s->arg, out, size);
			if (rc != -ENOENT)
				return rules_from_rc(rc, len);
		}
		return RULES_READ_ABSENT;
	case RULES_SRC_REQUEST_JSON:
	case RULES_SRC_RESPONSE_JSON:
		j = rules_body_json(c, s->kind == RULES_SRC_RESPONSE_JSON);
		if (!j)
			return RULES_READ_BODY_ERROR;
		rc = rules_json_get(j, s->jpath, s->n_jpath, out, size);
		return rules_from_rc(rc, len);
	case RULES_SRC_REQUEST_FORM:
		if (c->req_form == RULES_BODY_UNTRIED) {
			/* A cut form may have lost the very field: counted once per exchange, as
			 * for JSON. */
			c->req_form = RULES_BODY_OK;
			if (ex->req.body_truncated) {
				c->req_form = RULES_BODY_BAD;
				c->r->stats.body_errors++;
			}
		}
		if (c->req_form == RULES_BODY_BAD)
			return RULES_READ_BODY_ERROR;
		if (!ex->req.body || !ex->req.body_len)
			return RULES_READ_ABSENT;
		rc = form_urlencoded_get((const char *)ex->req.body, ex->req.body_len, s->arg, out,
					 size);
		return rules_from_rc(rc, len);
	case RULES_SRC_JWT_CLAIM:
		return rules_jwt_read(c, s, out, size, len);
	case RULES_SRC_CONST:
		return rules_copy(s->arg, strlen(s->arg), out, size, len);
	case RULES_SRC_REQUEST_BYTES:
		return rules_number(out, size, len, "%" PRIu64, ex->req.wire_body_bytes);
	case RULES_SRC_RESPONSE_BYTES:
		return rules_number(out, size, len, "%" PRIu64, ex->resp.wire_body_bytes);
	case RULES_SRC_DURATION:
		return rules_number(out, size, len, "%.9g", (double)ex->duration_ns / 1e9);
	case RULES_SRC_STATUS:
		return rules_number(out, size, len, "%d", ex->status);
	default:
		return RULES_READ_ABSENT;
	}
}

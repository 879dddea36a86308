// SPDX-License-Identifier: MIT
/*
 * The YAML side of loading a rules file: libyaml's document API, diagnostics with the 1-based
 * line and column of the node they are about, and typed reads of scalars.
 *
 * libyaml (0.2.5 in Debian 12) resolves aliases into shared nodes and has no limit of its own on
 * how often a node is shared; walking a schema over shared nodes repeats work once per path to
 * them (the "billion laughs"), and a node that contains itself would never end. A rules file has
 * no use for anchors, so every node must be referenced at most once.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_internal.h"

void rules_diag_pos(struct rules_loader *l, unsigned line, unsigned col, bool warning,
		    const char *fmt, ...)
{
	struct rules_diag_buf *d;
	va_list ap;
	int n;

	if (!warning)
		l->errors++;
	if (l->n_diags == RULES_MAX_DIAGS) {
		l->dropped++;
		return;
	}
	d = &l->diags[l->n_diags];
	va_start(ap, fmt);
	n = vasprintf(&d->message, fmt, ap);
	va_end(ap);
	if (n < 0) {
		l->dropped++;
		return;
	}
	d->seq = l->n_diags;
	d->line = line;
	d->col = col;
	d->warning = warning;
	l->n_diags++;
}

static int rules_diag_cmp(const void *a, const void *b)
{
	const struct rules_diag_buf *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	/* Same node: in the order found (qsort is not stable). */
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void rules_diag_flush(struct rules_loader *l)
{
	struct rules_diag d;
	char more[64];

	qsort(l->diags, l->n_diags, sizeof(l->diags[0]), rules_diag_cmp);
	for (unsigned i = 0; i < l->n_diags; i++) {
		if (l->diag) {
			d.file = l->file;
			d.line = l->diags[i].line;
			d.col = l->diags[i].col;
			d.warning = l->diags[i].warning;
			d.message = l->diags[i].message;
			l->diag(&d, l->ctx);
		}
		free(l->diags[i].message);
	}
	if (l->dropped && l->diag) {
		snprintf(more, sizeof(more), "%u more problems not shown", l->dropped);
		d.file = l->file;
		d.line = d.col = 0;
		d.warning = false;
		d.message = more;
		l->diag(&d, l->ctx);
	}
	l->n_diags = 0;
	l->dropped = 0;
}

void rules_diag_at(struct rules_loader *l, const yaml_node_t *n, bool warning, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* libyaml marks count from 0. */
	rules_diag_pos(l, n ? (unsigned)n->start_mark.line + 1 : 0,
		       n ? (unsigned)n->start_mark.column + 1 : 0, warning, "%s", msg);
}

yaml_node_t *rules_yaml_node(struct rules_loader *l, int id)
{
	return yaml_document_get_node(&l->doc, id);
}

const char *rules_yaml_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

bool rules_yaml_is_null(const yaml_node_t *n)
{
	const char *s = rules_yaml_scalar(n);

	if (!n)
		return true;
	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

int rules_yaml_check_keys(struct rules_loader *l, const yaml_node_t *m, const char *what,
			  const char *const *allowed)
{
	/* Where each allowed key was first seen: repeats are found in one step, so that a mapping
	 * of a hundred thousand keys costs no more than its length. */
	const yaml_node_t *seen[RULES_MAX_KEYS] = {NULL};
	yaml_node_pair_t *p;
	int errors = 0;

	for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = rules_yaml_node(l, p->key);
		const char *ks = rules_yaml_scalar(k);
		unsigned a = 0;
		char list[512];
		size_t off = 0;

		if (!ks) {
			rules_diag_at(l, k, false, "%s: a key must be a plain word", what);
			errors++;
			continue;
		}
		while (allowed[a] && strcmp(allowed[a], ks))
			a++;
		if (!allowed[a]) {
			list[0] = '\0';
			for (const char *const *x = allowed; *x && off < sizeof(list); x++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
							x == allowed ? "" : ", ", *x);
			rules_diag_at(l, k, false, "unknown key '%s' in %s (expected %s)", ks, what,
				      list);
			errors++;
			continue;
		}
		/* YAML forbids repeated keys but libyaml keeps both; which one wins would be a
		 * guess, so neither does. */
		if (a < RULES_MAX_KEYS && seen[a]) {
			rules_diag_at(l, k, false, "duplicate key '%s' in %s", ks, what);
			errors++;
		} else if (a < RULES_MAX_KEYS) {
			seen[a] = k;
		}
	}
	return errors;
}

/*
 * libyaml's scanner checks every open flow collection for stale simple keys at each token, so
 * its time grows with the square of the nesting: 400,000 '[' (within the 1 MiB bound) took ten
 * minutes with 0.2.5. A rules file nests a few levels; a first pass over the events stops at
 * RULES_MAX_DEPTH, before the cost can grow, and reports where.
 */
static int rules_yaml_check_depth(struct rules_loader *l, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	unsigned depth = 0;
	int rc = 0;

	if (!yaml_parser_initialize(&parser)) {
		rules_diag_pos(l, 0, 0, false, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_type_t type;

		/* A syntax error is left to the loader, which reports it. */
		if (!yaml_parser_parse(&parser, &ev))
			break;
		type = ev.type;
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
			if (++depth > RULES_MAX_DEPTH) {
				rules_diag_pos(l, (unsigned)ev.start_mark.line + 1,
					       (unsigned)ev.start_mark.column + 1, false,
					       "nested deeper than %d levels", RULES_MAX_DEPTH);
				rc = -EINVAL;
			}
		} else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&ev);
		if (rc || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return rc;
}

yaml_node_t *rules_yaml_get(struct rules_loader *l, const yaml_node_t *m, const char *key,
			    yaml_node_t **key_node)
{
	yaml_node_pair_t *p;

	if (key_node)
		*key_node = NULL;
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = rules_yaml_node(l, p->key);
		const char *ks = rules_yaml_scalar(k);

		if (ks && !strcmp(ks, key)) {
			if (key_node)
				*key_node = k;
			return rules_yaml_node(l, p->value);
		}
	}
	return NULL;
}

int rules_yaml_string(struct rules_loader *l, const yaml_node_t *n, const char *what, size_t max,
		      char **out)
{
	const char *s = rules_yaml_scalar(n);

	*out = NULL;
	if (!s || rules_yaml_is_null(n)) {
		rules_diag_at(l, n, false, "%s must be a string", what);
		return -EINVAL;
	}
	if (strlen(s) != n->data.scalar.length) {
		rules_diag_at(l, n, false, "%s contains a NUL byte", what);
		return -EINVAL;
	}
	if (n->data.scalar.length > max) {
		rules_diag_at(l, n, false, "%s is longer than %zu bytes", what, max);
		return -EINVAL;
	}
	*out = strdup(s);
	if (!*out) {
		rules_diag_at(l, n, false, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int rules_yaml_long(struct rules_loader *l, const yaml_node_t *n, const char *what, long min,
		    long max, long *out)
{
	const char *s = rules_yaml_scalar(n);
	char *end;
	long v;

	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !*s)
		goto bad;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || errno)
		goto bad;
	if (v < min || v > max) {
		rules_diag_at(l, n, false, "%s must be between %ld and %ld", what, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
bad:
	rules_diag_at(l, n, false, "%s must be an integer", what);
	return -EINVAL;
}

int rules_yaml_double(const yaml_node_t *n, double *out)
{
	const char *s = rules_yaml_scalar(n);
	char *end;
	double v;

	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* strtod also reads "nan", "inf" and hex floats; a bucket bound is a plain number. */
	if (*end || errno || !isfinite(v) || strpbrk(s, "xXnN"))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Every node referenced at most once (see the top of this file); reports the first shared one. */
static int rules_yaml_check_shared(struct rules_loader *l)
{
	yaml_node_t *start = l->doc.nodes.start, *n;
	size_t count = (size_t)(l->doc.nodes.top - start);
	unsigned char *refs = calloc(count + 1, 1);
	int rc = 0;

	if (!refs) {
		rules_diag_pos(l, 0, 0, false, "out of memory");
		return -ENOMEM;
	}
	/* The root counts as referenced once by the document. */
	refs[1] = 1;
	for (n = start; n < l->doc.nodes.top && !rc; n++) {
		yaml_node_item_t *it;
		yaml_node_pair_t *p;
		int ids[2];

		if (n->type == YAML_SEQUENCE_NODE) {
			for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
			     it++)
				if (*it >= 1 && (size_t)*it <= count && refs[*it]++)
					rc = *it;
		} else if (n->type == YAML_MAPPING_NODE) {
			for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
				ids[0] = p->key;
				ids[1] = p->value;
				for (int k = 0; k < 2; k++)
					if (ids[k] >= 1 && (size_t)ids[k] <= count &&
					    refs[ids[k]]++)
						rc = ids[k];
			}
		}
	}
	free(refs);
	if (rc) {
		rules_diag_at(l, rules_yaml_node(l, rc), false,
			      "anchors and aliases (&, *) are not supported in a rules file");
		return -EINVAL;
	}
	return 0;
}

int rules_load_document(struct rules_loader *l, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	bool loaded = false;
	int rc = 0;

	rc = rules_yaml_check_depth(l, text, len);
	if (rc)
		return rc;
	if (!yaml_parser_initialize(&parser)) {
		rules_diag_pos(l, 0, 0, false, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &l->doc)) {
		memset(&l->doc, 0, sizeof(l->doc));
		if (parser.error == YAML_MEMORY_ERROR) {
			rules_diag_pos(l, 0, 0, false, "out of memory");
			rc = -ENOMEM;
			goto cleanup;
		}
		if (parser.context)
			rules_diag_pos(l, (unsigned)parser.problem_mark.line + 1,
				       (unsigned)parser.problem_mark.column + 1, false,
				       "YAML syntax error: %s (%s that starts at %u:%u)",
				       parser.problem ? parser.problem : "unknown", parser.context,
				       (unsigned)parser.context_mark.line + 1,
				       (unsigned)parser.context_mark.column + 1);
		else
			rules_diag_pos(l, (unsigned)parser.problem_mark.line + 1,
				       (unsigned)parser.problem_mark.column + 1, false,
				       "YAML syntax error: %s",
				       parser.problem ? parser.problem : "unknown");
		rc = -EINVAL;
		goto cleanup;
	}
	loaded = true;
	if (!yaml_document_get_root_node(&l->doc)) {
		rules_diag_pos(l, 1, 1, false,
			       "the file is empty (expected version: 1 and events)");
		rc = -EINVAL;
		goto cleanup;
	}
	/* A second document would be ignored silently by a reader that stops at the first. */
	if (!yaml_parser_load(&parser, &extra)) {
		rules_diag_pos(l, (unsigned)parser.problem_mark.line + 1,
			       (unsigned)parser.problem_mark.column + 1, false,
			       "YAML syntax error: %s",
			       parser.problem ? parser.problem : "unknown");
		rc = -EINVAL;
		goto cleanup;
	}
	if (yaml_document_get_root_node(&extra)) {
		yaml_node_t *root = yaml_document_get_root_node(&extra);

		rules_diag_pos(l, (unsigned)root->start_mark.line + 1,
			       (unsigned)root->start_mark.column + 1, false,
			       "a rules file holds one YAML document; this is a second one");
		rc = -EINVAL;
	}
	yaml_document_delete(&extra);
	if (!rc)
		rc = rules_yaml_check_shared(l);
cleanup:
	/* On success the caller deletes the document. */
	if (rc && loaded)
		yaml_document_delete(&l->doc);
	yaml_parser_delete(&parser);
	return rc;
}

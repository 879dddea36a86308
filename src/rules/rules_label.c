// SPDX-License-Identifier: MIT
/*
 * Labels of rule events, and how each stays bounded: an allow-list (`values`, anything else is
 * "other") or the first max_values distinct values (later ones are "other"). A label value is
 * never a pointer into the exchange: it is a copy the label owns (allow-list entry or one of its
 * first N) or a constant, so an event can be handed on without copying its labels.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/keyed_hash.h"
#include "rules_internal.h"

int rules_strset_init(struct rules_strset *s, unsigned max_entries)
{
	unsigned cap = 8;

	while (cap < 2 * max_entries)
		cap *= 2;
	s->slot = calloc(cap, sizeof(*s->slot));
	/* Values come from requests: keyed, so that a sender cannot pick values that all probe
	 * the same run of slots (every lookup of a full first-N set would walk it). */
	s->kh = keyed_hash_new();
	if (!s->slot || !s->kh) {
		free(s->slot);
		keyed_hash_free(s->kh);
		memset(s, 0, sizeof(*s));
		return -ENOMEM;
	}
	s->cap = cap;
	s->n = 0;
	return 0;
}

void rules_strset_free(struct rules_strset *s)
{
	if (s->slot)
		for (unsigned i = 0; i < s->cap; i++)
			free(s->slot[i]);
	free(s->slot);
	keyed_hash_free(s->kh);
	memset(s, 0, sizeof(*s));
}

/* The slot holding str, or the empty slot where it would go. */
static unsigned rules_strset_slot(const struct rules_strset *s, const char *str)
{
	unsigned i = (unsigned)keyed_hash_str(s->kh, str) & (s->cap - 1);

	while (s->slot[i] && strcmp(s->slot[i], str))
		i = (i + 1) & (s->cap - 1);
	return i;
}

const char *rules_strset_find(const struct rules_strset *s, const char *str)
{
	if (!s->slot)
		return NULL;
	return s->slot[rules_strset_slot(s, str)];
}

const char *rules_strset_add(struct rules_strset *s, const char *str)
{
	unsigned i;

	/* The set is sized for its most entries at half load, so a free slot always exists. */
	if (!s->slot || 2 * (s->n + 1) > s->cap)
		return NULL;
	i = rules_strset_slot(s, str);
	if (!s->slot[i]) {
		s->slot[i] = strdup(str);
		if (!s->slot[i])
			return NULL;
		s->n++;
	}
	return s->slot[i];
}

/* A label value that could break an exposition line or a log, or that no allow-list would
 * have: control bytes and malformed UTF-8. */
static bool rules_label_clean(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		/* Overlong three- and four-byte forms, surrogates, and beyond U+10FFFF. */
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
			return false;
		i += n + 1;
	}
	return true;
}

const char *rules_label_bound(struct rules_label *lb, const char *val, size_t len, bool present)
{
	const char *kept;

	/* Absent and empty alike: no category, and not one of the N places. */
	if (!present || !len)
		return "";
	if (len > RULES_MAX_LABEL_LEN || !rules_label_clean((const unsigned char *)val, len))
		return RULES_OTHER;
	if (lb->n_values) {
		kept = rules_strset_find(&lb->values, val);
		return kept ? kept : RULES_OTHER;
	}
	kept = rules_strset_find(&lb->seen, val);
	if (kept)
		return kept;
	if (lb->seen.n >= lb->max_values)
		return RULES_OTHER;
	kept = rules_strset_add(&lb->seen, val);
	return kept ? kept : RULES_OTHER;
}

static const char *const rules_label_extra[] = {"values", "max_values", NULL};

static int rules_label_values(struct rules_loader *l, const yaml_node_t *v, const char *what,
			      struct rules_label *lb)
{
	yaml_node_item_t *it;
	unsigned n;
	int rc = 0;

	if (v->type != YAML_SEQUENCE_NODE ||
	    v->data.sequence.items.top == v->data.sequence.items.start) {
		rules_diag_at(l, v, false, "%s: values must be a non-empty list of words", what);
		return -EINVAL;
	}
	n = (unsigned)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n > RULES_MAX_VALUES) {
		rules_diag_at(l, v, false, "%s: values lists %u entries, at most %d are allowed",
			      what, n, RULES_MAX_VALUES);
		return -EINVAL;
	}
	if (rules_strset_init(&lb->values, n)) {
		rules_diag_at(l, v, false, "out of memory");
		return -ENOMEM;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = rules_yaml_node(l, *it);
		const char *s = rules_yaml_scalar(e);

		if (!s || rules_yaml_is_null(e) || strlen(s) != e->data.scalar.length) {
			rules_diag_at(l, e, false, "%s: each of values must be a word", what);
			rc = -EINVAL;
			continue;
		}
		if (e->data.scalar.length > RULES_MAX_LABEL_LEN ||
		    !rules_label_clean((const unsigned char *)s, e->data.scalar.length)) {
			rules_diag_at(l, e, false,
				      "%s: a value must be at most %d bytes of printable UTF-8",
				      what, RULES_MAX_LABEL_LEN);
			rc = -EINVAL;
			continue;
		}
		if (!rules_strset_add(&lb->values, s)) {
			rules_diag_at(l, e, false, "out of memory");
			return -ENOMEM;
		}
	}
	lb->n_values = lb->values.n;
	return rc;
}

int rules_label_parse(struct rules_loader *l, const yaml_node_t *n, const char *what,
		      uint32_t kinds, struct rules_label *out)
{
	yaml_node_t *values, *max, *max_key;
	char mwhat[RULES_MAX_NAME + 64];
	long mv;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = rules_source_parse(l, n, what, kinds, rules_label_extra, &out->src);
	values = rules_yaml_get(l, n, "values", NULL);
	max = rules_yaml_get(l, n, "max_values", &max_key);
	if (values && max) {
		rules_diag_at(l, max_key, false,
			      "%s: give values (an allow-list) or max_values (the first N), not "
			      "both",
			      what);
		return -EINVAL;
	}
	if (values) {
		if (rules_label_values(l, values, what, out))
			rc = -EINVAL;
		return rc;
	}
	out->max_values = RULES_DEFAULT_MAX_VALUES;
	if (max) {
		snprintf(mwhat, sizeof(mwhat), "%s: max_values", what);
		if (rules_yaml_long(l, max, mwhat, 1, RULES_MAX_VALUES, &mv))
			return -EINVAL;
		out->max_values = (unsigned)mv;
	}
	if (rules_strset_init(&out->seen, out->max_values)) {
		rules_diag_at(l, n, false, "out of memory");
		return -ENOMEM;
	}
	return rc;
}

void rules_label_free(struct rules_label *lb)
{
	free(lb->name);
	rules_source_free(&lb->src);
	rules_strset_free(&lb->values);
	rules_strset_free(&lb->seen);
	memset(lb, 0, sizeof(*lb));
}

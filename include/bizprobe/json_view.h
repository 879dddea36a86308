/* SPDX-License-Identifier: MIT */
/*
 * Read-only view of one JSON document, for pulling a few fields out of Stripe bodies.
 *
 * Why not a DOM library: a Stripe object is 1-4 KiB with a hundred keys, of which the semantics
 * read a handful; building a tree costs hundreds of small allocations per body and was half of
 * bizprobe's CPU on a payment workload. This view tokenizes with jsmn (Debian's libjsmn-dev) into
 * one token array over the body's own bytes and decodes a string only when it is read; a reused
 * document (json_doc_new, json_doc_load) allocates nothing once its arrays have grown.
 */
#ifndef BIZPROBE_JSON_VIEW_H
#define BIZPROBE_JSON_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_doc;

/* A value inside a document; i < 0 is the absent value, which every accessor accepts. */
struct json_val {
	const struct json_doc *doc;
	int i;
};

/* Parses a body that must be exactly one complete JSON object (whitespace around it is fine),
 * from a copy of text. NULL when it is not: cut, malformed, another type, trailing bytes, or out
 * of memory. */
struct json_doc *json_doc_parse(const uint8_t *text, size_t len);
/* An empty document for json_doc_load; NULL when out of memory. */
struct json_doc *json_doc_new(void);
/* Parses text into d as json_doc_parse does, but without a copy: text must stay unchanged while
 * d's values are read. Values read from d's previous text are invalid after the call. 0, or
 * -EINVAL (not one object; d is then empty: its root is absent) or -ENOMEM. */
int json_doc_load(struct json_doc *d, const uint8_t *text, size_t len);
void json_doc_free(struct json_doc *d);
struct json_val json_doc_root(const struct json_doc *d);

bool json_present(struct json_val v);
bool json_is_object(struct json_val v);
bool json_is_array(struct json_val v);
/* Member of an object (the last one when a key repeats, as JSON.parse does); absent otherwise. */
struct json_val json_get(struct json_val obj, const char *key);
/* The decoded string (UTF-8, NUL-terminated, valid as long as the document), or NULL. */
const char *json_string(struct json_val v);
/* An integer written without fraction or exponent that fits int64_t. */
bool json_int64(struct json_val v, int64_t *out);
/* Elements of an array: for (e = json_first(a); json_present(e); e = json_next(a, e)). */
struct json_val json_first(struct json_val arr);
struct json_val json_next(struct json_val arr, struct json_val elem);

#endif

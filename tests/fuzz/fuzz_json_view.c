// SPDX-License-Identifier: MIT
/*
 * The JSON view (src/semantics/json_view.c) on any bytes: a document either parses or is NULL,
 * and a parsed one can be walked: every member the semantics and the rules ask for, every
 * string decoded (escapes, surrogates) and NUL-terminated, every integer read.
 */
#include "bizprobe/json_view.h"
#include "fuzz_util.h"

static const char *const keys[] = {"id",	 "object", "type",   "data",	 "amount",
				   "currency",	 "status", "metadata", "items", "price",
				   "unit_amount", "error",  "user",	"a",	 ""};

static void walk(struct json_val v, int depth)
{
	const char *s;
	int64_t n;

	if (!json_present(v) || depth > 64)
		return;
	if ((s = json_string(v)))
		fuzz_sink += strlen(s);
	if (json_int64(v, &n))
		fuzz_sink += (size_t)n;
	if (json_is_array(v))
		for (struct json_val e = json_first(v); json_present(e); e = json_next(v, e))
			walk(e, depth + 1);
	if (json_is_object(v))
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			walk(json_get(v, keys[i]), depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fuzz_dup(data, size);
	struct json_doc *d = json_doc_parse(copy, size);

	if (d)
		walk(json_doc_root(d), 0);
	json_doc_free(d);
	free(copy);
	return 0;
}

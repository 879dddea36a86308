// SPDX-License-Identifier: MIT
/*
 * Sentry envelope and store bodies (src/semantics/sentry_envelope.c) on any bytes, whole or
 * marked truncated: each parse ends with one of its statuses, items carry NUL-terminated
 * bounded labels, and nothing is read past the body.
 */
#include "bizprobe/sentry.h"
#include "fuzz_util.h"

static void on_item(const struct sentry_item *item, void *ctx)
{
	fuzz_sink += strlen(item->type) + strlen(item->level);
	(*(unsigned *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	unsigned items = 0;
	enum sentry_parse_status st;

	if (!size)
		return 0;
	copy = fuzz_dup(data + 1, size - 1);
	if (data[0] & 2)
		st = sentry_store_parse(copy, size - 1, data[0] & 1, on_item, &items);
	else
		st = sentry_envelope_parse(copy, size - 1, data[0] & 1, on_item, &items);
	if (st != SENTRY_PARSE_OK && st != SENTRY_PARSE_TRUNCATED && st != SENTRY_PARSE_MALFORMED)
		abort();
	free(copy);
	return 0;
}

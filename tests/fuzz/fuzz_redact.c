// SPDX-License-Identifier: MIT
/*
 * Redaction and the trace lines on any bytes. redact_text and redact_path_template must give
 * the same length whatever the output buffer (as snprintf does), a prefix of the full text in a
 * short buffer, and never read past the input; the trace lines built from an exchange of input
 * fields (headers, query, bodies, path) must be valid JSON strings' worth of bytes: no raw
 * control character, no byte that is not UTF-8.
 */
#include <errno.h>

#include "bizprobe/redact.h"
#include "bizprobe/trace_format.h"
#include "fuzz_util.h"

static size_t count(const char *s, size_t n, const char *mark)
{
	size_t k = 0, m = strlen(mark);

	for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), mark, m)); p += m)
		k++;
	return k;
}

static void check_redact(const uint8_t *in, size_t n)
{
	size_t full = redact_text((const char *)in, n, NULL, 0), small;
	char *out = malloc(full + 1), cut[17];

	if (!out)
		abort();
	if (redact_text((const char *)in, n, out, full + 1) != full)
		abort();
	small = redact_text((const char *)in, n, cut, sizeof(cut));
	if (small != full || memcmp(cut, out, full < 16 ? full : 16) != 0 ||
	    cut[full < 16 ? full : 16] != '\0')
		abort();
	/* A second pass finds no e-mail or card the first missed (it may swallow one into a
	 * secret field's value, never add one). (Secret-named fields may read differently: a marker is made of
	 * name characters, so "x_secret_[REDACTED]=1" reads as a field the first pass saw as a
	 * client secret and a value; both passes hide the secret.) */
	{
		size_t again = redact_text(out, full, NULL, 0);
		char *twice = malloc(again + 1);

		if (!twice)
			abort();
		redact_text(out, full, twice, again + 1);
		if (count(twice, again, REDACT_MARK_EMAIL) > count(out, full, REDACT_MARK_EMAIL) ||
		    count(twice, again, REDACT_MARK_CARD) > count(out, full, REDACT_MARK_CARD))
			abort();
		free(twice);
	}
	free(out);
}

static void check_template(const char *path)
{
	size_t full = redact_path_template(path, NULL, 0);
	char *out = malloc(full + 1);

	if (!out || redact_path_template(path, out, full + 1) != full || strlen(out) != full)
		abort();
	free(out);
}

/* Every byte of a JSON line: printable ASCII or part of UTF-8 (put_json_chars' promise). */
static void check_line(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct http_exchange ex;
	struct trace_opts opts = {.raw_paths = false, .max_body = 256};
	char *strs[2 * 6 + 4];
	unsigned n_strs = 0;
	uint8_t *copy = fuzz_dup(data, size);
	char *line;
	int n;

	check_redact(copy, size);
	free(copy);
	memset(&ex, 0, sizeof(ex));
	strcpy(ex.method, "POST");
	ex.path = strs[n_strs++] = fuzz_str(&in, 512);
	ex.query = strs[n_strs++] = fuzz_str(&in, 512);
	ex.host = strs[n_strs++] = fuzz_str(&in, 64);
	ex.target = ex.path;
	check_template(ex.path);
	for (unsigned i = 0; i < 6; i++) {
		struct http_message *m = i & 1 ? &ex.resp : &ex.req;

		m->headers[m->n_headers].name = strs[n_strs++] = fuzz_str(&in, 64);
		m->headers[m->n_headers++].value = strs[n_strs++] = fuzz_str(&in, 256);
	}
	ex.req.body = (const uint8_t *)(strs[n_strs++] = fuzz_str(&in, 2048));
	ex.req.body_len = strlen((const char *)ex.req.body);
	ex.resp.body = (const uint8_t *)"";
	line = malloc(1 << 16);
	if (!line)
		abort();
	for (int kind = TRACE_TEXT; kind <= TRACE_JSON_DROPPED; kind++) {
		opts.raw_paths = kind & 1;
		n = trace_format((enum trace_line_kind)kind, &ex, 1795842001250000000ull, &opts, line,
				 1 << 16, NULL);
		if (n < 0 && n != -ENOSPC)
			abort();
		if (n >= 0 && kind != TRACE_TEXT)
			check_line(line, n);
	}
	free(line);
	for (unsigned i = 0; i < n_strs; i++)
		free(strs[i]);
	return 0;
}

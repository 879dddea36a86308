// SPDX-License-Identifier: MIT
/*
 * Prometheus text exposition format 0.0.4: one HELP and one TYPE line per family before its
 * samples; label values escape \\, \" and \n; HELP escapes \\ and \n; histograms as cumulative
 * ascending _bucket lines ending with le="+Inf" (equal to _count), then _sum and _count.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/metrics.h"

/* Bytes of the valid UTF-8 sequence at s (NUL-terminated), or 0 (RFC 3629: no overlong forms,
 * surrogates or code points past U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t len, k;
	unsigned cp;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* Every byte of a multi-byte sequence stops a plain run too (constant: renders run on the
 * server's thread while the main loop may render as well). */
#define HIGH_BYTES \
	"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f" \
	"\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f" \
	"\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf" \
	"\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf" \
	"\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf" \
	"\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf" \
	"\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef" \
	"\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff"
static const char stop_quote[] = "\\\n\"" HIGH_BYTES;
static const char stop_plain[] = "\\\n" HIGH_BYTES;

/*
 * Label values and help text are UTF-8 in the format, and a strict scraper (Prometheus 2) drops
 * the whole scrape at a value that is not: each byte that is not part of valid UTF-8 becomes
 * U+FFFD, as in the trace lines (found by fuzz_prom: a label value is whatever its producer
 * let through).
 */
void prom_write_escaped(FILE *f, const char *s, int escape_quote)
{
	const char *stop = escape_quote ? stop_quote : stop_plain;

	while (s && *s) {
		/* Runs that need no escaping (nearly every value) go out in one call. */
		size_t run = strcspn(s, stop), n;

		fwrite(s, 1, run, f);
		s += run;
		switch (*s) {
		case '\0':
			return;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '"':
			fputs("\\\"", f);
			break;
		default:
			n = utf8_len((const unsigned char *)s);
			if (n) {
				fwrite(s, 1, n, f);
				s += n;
				continue;
			}
			fputs("\xef\xbf\xbd", f);
			break;
		}
		s++;
	}
}

const char *prom_format_double(char *buf, size_t size, double v)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else if (fabs(v) < 9007199254740992.0 && v == (double)(long long)v && size >= 21) {
		/* Integral values (every counter, bucket count, most bounds) need no search, nor
		 * printf: digits are written backwards into a scratch and copied out. */
		unsigned long long u =
		    v < 0 ? (unsigned long long)-(long long)v : (unsigned long long)v;
		char digits[20], *o = buf;
		int n = 0;

		do {
			digits[n++] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (v < 0)
			*o++ = '-';
		while (n)
			*o++ = digits[--n];
		*o = '\0';
	} else {
		/* %.17g always round-trips but prints 0.1 as 0.10000000000000001; use the
		 * shortest precision that reads back to the same double. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
	return buf;
}

static const char *type_name(enum metrics_type t)
{
	switch (t) {
	case METRICS_COUNTER:
		return "counter";
	case METRICS_GAUGE:
		return "gauge";
	case METRICS_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

void prom_write_family_header(FILE *f, const struct metrics_family_info *fam)
{
	fprintf(f, "# HELP %s ", fam->name);
	prom_write_escaped(f, fam->help, 0);
	fprintf(f, "\n# TYPE %s %s\n", fam->name, type_name(fam->type));
}

/* name{a="x",b="y"[,le="..."]} value */
static void write_sample(FILE *f, const struct metrics_family_info *fam, const char *suffix,
			 const struct metrics_series_info *s, const char *le, double v)
{
	char num[64];
	int first = 1;

	/* fputs, not fprintf: this runs for every line of a large exposition. */
	fputs(fam->name, f);
	fputs(suffix, f);
	if (fam->n_labels || le) {
		fputc('{', f);
		for (unsigned i = 0; i < fam->n_labels; i++) {
			if (!first)
				fputc(',', f);
			fputs(fam->label_names[i], f);
			fputs("=\"", f);
			prom_write_escaped(f, s->label_values[i], 1);
			fputc('"', f);
			first = 0;
		}
		if (le) {
			fputs(first ? "le=\"" : ",le=\"", f);
			fputs(le, f);
			fputc('"', f);
		}
		fputc('}', f);
	}
	fputc(' ', f);
	fputs(prom_format_double(num, sizeof(num), v), f);
	fputc('\n', f);
}

/* A family's bucket bounds as `le` label values, formatted once per family and render. */
struct le_strings {
	char v[METRICS_MAX_BUCKETS][32];
};

static void format_les(const struct metrics_family_info *fam, struct le_strings *les)
{
	for (unsigned i = 0; i < fam->n_buckets && i < METRICS_MAX_BUCKETS; i++)
		prom_format_double(les->v[i], sizeof(les->v[i]), fam->buckets[i]);
}

static void write_series(FILE *f, const struct metrics_family_info *fam,
			 const struct metrics_series_info *s, const struct le_strings *les)
{
	uint64_t cum = 0;

	if (fam->type != METRICS_HISTOGRAM) {
		write_sample(f, fam, "", s, NULL, s->value);
		return;
	}
	for (unsigned i = 0; i < fam->n_buckets && i < METRICS_MAX_BUCKETS; i++) {
		cum += s->bucket_counts[i];
		write_sample(f, fam, "_bucket", s, les->v[i], (double)cum);
	}
	/* Observations above the last bound (and NaN-free by construction) land only in +Inf. */
	write_sample(f, fam, "_bucket", s, "+Inf", (double)s->count);
	write_sample(f, fam, "_sum", s, NULL, s->sum);
	write_sample(f, fam, "_count", s, NULL, (double)s->count);
}

void prom_write_series(FILE *f, const struct metrics_family_info *fam,
		       const struct metrics_series_info *s)
{
	struct le_strings les;

	if (fam->type == METRICS_HISTOGRAM)
		format_les(fam, &les);
	write_series(f, fam, s, &les);
}

struct render_ctx {
	FILE *f;
	struct le_strings les; /* of the family being rendered */
};

static int visit_family(const struct metrics_family_info *fam, void *ctx)
{
	struct render_ctx *r = ctx;

	prom_write_family_header(r->f, fam);
	if (fam->type == METRICS_HISTOGRAM)
		format_les(fam, &r->les);
	return 0;
}

static int visit_series(const struct metrics_family_info *fam, const struct metrics_series_info *s,
			void *ctx)
{
	struct render_ctx *r = ctx;

	write_series(r->f, fam, s, &r->les);
	return 0;
}

int prom_render(struct metrics_registry *reg, char **out, size_t *len)
{
	static const struct metrics_visitor visitor = {visit_family, visit_series};
	struct render_ctx *r;
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int err;

	if (!reg || !out)
		return -EINVAL;
	metrics_registry_run_collectors(reg);
	r = malloc(sizeof(*r));
	f = open_memstream(&buf, &size);
	if (!f || !r) {
		if (f)
			fclose(f);
		free(buf);
		free(r);
		return -ENOMEM;
	}
	/* The stream is this call's alone: no per-call stdio locking. */
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	r->f = f;
	metrics_registry_visit(reg, &visitor, r);
	free(r);
	err = ferror(f) ? -EIO : 0;
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	if (len)
		*len = size;
	return 0;
}

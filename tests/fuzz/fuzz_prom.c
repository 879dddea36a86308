// SPDX-License-Identifier: MIT
/*
 * Prometheus rendering with label values and help texts from the input: the exposition must
 * parse back (every line a comment or `name{label="value",...} number`), be valid UTF-8 (a
 * strict scraper drops the whole scrape otherwise), and give back, unescaped, each label value
 * that was valid UTF-8 as it was added. Also prom_format_double on any 8 bytes: the text reads
 * back as the same double.
 */
#include <math.h>
#include <stdio.h>

#include "bizprobe/metrics.h"
#include "fuzz_util.h"

static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* Parses one label value at *p (after the opening quote) into out; the closing quote is
 * consumed. False when the escaping is not the format's. */
static bool read_value(const char **p, char *out, size_t cap)
{
	size_t n = 0;
	const char *s = *p;

	for (; *s && *s != '"'; s++) {
		char c = *s;

		if (c == '\n')
			return false;
		if (c == '\\') {
			s++;
			if (*s == 'n')
				c = '\n';
			else if (*s == '\\' || *s == '"')
				c = *s;
			else
				return false;
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	if (*s != '"')
		return false;
	out[n] = '\0';
	*p = s + 1;
	return true;
}

static const char *wanted;
static bool found;

static void check_exposition(const char *text, size_t len)
{
	const char *line = text;
	char value[4096];

	if (!utf8_ok((const unsigned char *)text, len))
		abort();
	while (*line) {
		const char *end = strchr(line, '\n'), *p = line;

		if (!end)
			abort(); /* every line ends with a newline */
		if (*p == '#') {
			line = end + 1;
			continue;
		}
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		       *p == ':' || (p > line && *p >= '0' && *p <= '9'))
			p++;
		if (p == line)
			abort();
		if (*p == '{') {
			p++;
			while (*p != '}') {
				while (*p && *p != '=' && *p != '\n')
					p++;
				if (p[0] != '=' || p[1] != '"')
					abort();
				p += 2;
				if (!read_value(&p, value, sizeof(value)))
					abort();
				if (wanted && !strcmp(value, wanted))
					found = true;
				if (*p == ',')
					p++;
				else if (*p != '}')
					abort();
			}
			p++;
		}
		if (*p != ' ')
			abort();
		p++;
		{
			char *num_end;

			if (strncmp(p, "+Inf", 4) && strncmp(p, "-Inf", 4) && strncmp(p, "NaN", 3))
				(void)strtod(p, &num_end);
			else
				num_end = (char *)p + (p[0] == 'N' ? 3 : 4);
			if (num_end != end)
				abort();
		}
		line = end + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_family *fam[3] = {NULL};
	static const char *const label_names[] = {"a", "b"};
	static const double buckets[] = {0.1, 1, 10};
	char *help = fuzz_str(&in, 256), *first = NULL;
	char *text = NULL, buf[64];
	size_t len;
	double d;
	bool tried_first = false;

	if (!reg)
		abort();
	for (int i = 0; i < 3; i++) {
		struct metrics_family_opts o = {
		    .name = i == 0 ? "fz_total" : i == 1 ? "fz_gauge" : "fz_seconds",
		    .help = help,
		    .type = (enum metrics_type)i,
		    .label_names = label_names,
		    .n_labels = 2,
		    .buckets = buckets,
		    .n_buckets = i == 2 ? 3 : 0,
		    .max_series = 8,
		};

		if (metrics_family_register(reg, &o, &fam[i]))
			abort();
	}
	while (in.n > 2) {
		uint8_t op = fuzz_u8(&in);
		char *a = fuzz_str(&in, 200), *b = fuzz_str(&in, 200);
		const char *v[] = {a, b};
		double x = (double)(int16_t)fuzz_u16(&in) / 8;

		switch (op % 3) {
		case 0:
			metrics_add(fam[0], v, fabs(x));
			break;
		case 1:
			metrics_set(fam[1], v, x);
			break;
		case 2:
			metrics_observe(fam[2], v, x);
			break;
		}
		/* The very first label set is the first series, which is never folded. */
		if (!tried_first && utf8_ok((const unsigned char *)a, strlen(a)))
			first = strdup(a);
		tried_first = true;
		free(a);
		free(b);
	}
	if (prom_render(reg, &text, &len) == 0) {
		wanted = first;
		found = false;
		check_exposition(text, len);
		/* The first value added is in the first series, which is never folded. */
		if (first && !found)
			abort();
	}
	free(text);
	free(first);
	free(help);
	metrics_registry_free(reg);
	if (size >= 8) {
		memcpy(&d, data + size - 8, 8);
		prom_format_double(buf, sizeof(buf), d);
		if (isfinite(d) && strtod(buf, NULL) != d)
			abort();
	}
	return 0;
}

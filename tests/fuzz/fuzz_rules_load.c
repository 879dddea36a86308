// SPDX-License-Identifier: MIT
/*
 * The rules loader (src/rules, libyaml) on any text: it loads or reports, every diagnostic at a
 * position inside the text (line 0 only for the file as a whole), and a file that loads is then
 * evaluated on an exchange made of the rest of the input (path, query, headers, JSON bodies).
 */
#include <math.h>

#include "bizprobe/rules.h"
#include "fuzz_util.h"

struct diag_ctx {
	unsigned lines;
};

static void on_diag(const struct rules_diag *d, void *ctx)
{
	const struct diag_ctx *c = ctx;
	fuzz_sink += strlen(d->message) + strlen(d->file);
	if (d->line > c->lines + 1)
		abort();
}

static void on_event(const struct business_event *ev, void *ctx)
{

	(void)ctx;
	if (ev->n_labels > BIZ_EVENT_MAX_LABELS)
		abort();
	for (unsigned i = 0; i < ev->n_labels; i++)
		fuzz_sink += strlen(ev->labels[i].name) + strlen(ev->labels[i].value);
	if (ev->has_value && isnan(ev->value))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t text_len;
	const uint8_t *t = fuzz_bytes(&in, 16384, &text_len);
	char *text = malloc(text_len + 1);
	struct diag_ctx dc = {1};
	struct rules *r;

	if (!text)
		abort();
	memcpy(text, t, text_len);
	text[text_len] = '\0';
	/* libyaml breaks lines at \n, \r, and U+0085, U+2028, U+2029: a bound on its count. */
	for (size_t i = 0; i < text_len; i++)
		dc.lines += text[i] == '\n' || text[i] == '\r' || (unsigned char)text[i] == 0x85 ||
			    (unsigned char)text[i] == 0xa8 || (unsigned char)text[i] == 0xa9;
	r = rules_load_buffer("fuzz.yaml", text, text_len, NULL, on_diag, &dc);
	if (r) {
		struct rules_env env = {.pseudonymizer = NULL, .sink = {on_event, NULL}};
		struct http_exchange ex;
		char *path = fuzz_str(&in, 256), *query = fuzz_str(&in, 256);
		char *hv = fuzz_str(&in, 256), *body = fuzz_str(&in, 4096);
		char *rbody = fuzz_str(&in, 4096);

		memset(&ex, 0, sizeof(ex));
		ex.role = HTTP_ROLE_SERVER;
		strcpy(ex.method, fuzz_u8(&in) & 1 ? "GET" : "POST");
		ex.path = ex.target = path;
		ex.query = query;
		ex.host = "app.example";
		ex.status = 200 + fuzz_u8(&in) % 400;
		ex.req.headers[0].name = "Content-Type";
		ex.req.headers[0].value = "application/json";
		ex.req.headers[1].name = "X-User-Id";
		ex.req.headers[1].value = hv;
		ex.req.headers[2].name = "Cookie";
		ex.req.headers[2].value = hv;
		ex.req.n_headers = 3;
		ex.req.body = (const uint8_t *)body;
		ex.req.body_len = strlen(body);
		ex.resp.body = (const uint8_t *)rbody;
		ex.resp.body_len = strlen(rbody);
		rules_eval(r, &env, &ex, 1795842001250000000ull);
		rules_free(r);
		free(path);
		free(query);
		free(hv);
		free(body);
		free(rbody);
	}
	free(text);
	return 0;
}

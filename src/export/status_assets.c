// SPDX-License-Identifier: MIT
/*
 * The status page's HTML, CSS and JS (src/export/status_page/), built into the binary with the
 * assembler's .incbin: no generator step, no tool beyond the compiler, and the files stay
 * plain files one edits and lints as such. Paths are relative to the top of the tree, where make
 * runs the compiler; the Makefile makes this object depend on them.
 */
#include <stddef.h>
#include <string.h>

#include "bizprobe/status_page.h"

#define STATUS_ASSET_DIR "src/export/status_page/"

/* Each file between two symbols, NUL-terminated so that it can be read as a string too. */
#define INCBIN(sym, file)                                                                          \
	__asm__(".section .rodata\n"                                                               \
		".balign 16\n"                                                                     \
		".type " #sym ", @object\n" #sym ":\n"                                             \
		".incbin \"" STATUS_ASSET_DIR file "\"\n" #sym "_end:\n"                           \
		".byte 0\n"                                                                        \
		".previous\n");                                                                    \
	extern const char sym[], sym##_end[]

INCBIN(status_asset_index_html, "index.html");
INCBIN(status_asset_login_html, "login.html");
INCBIN(status_asset_css, "status.css");
INCBIN(status_asset_js, "status.js");

static struct status_asset assets[] = {
    {"/", "text/html; charset=utf-8", status_asset_index_html, 0},
    {"/login", "text/html; charset=utf-8", status_asset_login_html, 0},
    {"/status.css", "text/css; charset=utf-8", status_asset_css, 0},
    {"/status.js", "text/javascript; charset=utf-8", status_asset_js, 0},
};

/* The lengths are link-time differences the C initializers cannot hold; computed on first use
 * (idempotent, so a race between threads writes the same values). */
static struct status_asset *asset(unsigned i)
{
	static const char *const ends[] = {status_asset_index_html_end, status_asset_login_html_end,
					   status_asset_css_end, status_asset_js_end};

	if (!assets[i].len)
		assets[i].len = (size_t)(ends[i] - assets[i].data);
	return &assets[i];
}

const struct status_asset *status_asset_find(const char *path)
{
	for (unsigned i = 2; i < sizeof(assets) / sizeof(assets[0]); i++) {
		if (!strcmp(path, assets[i].path))
			return asset(i);
	}
	return NULL;
}

const struct status_asset *status_asset_dashboard(void)
{
	return asset(0);
}

const struct status_asset *status_asset_login(void)
{
	return asset(1);
}

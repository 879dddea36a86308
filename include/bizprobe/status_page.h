/* SPDX-License-Identifier: MIT */
/*
 * The live status page (src/export/status_page.c, status_assets.c), served by the metrics
 * endpoint at / for people without Grafana: the login that lets a browser in under
 * ADMIN_API_TOKEN, the JSON the page polls, and the page itself (HTML, CSS and JS built into the
 * binary: no CDN, works offline).
 *
 * A browser cannot send a bearer header, so the token is posted once in a form (never in a URL)
 * and exchanged for a session cookie: a random value drawn once per process, never the token.
 */
#ifndef BIZPROBE_STATUS_PAGE_H
#define BIZPROBE_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bizprobe/metrics.h"
#include "bizprobe/recent_events.h"

#define STATUS_COOKIE_NAME	      "bizprobe_session"
#define STATUS_SESSION_HEX_LEN	      64    /* 32 random bytes */
#define STATUS_SESSION_MAX_AGE_S      43200 /* the browser forgets the cookie after 12 h */
#define STATUS_LOGIN_BODY_MAX	      4096  /* bytes of a POST /login body; more is refused (413) */
#define STATUS_TOKEN_MAX	      1024  /* bytes of a decoded token field */
#define STATUS_COOKIE_HEADER_MAX      8192  /* a longer Cookie header is no session */
#define STATUS_LOGIN_FAILURES_PER_MIN 20    /* wrong tokens per minute before 429 for the rest */

struct status_auth;

/* NULL when token is NULL or empty (the page is off), or out of memory. Keeps the token's
 * SHA-256, not the token. */
struct status_auth *status_auth_new(const char *token);
void status_auth_free(struct status_auth *a);

enum status_login_result {
	STATUS_LOGIN_OK = 0,
	STATUS_LOGIN_REFUSED,	/* wrong token */
	STATUS_LOGIN_MALFORMED, /* no token field, or one longer than STATUS_TOKEN_MAX */
	STATUS_LOGIN_THROTTLED, /* too many wrong tokens this minute: not even compared */
};

/* A POST /login form body (application/x-www-form-urlencoded, field "token") of len bytes,
 * compared in constant time (SHA-256 of both sides). now: for the failure budget. */
enum status_login_result status_auth_login(struct status_auth *a, const char *body, size_t len,
					   time_t now);
/* The Cookie header carries this process's session value (constant-time comparison). */
bool status_auth_session_ok(const struct status_auth *a, const char *cookie_header);
/* The Set-Cookie value after a login: HttpOnly, SameSite=Strict, Path=/, Max-Age, Secure when
 * secure. Returns 0 or -ENOSPC. */
int status_auth_set_cookie(const struct status_auth *a, bool secure, char *out, size_t size);
/* The Set-Cookie value of a logout. */
const char *status_auth_clear_cookie(bool secure);

/* Counts of login outcomes, indexed by enum status_login_result. */
void status_auth_counts(const struct status_auth *a, uint64_t out[4]);

/* What GET /api/status reads. reg and recent must outlive the calls; admin may be NULL (no
 * state: no summary). */
struct status_sources {
	struct metrics_registry *reg;
	const char *ns; /* the business families' prefix; NULL: "direct_fan" */
	struct recent_events *recent;
	unsigned (*admin)(const char *range, char **json, void *ctx);
	void *admin_ctx;
};

/* The page's figures as a malloc'd JSON object (json-c): payments, revenue, MRR, users,
 * registrations, the admin summary, recent events, history, bizprobe's health. Figures whose
 * family does not exist are null. Returns 0 or -ENOMEM. */
int status_page_json(const struct status_sources *src, time_t now, char **out);

/* The built-in assets. */
struct status_asset {
	const char *path; /* as requested: "/status.css" */
	const char *content_type;
	const char *data;
	size_t len;
};

/* /status.css and /status.js (public: they hold no figure); NULL for another path. */
const struct status_asset *status_asset_find(const char *path);
/* The dashboard (after login) and the login form. */
const struct status_asset *status_asset_dashboard(void);
const struct status_asset *status_asset_login(void);
/* The login form with message (a fixed sentence, NULL for none) where the asset has its
 * <!--MESSAGE--> marker; malloc'd, NULL when out of memory. */
char *status_login_page(const char *message);

#endif

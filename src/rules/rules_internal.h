/* SPDX-License-Identifier: MIT */
/*
 * What the rules engine's files share (src/rules/): the loaded form of a rules file, the YAML
 * loader's helpers, the route index, value sources, labels and the per-exchange evaluation
 * context. Nothing here leaves src/rules/; the interface is bizprobe/rules.h.
 */
#ifndef BIZPROBE_RULES_INTERNAL_H
#define BIZPROBE_RULES_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "bizprobe/rules.h"

/*
 * Bounds. A rules file is written by a person, but it is still read by a privileged tracer, so
 * every list it declares is capped; exchange bytes are hostile, so every value read from them
 * has a fixed buffer.
 */
#define RULES_MAX_FILE_BYTES	 (1024 * 1024)
#define RULES_MAX_DEPTH		 64 /* nesting of YAML collections */
#define RULES_MAX_KEYS		 32 /* keys a schema mapping allows */
#define RULES_MAX_EVENTS	 1000
#define RULES_MAX_IDENTITY	 8
#define RULES_MAX_METHODS	 8    /* methods one event lists */
#define RULES_MAX_STATUS	 16   /* status codes and classes one event lists */
#define RULES_MAX_SEGMENTS	 32   /* path segments a route has; longer paths match no route */
#define RULES_MAX_JPATH		 16   /* steps of a JSON path */
#define RULES_MAX_VALUES	 1000 /* allow-list entries, and the largest max_values */
#define RULES_DEFAULT_MAX_VALUES 20
#define RULES_MAX_USER_KEYS	 16
/* Longest label value kept; a longer one becomes "other" (a long value is an id or a text, not
 * a category). */
#define RULES_MAX_LABEL_LEN 128
#define RULES_MAX_NAME	    128 /* event, metric and label names */
#define RULES_MAX_ARG	    256 /* a source's argument: header name, JSON path, const */
/* Bytes of one value read from an exchange; a longer one is unusable (an identity longer than
 * this is counted in identity_errors). */
#define RULES_MAX_READ 1024
/* Largest series count a rule metric asks the registry for (product of its labels' bounds). */
#define RULES_MAX_SERIES     4096
#define RULES_JWT_SECRET_MAX 4096

#define RULES_OTHER "other"
/* A word of an event's sentry key (component, feature, funnel). */
#define RULES_MAX_SENTRY_WORD 64

enum rules_src_kind {
	RULES_SRC_NONE = 0,
	RULES_SRC_PATH,
	RULES_SRC_QUERY,
	RULES_SRC_HEADER,
	RULES_SRC_RESPONSE_HEADER,
	RULES_SRC_COOKIE,
	RULES_SRC_REQUEST_JSON,
	RULES_SRC_RESPONSE_JSON,
	RULES_SRC_REQUEST_FORM,
	RULES_SRC_JWT_CLAIM,
	RULES_SRC_CONST,
	RULES_SRC_REQUEST_BYTES,
	RULES_SRC_RESPONSE_BYTES,
	RULES_SRC_DURATION,
	RULES_SRC_STATUS,
};

/* One step of a JSON path: a member name, which is also an array index when it is all digits. */
struct rules_jstep {
	const char *key;
	size_t key_len;
	long index; /* -1: not a number */
};

struct rules_source {
	enum rules_src_kind kind;
	char *arg;	/* header or cookie name, query or form key, JSON path as written, const */
	unsigned param; /* path: index of the {param}'s segment in the route */
	char *jbuf;	/* JSON path and jwt_claim: storage of the steps' keys */
	struct rules_jstep jpath[RULES_MAX_JPATH];
	unsigned n_jpath;
	unsigned line, col; /* of the source's key, for diagnostics */
};

/* A set of strings, open addressing: allow-lists and the first-N values of a label. */
struct rules_strset {
	char **slot;
	unsigned cap; /* a power of two, at least twice the most entries it takes */
	unsigned n;
	struct keyed_hash *kh; /* slots are found by a keyed hash of the string */
};

struct rules_label {
	char *name;
	struct rules_source src;
	struct rules_strset values; /* allow-list, when n_values */
	unsigned n_values;
	unsigned max_values; /* first-N bound when there is no allow-list */
	struct rules_strset seen;
};

struct rules_route {
	bool any; /* no route: every path */
	char *text;
	unsigned n_seg;
	char *seg[RULES_MAX_SEGMENTS]; /* literal, or the {param}'s name */
	uint32_t param_mask;	       /* bit i: segment i is a {param} */
	uint64_t hash;		       /* of the literal segments (rules_route_hash) */
};

struct rules_status_range {
	int lo, hi;
};

struct rules_event {
	char *name;
	unsigned line, col;
	enum http_role role;
	char *methods[RULES_MAX_METHODS];
	unsigned n_methods; /* 0: any method */
	struct rules_route route;
	char *host; /* NULL: any; "*.example.com": its subdomains */
	struct rules_status_range status[RULES_MAX_STATUS];
	unsigned n_status; /* 0: any status */
	struct rules_label labels[BIZ_EVENT_MAX_LABELS];
	unsigned n_labels;
	bool has_value;
	struct rules_source value;
	bool has_user;
	struct rules_source user;
	/* The metric: own_spec, another event's spec of the same name, or NULL. */
	const struct biz_metric_spec *metric;
	struct biz_metric_spec own_spec;
	char *metric_name;
	char *help;
	double *buckets;
	const char *label_names[BIZ_EVENT_MAX_LABELS];
	unsigned metric_line, metric_col;
	/* sentry: {component, feature, funnel}: the app's 5xx on this event's route is a failed
	 * business flow (BIZ_RULE_FAILURE). NULL words: not given. */
	bool has_sentry;
	char *sentry_component, *sentry_feature, *sentry_funnel;
};

/* The route index: per method (and one bucket for rules of any method), per segment count,
 * groups of rules that have {param}s at the same positions, sorted by the hash of their literal
 * segments. A path looks up one hash per group of its method and length. */
struct rules_index_entry {
	uint64_t hash;
	unsigned ev;
};

struct rules_index_group {
	uint32_t mask;
	struct rules_index_entry *ent;
	unsigned n;
};

struct rules_index_bucket {
	char method[16]; /* "" for the any-method bucket */
	struct rules_index_group *groups[RULES_MAX_SEGMENTS + 1];
	unsigned n_groups[RULES_MAX_SEGMENTS + 1];
	unsigned *anypath; /* rules without a route */
	unsigned n_anypath;
};

struct rules_index {
	struct rules_index_bucket *b;
	unsigned n;
};

struct rules_json;

struct rules {
	char *file;
	struct rules_event *events;
	unsigned n_events;
	struct rules_source identity[RULES_MAX_IDENTITY];
	unsigned n_identity;
	uint8_t *jwt_secret; /* NULL: JWTs are read, not verified */
	size_t jwt_secret_len;
	bool has_user_type;
	struct rules_label user_type;
	char *user_keys[RULES_MAX_USER_KEYS];
	unsigned n_user_keys;
	struct rules_index index;
	unsigned *matches; /* n_events entries: scratch of rules_eval */
	unsigned *failures; /* n_events entries: rules_eval's BIZ_RULE_FAILURE candidates */
	struct rules_json *req_json,
	    *resp_json; /* token buffers reused from one exchange to the next */
	struct rules_stats stats;
};

/*
 * Loading (rules_yaml.c, rules_load.c).
 */
struct rules_diag_buf {
	unsigned seq;
	unsigned line, col;
	bool warning;
	char *message;
};

/* Diagnostics kept before they are reported: a file's problems come out in file order. */
#define RULES_MAX_DIAGS 200

struct rules_loader {
	const char *file;
	struct rules_diag_buf diags[RULES_MAX_DIAGS];
	unsigned n_diags;
	unsigned dropped;     /* diagnostics past RULES_MAX_DIAGS */
	const char *base_dir; /* of the file: relative jwt_secret_file paths start there */
	rules_diag_fn diag;
	void *ctx;
	yaml_document_t doc;
	unsigned errors;
	struct rules *r;
};

void rules_diag_at(struct rules_loader *l, const yaml_node_t *n, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rules_diag_pos(struct rules_loader *l, unsigned line, unsigned col, bool warning,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Reports the kept diagnostics sorted by position, then forgets them. */
void rules_diag_flush(struct rules_loader *l);
yaml_node_t *rules_yaml_node(struct rules_loader *l, int id);
/* The scalar's text, or NULL when n is not a scalar. */
const char *rules_yaml_scalar(const yaml_node_t *n);
bool rules_yaml_is_null(const yaml_node_t *n);
/* Reports keys of mapping m not in allowed (NULL-terminated) and repeated keys; returns the
 * number of errors reported. */
int rules_yaml_check_keys(struct rules_loader *l, const yaml_node_t *m, const char *what,
			  const char *const *allowed);
/* The value of key in mapping m, and the key node itself in *key_node; NULL when absent. */
yaml_node_t *rules_yaml_get(struct rules_loader *l, const yaml_node_t *m, const char *key,
			    yaml_node_t **key_node);
/* A non-null scalar without NUL bytes of at most max bytes, copied; 0 or -EINVAL (reported). */
int rules_yaml_string(struct rules_loader *l, const yaml_node_t *n, const char *what, size_t max,
		      char **out);
/* A plain integer scalar in [min, max]; 0 or -EINVAL (reported). */
int rules_yaml_long(struct rules_loader *l, const yaml_node_t *n, const char *what, long min,
		    long max, long *out);
/* A finite number; 0 or -EINVAL (not reported: the caller names what was expected). */
int rules_yaml_double(const yaml_node_t *n, double *out);
int rules_load_document(struct rules_loader *l, const char *text, size_t len);
/* The schema of the loaded document; ns: the metric namespace ("" for none). */
int rules_load_top(struct rules_loader *l, const char *ns);

/*
 * Value sources (rules_source.c).
 */
const char *rules_source_name(enum rules_src_kind k);
enum rules_src_kind rules_source_kind(const char *name);
#define RULES_KIND(k)	(1u << (k))
#define RULES_KINDS_ALL (~0u & ~RULES_KIND(RULES_SRC_NONE))
#define RULES_KINDS_IDENTITY                                                                       \
	(RULES_KIND(RULES_SRC_JWT_CLAIM) | RULES_KIND(RULES_SRC_HEADER) |                          \
	 RULES_KIND(RULES_SRC_COOKIE))
/* Parses a source given as a mapping {SOURCE: arg, extra keys...} or, for the sources without
 * an argument, a bare word (duration). kinds: the sources allowed here (RULES_KIND bits);
 * extra: further keys the caller reads (values, max_values), NULL-terminated. Returns 0 or
 * -EINVAL (reported). */
int rules_source_parse(struct rules_loader *l, const yaml_node_t *n, const char *what,
		       uint32_t kinds, const char *const *extra, struct rules_source *out);
void rules_source_free(struct rules_source *s);
/* Same kind and argument (header names compare case-insensitively). */
bool rules_source_same(const struct rules_source *a, const struct rules_source *b);
/* The source reads a field named like an e-mail address. */
bool rules_source_mail_like(const struct rules_source *s);

/*
 * Labels (rules_label.c).
 */
int rules_strset_init(struct rules_strset *s, unsigned max_entries);
void rules_strset_free(struct rules_strset *s);
/* The stored copy of str, or NULL. */
const char *rules_strset_find(const struct rules_strset *s, const char *str);
/* Adds a copy of str (when not present); returns the stored copy, NULL on -ENOMEM. */
const char *rules_strset_add(struct rules_strset *s, const char *str);
/* A label's mapping {SOURCE: arg, values: [...] | max_values: N}; what names it in messages. */
int rules_label_parse(struct rules_loader *l, const yaml_node_t *n, const char *what,
		      uint32_t kinds, struct rules_label *out);
void rules_label_free(struct rules_label *lb);
/* The bounded value of a label given what its source read: "" when absent, the allow-listed or
 * first-N copy, or "other". Points to storage of the label or to a constant. */
const char *rules_label_bound(struct rules_label *lb, const char *val, size_t len, bool present);

/*
 * Routes (rules_route.c) and their index (rules_index.c).
 */
/* A request path cut into segments: no leading slash, one trailing slash ignored. */
struct rules_path {
	bool routable; /* starts with '/' and has at most RULES_MAX_SEGMENTS segments */
	unsigned n;
	const char *seg[RULES_MAX_SEGMENTS];
	size_t len[RULES_MAX_SEGMENTS];
};

/* Parses a template; on error returns -EINVAL with a reason in *why. */
int rules_route_parse(const char *text, struct rules_route *out, const char **why);
void rules_route_free(struct rules_route *rt);
/* Index of the {param} called name, or -1. */
int rules_route_param(const struct rules_route *rt, const char *name);
void rules_path_split(const char *path, struct rules_path *out);
bool rules_route_match(const struct rules_route *rt, const struct rules_path *p);
/* The hash of the segments whose mask bit is clear; the same for a route and a path it matches. */
uint64_t rules_path_hash(const struct rules_path *p, uint32_t mask);
uint64_t rules_route_hash(const struct rules_route *rt);

int rules_index_build(struct rules *r);
void rules_index_free(struct rules_index *ix);
/* Events whose method and route match (other conditions are the caller's), in no particular
 * order; returns how many were written to out (room for r->n_events). */
unsigned rules_index_lookup(const struct rules *r, const char *method, const struct rules_path *p,
			    unsigned *out);

/*
 * Bodies as JSON (rules_json.c): tokens over the exchange's own bytes, nothing copied.
 */
struct rules_json *rules_json_new(void);
void rules_json_free(struct rules_json *j);
/* Tokenizes text[0..len): one object or array. 0, -EINVAL (not that), -ENOMEM. */
int rules_json_parse(struct rules_json *j, const char *text, size_t len);
/* The scalar at path, written as text: strings decoded, numbers as written, true/false. Returns
 * its length, -ENOENT (absent, null, an object or array) or -ENOSPC. */
int rules_json_get(const struct rules_json *j, const struct rules_jstep *path, unsigned n,
		   char *out, size_t size);
/* Splits a dotted path with optional [i] indexes (items.0.id, items[0].id) into steps that point
 * into buf (a copy of text the source owns). Returns the step count or -EINVAL. */
int rules_jpath_parse(const char *text, char **buf, struct rules_jstep *steps, unsigned max);

/*
 * Evaluation (rules_eval.c, rules_identity.c).
 */
enum rules_read_status {
	RULES_READ_ABSENT = 0,
	RULES_READ_OK,
	RULES_READ_TOO_LONG,
	RULES_READ_BODY_ERROR, /* already counted in body_errors */
};

/* State of one body for one exchange: parsed at most once, and only when a field is read. */
enum rules_body_state {
	RULES_BODY_UNTRIED = 0,
	RULES_BODY_OK,
	RULES_BODY_BAD,
};

struct rules_ctx {
	struct rules *r;
	const struct rules_env *env;
	const struct http_exchange *ex;
	uint64_t wall_ns;
	struct rules_path path;
	const struct rules_event *ev; /* the event being evaluated: its route names path params */
	enum rules_body_state req_body, resp_body, req_form;
	int jwt_state; /* 0 untried, 1 decoded, -1 absent or unusable */
	struct json_doc *jwt;
	int requester_state; /* 0 untried, 1 known, -1 none */
	char requester[PSEUDONYM_LEN];
	int user_type_state; /* 0 untried, 1 read */
	const char *user_type;
	int opted_out; /* -1 untried, else 0 or 1 */
};

/* Reads a source into out (NUL-terminated); *len is its length on RULES_READ_OK. */
enum rules_read_status rules_source_read(struct rules_ctx *c, const struct rules_source *s,
					 char *out, size_t size, size_t *len);
/* The JWT of the request's Authorization: Bearer header, decoded once per exchange. */
const struct json_doc *rules_ctx_jwt(struct rules_ctx *c);
/* Who the event is about, pseudonymized into out; NULL when nobody is tracked. */
const char *rules_identity_user(struct rules_ctx *c, const struct rules_event *ev,
				char out[PSEUDONYM_LEN]);
const char *rules_identity_user_type(struct rules_ctx *c);
void rules_ctx_release(struct rules_ctx *c);

#endif

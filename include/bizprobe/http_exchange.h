/* SPDX-License-Identifier: MIT */
/*
 * Output of the HTTP stage (src/http/), input of the semantics stage (src/semantics/) and of the
 * live `trace` view: one complete HTTP/1.1 request/response exchange of a traced process.
 */
#ifndef BIZPROBE_HTTP_EXCHANGE_H
#define BIZPROBE_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/capture.h"

/* Headers kept per message; more are counted (headers_truncated) and skipped. */
#define HTTP_MAX_HEADERS 64

enum http_role {
	HTTP_ROLE_CLIENT = 0, /* the traced process sent the request */
	HTTP_ROLE_SERVER = 1, /* the traced process received the request */
};

struct http_header {
	const char *name; /* as sent; compare case-insensitively */
	const char *value;
};

struct http_message {
	struct http_header headers[HTTP_MAX_HEADERS]; /* only the first n_headers are set */
	unsigned n_headers;
	bool headers_truncated;	 /* more headers than HTTP_MAX_HEADERS, or header bytes over cap */
	const uint8_t *body;	 /* decoded body (de-chunked, inflated), NUL-terminated, <= body_cap */
	size_t body_len;	 /* bytes at body */
	uint64_t wire_body_bytes; /* body bytes after de-chunking, before inflating, never capped */
	bool body_truncated;	 /* body (or its inflated form) exceeded the cap, or bytes were lost */
	bool body_skipped;	 /* not kept: no consumer reads it (http_body_filter_cb); body_len 0 */
	uint64_t first_ts_ns;	 /* first byte seen */
	uint64_t last_ts_ns;	 /* last byte seen */
};

struct http_exchange {
	struct conn_ref conn;
	enum http_role role;
	char method[16];
	const char *target; /* request-target as sent, query included */
	const char *path;   /* target without query string or fragment */
	const char *query;  /* after '?', "" when absent */
	const char *host;   /* Host header, "" when absent */
	int status;	    /* final (non-1xx) status code */
	struct http_message req;
	struct http_message resp;
	uint64_t duration_ns; /* request's first byte to response's last */
	bool truncated;	      /* any part of either message was truncated or lost */
};

/* Case-insensitive header lookup; NULL when absent. */
const char *http_message_header(const struct http_message *msg, const char *name);

/*
 * Whether anyone will read an exchange's bodies. Storing and inflating a body the consumers do
 * not read (a page, an asset, an API no rule covers) was most of the stage's cost for such
 * exchanges. Asked at most once per exchange, when the first of its bodies that is compressed,
 * of unknown length or longer than HTTP_BODY_KEPT_UNASKED bytes begins (smaller ones cost less
 * to keep than to ask about). head is the exchange so far: conn, role, method, target, path,
 * query, host and the request's headers; its bodies are empty, status 0 and its response has no
 * headers. false: that body and, if still to come, the other one are only counted
 * (wire_body_bytes) and delivered with body_skipped set. Runs inside http_tracker_feed, with the
 * same restrictions as http_exchange_cb.
 */
typedef bool (*http_body_filter_cb)(const struct http_exchange *head, void *ctx);
#define HTTP_BODY_KEPT_UNASKED 2048

/* A field left 0 takes its default (max_conns 4096, max_pipelined 16, memory_limit 64 MiB). */
struct http_tracker_config {
	size_t body_cap;      /* bytes of body kept per message (default 64 KiB) */
	size_t header_cap;    /* bytes of start line + headers kept per message (default 16 KiB) */
	unsigned max_conns;   /* connections tracked at once; the oldest idle one is evicted */
	unsigned max_pipelined; /* requests awaiting a response per connection */
	/* Bytes the stage may hold for all connections together: connection state, message
	 * buffers, headers, bodies and inflate state. Over it, the least recently fed connections
	 * give up their idle buffers, then are evicted (their exchanges in flight are dropped and
	 * counted); what still does not fit is refused and its message truncated. */
	size_t memory_limit;
	http_body_filter_cb body_filter; /* NULL: every body is kept */
	void *body_filter_ctx;
};

/* Why exchanges in flight were dropped (struct http_tracker_stats.dropped). */
enum http_drop_cause {
	HTTP_DROP_MEMORY = 0,	/* their connection was evicted to stay within memory_limit */
	HTTP_DROP_CONN_LIMIT,	/* ... evicted because max_conns connections were tracked */
	HTTP_DROP_PIPELINE,	/* more than max_pipelined requests waited for their responses */
	HTTP_DROP_PARSE_ERROR,	/* the connection's bytes stopped being HTTP/1.x (or a gap) */
	HTTP_DROP_OUT_OF_MEMORY, /* an allocation failed (malloc, not the budget) */
	HTTP_DROP__COUNT,
};

struct http_tracker_stats {
	uint64_t exchanges;	 /* exchanges delivered */
	uint64_t exchanges_client;
	uint64_t exchanges_server;
	uint64_t parse_errors;	 /* streams abandoned because the bytes were not HTTP/1.x */
	uint64_t truncated;	 /* exchanges delivered with truncated = true */
	uint64_t incomplete;	 /* messages cut off by close or eviction */
	uint64_t evicted;	 /* connections dropped because max_conns was reached */
	uint64_t unmatched;	 /* responses without a request (attached mid-exchange) */
	uint64_t dropped[HTTP_DROP__COUNT]; /* exchanges in flight dropped, by cause */
	uint64_t evicted_memory;	    /* connections evicted to stay within memory_limit */
	uint64_t memory_trimmed;	    /* idle connections whose buffers were freed for it */
	uint64_t memory_refused;	    /* allocations refused by the budget: message truncated */
	uint64_t alloc_failed;		    /* allocations that failed (out of memory) */
	uint64_t bodies_skipped;	    /* non-empty bodies only counted: no consumer reads them */
	/* Gauges, not counters. */
	uint64_t memory_bytes;		    /* bytes charged to the budget now */
	uint64_t memory_peak_bytes;	    /* most ever charged at once */
	uint64_t memory_limit_bytes;	    /* the budget */
	uint64_t connections;		    /* connections tracked now */
};

/* Called once per completed exchange; the exchange and everything it points to is valid only
 * during the call. It runs inside http_tracker_feed/close/forget_pid and must not call any
 * http_tracker_* function on the same tracker. */
typedef void (*http_exchange_cb)(const struct http_exchange *ex, void *ctx);

struct http_tracker;

/* The smallest memory_limit that holds one exchange at cfg's caps (defaults for fields left
 * 0), whatever memory_limit cfg itself says. */
size_t http_tracker_min_memory(const struct http_tracker_config *cfg);

/* 0, or -EINVAL with a sentence for the user in err: a cap too large for the memory limit. */
int http_tracker_config_check(const struct http_tracker_config *cfg, char *err, size_t err_len);

/* cfg may be NULL for defaults. Returns NULL on allocation failure, or (errno EINVAL) when cfg
 * fails http_tracker_config_check. */
struct http_tracker *http_tracker_new(const struct http_tracker_config *cfg, http_exchange_cb cb,
				      void *ctx);
void http_tracker_free(struct http_tracker *t);

/* Feeds one chunk of one connection's stream, in order. Returns 0 or a negative errno; an
 * -ENOMEM is also counted (stats.alloc_failed, and dropped[HTTP_DROP_OUT_OF_MEMORY] for an
 * exchange lost to it), so a caller that ignores it loses nothing silently. */
int http_tracker_feed(struct http_tracker *t, const struct capture_chunk *chunk);

/* The connection ended: messages delimited by end of stream complete, others count incomplete. */
void http_tracker_close(struct http_tracker *t, const struct conn_ref *conn, uint64_t ts_ns);

/* A process exited: forget all its connections (as if each were closed). */
void http_tracker_forget_pid(struct http_tracker *t, uint32_t pid);

void http_tracker_get_stats(const struct http_tracker *t, struct http_tracker_stats *out);

#endif

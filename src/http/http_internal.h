/* SPDX-License-Identifier: MIT */
/*
 * Private types of the HTTP stage (src/http/). Nothing outside src/http/ includes this.
 *
 * Shape: one struct http_conn per (pid, id, generation, tls), found through a hash table and
 * ordered on an LRU list (conn_table.c). Each conn has one llhttp parser per direction
 * (parser.c); requests waiting for their response sit in a FIFO of reusable message buffers;
 * responses are parsed into one of two response buffers (the second holds a response that
 * finished before its request did, e.g. an early 413). Message storage (headers, bodies,
 * inflate state) lives in struct http_msgbuf (message.c, body.c) and is reused between
 * messages, grown at most to the configured caps.
 */
#ifndef BIZPROBE_HTTP_INTERNAL_H
#define BIZPROBE_HTTP_INTERNAL_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "bizprobe/http_exchange.h"

#define HTTP_DEFAULT_BODY_CAP	   (64u * 1024u)
#define HTTP_DEFAULT_HEADER_CAP	   (16u * 1024u)
#define HTTP_DEFAULT_MAX_CONNS	   4096u
#define HTTP_DEFAULT_MAX_PIPELINED 16u
#define HTTP_DEFAULT_MEMORY_LIMIT  (64u << 20)

/* What zlib allocates for one inflate stream, as counted by our allocator: its state (about
 * 7 KiB in zlib 1.2.13) and a 32 KiB window, each with our size header. An upper bound, used
 * only to check that a configuration can hold one exchange. */
#define HTTP_INFLATE_STATE_BYTES (48u * 1024u)

/* Bytes kept from the start of a direction while deciding whether it starts a message:
 * enough for the longest method ("UNSUBSCRIBE ") and for "HTTP/1.". */
#define HTTP_STASH_BYTES 16u

enum http_decode_state {
	HTTP_DECODE_NONE = 0, /* identity (or an encoding we do not decode): bytes kept as sent */
	HTTP_DECODE_RUNNING,  /* inflating */
	HTTP_DECODE_DONE,     /* zlib reported the end of the stream */
	HTTP_DECODE_STOPPED,  /* cap reached, bytes lost or stream corrupt: no more inflating */
	HTTP_DECODE_SKIPPED,  /* no consumer reads this body: its bytes are only counted */
};

/* The body filter's answer for an exchange, kept on its request (http_body_filter_cb). */
enum http_body_want {
	HTTP_BODIES_UNASKED = 0,
	HTTP_BODIES_WANTED,
	HTTP_BODIES_UNWANTED,
};

struct http_tracker;

/* Storage for one message, reused from one message to the next on the same connection. */
struct http_msgbuf {
	struct http_tracker *t; /* whose memory budget the buffers below are charged to */
	/* Request-target (requests only) then "name\0value\0" per header, all NUL-terminated. */
	char *hdr;
	uint32_t hdr_len;
	uint32_t hdr_alloc;
	uint32_t url_len;
	uint32_t cur_start; /* offset of the header being received, for rollback at the cap */
	uint32_t name_off[HTTP_MAX_HEADERS];
	uint32_t value_off[HTTP_MAX_HEADERS];
	unsigned n_headers;
	bool url_done;
	bool have_cur;	/* a header is being received */
	bool cur_value; /* ... and its value has started */
	bool dropping;	/* ... but it did not fit: its bytes are skipped */
	bool headers_done;
	bool headers_truncated;

	uint8_t *body; /* body_cap + 1 bytes at most, for the NUL */
	size_t body_len;
	size_t body_alloc;
	uint64_t wire_body_bytes;
	bool body_truncated;

	enum http_decode_state decode;
	bool z_ready; /* inflateInit2 done: z is reset, not re-initialized, for the next message */
	bool z_raw;   /* fell back to raw deflate */
	z_stream z;
	uint8_t z_head[HTTP_STASH_BYTES]; /* first wire bytes, replayed for the raw fallback */

	uint64_t first_ts_ns;
	uint64_t last_ts_ns;
	int status;
	unsigned method; /* llhttp_method_t, requests only */
	bool method_set;
	enum http_body_want bodies; /* requests only: the exchange's */
	bool complete;
};

enum http_sync {
	HTTP_SYNC_NONE = 0, /* waiting for a chunk that starts a message */
	HTTP_SYNC_OK,	    /* bytes go to the parser */
};

struct http_conn;

/* What one message's start line and headers may take on the wire before it is a parse error
 * (libhttp-parser's limit, which this stage used before llhttp; llhttp itself has none). Storage
 * stays within header_cap regardless: this ends a message whose headers never end, padding
 * included (llhttp skips the blanks before a value without reporting them). */
#define HTTP_HEADER_LIMIT (80u * 1024u)

struct http_dir {
	llhttp_t parser;
	struct http_conn *conn;
	enum http_sync sync;
	bool is_request;
	bool msg_active; /* the parser is inside a message */
	bool orphan;	 /* the response being parsed has no request to match */
	bool in_gap;	 /* bytes being fed are placeholders for lost bytes */
	bool at_eof;	 /* execute(len 0) from close */
	bool in_headers; /* between a message's begin and its headers' end */
	struct http_msgbuf *req_msg; /* requests: the one being received (the queue's tail) */
	/* This message's start line and headers so far: what the parser reported, and every byte of
	 * a chunk that began and ended inside them. */
	uint32_t header_bytes;
	uint32_t messages_begun; /* tells run_parser a chunk stayed within one message */
	uint64_t cur_ts_ns;
	uint8_t stash[HTTP_STASH_BYTES];
	uint8_t stash_len;
	uint64_t stash_ts_ns;
};

struct http_tracker;

struct http_conn {
	struct conn_ref ref;
	struct http_tracker *t;
	struct http_conn *lru_prev; /* towards most recently used */
	struct http_conn *lru_next; /* towards least recently used */

	bool role_known;
	bool strict_sync; /* after a parse error: resync only on a real start line */
	bool ever_parsed; /* some message parsed completely: the role is trustworthy */
	bool upgraded;	  /* 101 or CONNECT tunnel: the rest is not HTTP/1.x */
	enum bp_dir req_dir;
	struct http_dir dir[2]; /* indexed by enum bp_dir */

	/* Requests awaiting their response, oldest first: a ring of buffers from req_bufs, which
	 * are allocated on first need (most connections never pipeline, so they use one). */
	struct http_msgbuf **req_bufs;
	unsigned n_req_bufs;
	struct http_msgbuf **queue;
	struct http_msgbuf *
	    *free_bufs; /* a stack, so a non-pipelined conn reuses one warm buffer */
	unsigned q_head;
	unsigned q_count;
	unsigned n_free;

	struct http_msgbuf resp[2];
	unsigned cur_resp;
	/* enum http_drop_cause of the next http_conn_reset: a parse error unless the budget or
	 * malloc refused the buffer a message needed. */
	unsigned reset_cause;
	bool parked; /* resp[cur_resp ^ 1] is the finished response of the (unfinished) head */
};

struct http_conn_table {
	struct http_conn **slots;
	size_t mask;
	size_t count;
	struct http_conn *lru_first; /* most recently used */
	struct http_conn *lru_last;  /* least recently used */
};

/*
 * The memory budget (cfg.memory_limit): every byte the stage allocates for a connection (its
 * struct and queue, message buffers, header and body storage, zlib's state) is charged to
 * mem_used before it is allocated. A charge that would go over the limit first reclaims, oldest
 * (least recently fed) connection first: idle buffers of connections with nothing in flight
 * (lossless), then whole connections, whose exchanges in flight are dropped and counted. The
 * connection being fed is never reclaimed; what still does not fit is refused, and the message
 * that needed it is truncated (counted too).
 */
struct http_tracker {
	struct http_tracker_config cfg;
	http_exchange_cb cb;
	void *ctx;
	struct http_tracker_stats stats;
	struct http_conn_table conns;
	llhttp_settings_t settings;
	char *split_buf; /* path and query of the exchange being delivered */
	size_t split_cap;
	size_t mem_used;
	struct http_conn *feeding; /* the connection http_tracker_feed is working on */
	bool reclaiming;	   /* inside a reclaim: charges may not reclaim again */
	bool idle_hint;		   /* a message ended since reclaim last found too little idle */
};

/* tracker.c: the budget. Charges n bytes (reclaiming if needed); false when they do not fit. */
bool http_mem_charge(struct http_tracker *t, size_t n);
void http_mem_uncharge(struct http_tracker *t, size_t n);
/* realloc of a buffer of old bytes to new bytes (new > old), charged. NULL: refused or out of
 * memory (counted), p untouched. */
void *http_mem_grow(struct http_tracker *t, void *p, size_t old, size_t new_size);
void http_mem_free(struct http_tracker *t, void *p, size_t size);
/* zlib's allocator pair (opaque is the tracker), charged the same way. */
void *http_mem_zalloc(void *opaque, unsigned items, unsigned size);
void http_mem_zfree(void *opaque, void *p);

/* conn_table.c */
int http_conn_table_init(struct http_conn_table *tbl, unsigned max_conns);
void http_conn_table_destroy(struct http_conn_table *tbl);
struct http_conn *http_conn_table_find(struct http_conn_table *tbl, const struct conn_ref *ref);
int http_conn_table_insert(struct http_conn_table *tbl, struct http_conn *c);
void http_conn_table_remove(struct http_conn_table *tbl, struct http_conn *c);
void http_conn_table_touch(struct http_conn_table *tbl, struct http_conn *c);

/* message.c */
void http_msgbuf_reset(struct http_msgbuf *m);
/* Frees the buffers (not m itself), uncharging them; m stays usable (empty). */
void http_msgbuf_free(struct http_msgbuf *m);
void http_msgbuf_url(struct http_msgbuf *m, const char *at, size_t len, size_t cap);
void http_msgbuf_header_field(struct http_msgbuf *m, const char *at, size_t len, size_t cap);
void http_msgbuf_header_value(struct http_msgbuf *m, const char *at, size_t len, size_t cap);
void http_msgbuf_headers_done(struct http_msgbuf *m, size_t cap);
const char *http_msgbuf_url_str(const struct http_msgbuf *m);
/* Fills the public view of m; body and header pointers point into m. */
void http_msgbuf_view(struct http_msgbuf *m, struct http_message *out);

/* body.c */
void http_body_begin(struct http_msgbuf *m);
void http_body_feed(struct http_msgbuf *m, const uint8_t *data, size_t len, size_t cap);
void http_body_gap(struct http_msgbuf *m, uint64_t len);
void http_body_end(struct http_msgbuf *m);
/* After http_body_begin, for a body nobody reads: its bytes are only counted from now on. */
void http_body_skip(struct http_msgbuf *m);

/* parser.c */
void http_dir_settings_fill(llhttp_settings_t *s);
void http_dir_feed(struct http_conn *c, enum bp_dir dir, const uint8_t *data, size_t len,
		   uint64_t ts_ns);
void http_dir_gap(struct http_conn *c, enum bp_dir dir, uint64_t lost);
void http_dir_eof(struct http_conn *c, enum bp_dir dir);

/* tracker.c: the exchange queue, called from the parser callbacks */
struct http_msgbuf *http_conn_req_begin(struct http_conn *c);
struct http_msgbuf *http_conn_req_head(const struct http_conn *c);
void http_conn_req_complete(struct http_conn *c);
bool http_conn_resp_has_target(const struct http_conn *c);
void http_conn_resp_complete(struct http_conn *c);
void http_conn_reset(struct http_conn *c);

/* exchange.c */
void http_exchange_deliver(struct http_tracker *t, struct http_conn *c, struct http_msgbuf *req,
			   struct http_msgbuf *resp, bool cut_off);
/* The body filter's answer for req's exchange, asked once and kept on req (true without a
 * filter). */
bool http_exchange_bodies_wanted(struct http_tracker *t, struct http_conn *c,
				 struct http_msgbuf *req);

#endif

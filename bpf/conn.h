/* SPDX-License-Identifier: MIT */
/* Connection identity and the in-kernel protocol sniff: only HTTP/1.x connections cost a copy. */
#ifndef BIZPROBE_BPF_CONN_H
#define BIZPROBE_BPF_CONN_H

#include "maps.h"

#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000

/* Connections whose start we saw (accept/connect) get one verdict from their first bytes.
 * Connections first seen mid-stream (attached to a running process, every TLS session) may begin
 * inside a body, so they get several chances to show a request or status line. */
#define SNIFFS_FROM_START 1
#define SNIFFS_MID_STREAM 8

enum sniff_result {
	SNIFF_HTTP,
	SNIFF_OTHER,
};

static __always_inline __u8 *target_byte(__u32 tgid)
{
	__u32 entry = tgid / BP_TARGETS_PER_ENTRY;
	struct targets_entry *e = bpf_map_lookup_elem(&targets, &entry);

	return e ? &e->traced[tgid % BP_TARGETS_PER_ENTRY] : NULL;
}

/* 0, or how the target's plaintext sockets are seen (enum bp_target_hooks). */
static __always_inline __u8 target_hooks(__u32 tgid)
{
	__u8 *traced = target_byte(tgid);

	return traced ? *traced : 0;
}

static __always_inline bool is_target(__u32 tgid)
{
	return target_hooks(tgid) != 0;
}

/* A pid beyond the map (pid_max raised after load) stays untraced. */
static __always_inline void set_target(__u32 tgid, __u8 traced)
{
	__u8 *b = target_byte(tgid);

	if (b)
		*b = traced;
}

static __always_inline struct conn_state *conn_new(struct conn_key *key, __u8 role_hint,
						   __u8 sniffs, __u8 state)
{
	struct conn_state cs = {
		.generation = bpf_ktime_get_ns(),
		.state = state,
		.role_hint = role_hint,
		.sniffs_left = sniffs,
	};

	if (bpf_map_update_elem(&conns, key, &cs, BPF_ANY)) {
		stat_inc(BP_STAT_CONN_MAP_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, key);
}

/* True when fd of the current task is a SOCK_STREAM socket. Read once per fd, at first sight. */
static __always_inline bool fd_is_stream_socket(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	unsigned int max_fds;
	umode_t mode;
	short type;

	if (!fdt)
		return false;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max_fds)
		return false;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return false;
	sock = BPF_CORE_READ(file, private_data);
	type = BPF_CORE_READ(sock, type);
	return type == SOCK_STREAM;
}

/* The socket's state, creating it on first sight of an fd opened before we attached. */
static __always_inline struct conn_state *sock_conn(__u32 tgid, __u32 fd)
{
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET, .id = fd};
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);

	if (cs)
		return cs;
	if (!fd_is_stream_socket(fd))
		return conn_new(&key, BP_HINT_UNKNOWN, 0, CONN_NOT_SOCKET);
	return conn_new(&key, BP_HINT_UNKNOWN, SNIFFS_MID_STREAM, CONN_SNIFFING);
}

static __always_inline struct conn_state *tls_conn(__u32 tgid, __u64 ssl)
{
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_TLS, .id = ssl};
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &key);

	if (cs)
		return cs;
	return conn_new(&key, BP_HINT_UNKNOWN, SNIFFS_MID_STREAM, CONN_SNIFFING);
}

static __always_inline bool word_is(const char *b, const char *w)
{
	return b[0] == w[0] && b[1] == w[1] && b[2] == w[2] && b[3] == w[3];
}

static __always_inline enum sniff_result sniff_bytes(const char b[8])
{
	/* Request methods of RFC 9110 and PATCH, by their first four bytes, and a status line. */
	if (word_is(b, "GET ") || word_is(b, "POST") || word_is(b, "PUT ") || word_is(b, "HEAD") ||
	    word_is(b, "DELE") || word_is(b, "PATC") || word_is(b, "OPTI") || word_is(b, "CONN") ||
	    word_is(b, "TRAC"))
		return SNIFF_HTTP;
	if (word_is(b, "HTTP") && b[4] == '/' && b[5] == '1' && b[6] == '.')
		return SNIFF_HTTP;
	return SNIFF_OTHER;
}

/* Decides, from the first bytes of a chunk, whether a sniffing connection is HTTP. Returns true
 * when the chunk should be copied. */
static __always_inline bool conn_admit(struct conn_state *cs, const void *ubuf, __u64 len)
{
	char b[8] = {};

	if (cs->state == CONN_HTTP)
		return true;
	if (cs->state != CONN_SNIFFING)
		return false;
	if (len >= 8)
		bpf_probe_read_user(b, 8, ubuf);
	else if (len >= 4)
		bpf_probe_read_user(b, 4, ubuf);
	if (len >= 4 && sniff_bytes(b) == SNIFF_HTTP) {
		cs->state = CONN_HTTP;
		stat_inc(BP_STAT_CONN_HTTP, 1);
		return true;
	}
	if (cs->sniffs_left > 1) {
		cs->sniffs_left--;
		return false;
	}
	cs->state = CONN_IGNORED;
	stat_inc(BP_STAT_CONN_IGNORED, 1);
	return false;
}

#endif

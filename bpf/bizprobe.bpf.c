// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * bizprobe's kernel side: copies the plaintext of selected processes' HTTP/1.x connections into
 * a ring buffer. TLS plaintext comes from uprobes on OpenSSL; plaintext sockets from syscall
 * tracepoints. Uprobes, tracepoints and raw tracepoints only: no kprobes, no fentry.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bizprobe/capture_event.h"
#include "calls.h"
#include "conn.h"
#include "emit.h"
#include "maps.h"

#define PROT_EXEC_ 0x4

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* ---- shared by both sources: emitting a completed call ---- */

/* Points the cursor at a call's bytes; afterwards base/left describe the first buffer, which the
 * sniff looks at. */
static __always_inline void cursor_init(struct span_cursor *c, struct call_args *a, __u64 len)
{
	struct user_msghdr msg = {};
	struct iovec iov = {};

	c->base = 0;
	c->left = 0;
	c->iov = 0;
	c->iovs_left = 0;
	c->total = len;
	c->budget = max_copy_bytes;
	switch (a->kind) {
	case CALL_MSG:
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->buf))
			return;
		c->iov = (__u64)msg.msg_iov;
		c->iovs_left = msg.msg_iovlen;
		break;
	case CALL_IOV:
		c->iov = a->buf;
		c->iovs_left = a->extra;
		break;
	default:
		c->base = a->buf;
		c->left = len;
		return;
	}
	if (c->iovs_left == 0 || bpf_probe_read_user(&iov, sizeof(iov), (void *)c->iov))
		return;
	c->iov += sizeof(iov);
	c->iovs_left--;
	c->base = (__u64)iov.iov_base;
	c->left = iov.iov_len < len ? iov.iov_len : len;
}

static __always_inline void emit_call(__u32 tgid, struct call_args *a, struct conn_state *cs,
				      __u64 len, __u8 dir, __u8 source)
{
	struct conn_key key = {.tgid = tgid, .source = source, .id = a->conn_id};
	struct scratch_record *rec;
	struct span_cursor *c;

	if (a->kind == CALL_BUF && is_small_call(len)) {
		if (conn_admit(cs, (const void *)a->buf, len))
			emit_small(&key, cs, a->buf, len, dir);
		return;
	}
	rec = scratch_get();
	if (!rec) {
		/* No scratch for this CPU (the loader sizes it to every possible CPU): the call's
		 * bytes are lost, and said to be. */
		stat_inc(BP_STAT_DISCARDED, 1);
		if (cs->state == CONN_HTTP)
			cs->lost_pending[dir & 1] = sat_add_u64(cs->lost_pending[dir & 1], len);
		return;
	}
	c = &rec->cur;
	c->key = key;
	c->dir = dir;
	cursor_init(c, a, len);
	if (!conn_admit(cs, (const void *)c->base, c->left))
		return;
	c->generation = cs->generation;
	c->role_hint = cs->role_hint;
	c->lost_before = cs->lost_pending[dir & 1];
	emit_cursor(rec);
}

/* ---- plaintext sockets: syscall tracepoints ---- */

static __always_inline int sock_call_enter(__u64 fd, __u64 buf, __u64 extra, __u32 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct call_args a = {.conn_id = fd, .buf = buf, .extra = extra, .kind = kind};
	struct conn_state *cs;

	if (empty_probes || !is_target(tgid))
		return 0;
	/* A connection that is (or may prove to be) HTTP: the arguments wait for the return, when
	 * the byte count is known. */
	cs = sock_conn(tgid, (__u32)fd);
	if (cs && cs->state <= CONN_HTTP)
		call_stash(SLOT_SOCK, pid_tgid, &a);
	return 0;
}

static __always_inline int sock_call_exit(long ret, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct call_args a;
	struct conn_state *cs;
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET};

	/* is_target first: an array load, where call_take is a helper call that every read and
	 * write of every other process on the host would pay. */
	if (empty_probes || !is_target(tgid) || !call_take(SLOT_SOCK, pid_tgid, &a))
		return 0;
	key.id = a.conn_id;
	cs = bpf_map_lookup_elem(&conns, &key);
	if (cs && ret > 0)
		emit_call(tgid, &a, cs, (__u64)ret, dir, BP_SRC_SOCKET);
	return 0;
}

#define SOCK_ENTER(name, kind, extra_arg)                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int tp_enter_##name(struct trace_event_raw_sys_enter *ctx)                                 \
	{                                                                                          \
		return sock_call_enter(ctx->args[0], ctx->args[1], extra_arg, kind);               \
	}

#define SOCK_EXIT(name, dir)                                                                       \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int tp_exit_##name(struct trace_event_raw_sys_exit *ctx)                                   \
	{                                                                                          \
		return sock_call_exit(ctx->ret, dir);                                              \
	}

SOCK_ENTER(read, CALL_BUF, 0)
SOCK_EXIT(read, BP_DIR_INGRESS)
SOCK_ENTER(recvfrom, CALL_BUF, 0)
SOCK_EXIT(recvfrom, BP_DIR_INGRESS)
SOCK_ENTER(readv, CALL_IOV, ctx->args[2])
SOCK_EXIT(readv, BP_DIR_INGRESS)
SOCK_ENTER(recvmsg, CALL_MSG, 0)
SOCK_EXIT(recvmsg, BP_DIR_INGRESS)
SOCK_ENTER(write, CALL_BUF, 0)
SOCK_EXIT(write, BP_DIR_EGRESS)
SOCK_ENTER(sendto, CALL_BUF, 0)
SOCK_EXIT(sendto, BP_DIR_EGRESS)
SOCK_ENTER(writev, CALL_IOV, ctx->args[2])
SOCK_EXIT(writev, BP_DIR_EGRESS)
SOCK_ENTER(sendmsg, CALL_MSG, 0)
SOCK_EXIT(sendmsg, BP_DIR_EGRESS)

/* A new connection: a fresh generation, and a single sniff on its first bytes. */
static __always_inline int sock_opened(long fd, __u8 hint)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET, .id = (__u64)fd};

	if (empty_probes || fd < 0 || !is_target(tgid))
		return 0;
	conn_new(&key, hint, SNIFFS_FROM_START, CONN_SNIFFING);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return sock_opened(ctx->ret, BP_HINT_ACCEPTED);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return sock_opened(ctx->ret, BP_HINT_ACCEPTED);
}

/* At entry: a non-blocking connect returns -EINPROGRESS and the fd is in use from here on. */
SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	return sock_opened((long)ctx->args[0], BP_HINT_CONNECTED);
}

SEC("tracepoint/syscalls/sys_enter_close")
int tp_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET, .id = ctx->args[0]};

	if (empty_probes || !is_target(tgid))
		return 0;
	conn_end(&key);
	return 0;
}

/* ---- TLS plaintext: OpenSSL uprobes ---- */

/*
 * Every SSL call is captured at its return, with the byte count it reports: a call that fails
 * with SSL_ERROR_WANT_READ/WRITE must be repeated with the same bytes, and Node.js does exactly
 * that with the first request of a connection while the handshake is in flight. Capturing
 * SSL_write at entry would report that request several times.
 */
static __always_inline int ssl_call_entry(__u64 ssl, __u64 buf, __u64 count_ptr, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct call_args a = {
		.conn_id = ssl, .buf = buf, .extra = count_ptr, .kind = CALL_BUF, .dir = dir};

	if (empty_probes || !is_target(tgid))
		return 0;
	/* The connection is looked up at return, once there are bytes: most SSL_read calls of a
	 * server return WANT_READ, and a stash is cheaper than a lookup. */
	call_stash(SLOT_SSL, pid_tgid, &a);
	return 0;
}

/* ret > 0 is the byte count (SSL_read, SSL_write); for the _ex forms ret == 1 and the count is
 * in the size_t the caller passed (*readbytes, *written). */
static __always_inline int ssl_call_return(long ret, bool ex)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct call_args a;
	struct conn_state *cs;
	__u64 len = 0;

	if (empty_probes || !is_target(tgid) || !call_take(SLOT_SSL, pid_tgid, &a))
		return 0;
	if (ret > 0) {
		if (!ex)
			len = ret;
		else if (bpf_probe_read_user(&len, sizeof(len), (void *)a.extra))
			len = 0;
	}
	if (len == 0)
		return 0;
	cs = tls_conn(tgid, a.conn_id);
	if (cs)
		emit_call(tgid, &a, cs, len, a.dir, BP_SRC_TLS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(up_ssl_write, void *ssl, const void *buf, int num)
{
	return ssl_call_entry((__u64)ssl, (__u64)buf, 0, BP_DIR_EGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_ssl_write, int ret)
{
	return ssl_call_return(ret, false);
}

SEC("uprobe")
int BPF_KPROBE(up_ssl_write_ex, void *ssl, const void *buf, size_t num, size_t *written)
{
	return ssl_call_entry((__u64)ssl, (__u64)buf, (__u64)written, BP_DIR_EGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_ssl_write_ex, int ret)
{
	return ssl_call_return(ret, true);
}

SEC("uprobe")
int BPF_KPROBE(up_ssl_read, void *ssl, void *buf, int num)
{
	return ssl_call_entry((__u64)ssl, (__u64)buf, 0, BP_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_ssl_read, int ret)
{
	return ssl_call_return(ret, false);
}

SEC("uprobe")
int BPF_KPROBE(up_ssl_read_ex, void *ssl, void *buf, size_t num, size_t *readbytes)
{
	return ssl_call_entry((__u64)ssl, (__u64)buf, (__u64)readbytes, BP_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_ssl_read_ex, int ret)
{
	return ssl_call_return(ret, true);
}

SEC("uprobe")
int BPF_KPROBE(up_ssl_free, void *ssl)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_TLS, .id = (__u64)ssl};

	if (empty_probes || !is_target(tgid))
		return 0;
	conn_end(&key);
	return 0;
}

/* ---- process lifecycle ---- */

/* A new program image: traced at once when it is one of the selected executables, so that a
 * process started after bizprobe loses none of its first connections. */
SEC("tracepoint/sched/sched_process_exec")
int tp_sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exe_key key = {};
	struct inode *inode;
	__u32 *flags;

	if (empty_probes)
		return 0;
	inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!inode)
		return 0;
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	flags = bpf_map_lookup_elem(&target_exes, &key);
	if (!flags) {
		/* A traced process that became another program stays traced. Other programs are
		 * reported too: on overlay filesystems (containers, our VMs) the inode the kernel
		 * sees is not the one stat() shows userspace, so userspace must match them. */
		emit_meta(BP_EV_EXEC, tgid, 0, 0, 0);
		return 0;
	}
	if (*flags & EXE_TRACE)
		set_target(tgid, 1);
	emit_meta(BP_EV_EXEC, tgid, 0, 0, 0);
	return 0;
}

/* Children forked by a traced process (pre-fork servers, cluster workers) are traced too. */
SEC("raw_tracepoint/sched_process_fork")
int rtp_sched_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);

	if (empty_probes || cpid != ctgid || ptgid == ctgid || !is_target(ptgid))
		return 0;
	set_target(ctgid, 1);
	emit_meta(BP_EV_EXEC, ctgid, 0, 0, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_sched_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if (empty_probes || (__u32)pid_tgid != tgid || !is_target(tgid))
		return 0;
	set_target(tgid, 0);
	emit_meta(BP_EV_EXIT, tgid, 0, 0, 0);
	return 0;
}

/* An executable mapping of a file: maybe libssl loaded late (Python imports ssl on demand). */
SEC("tracepoint/syscalls/sys_enter_mmap")
int tp_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long fd = (long)ctx->args[4];

	if (empty_probes || !(ctx->args[2] & PROT_EXEC_) || fd < 0 || !is_target(tgid))
		return 0;
	emit_meta(BP_EV_MMAP, tgid, 0, 0, 0);
	return 0;
}

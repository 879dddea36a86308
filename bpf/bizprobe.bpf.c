// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * bizprobe's kernel side: copies the plaintext of selected processes' HTTP/1.x connections into
 * a ring buffer. TLS plaintext comes from uprobes on OpenSSL; plaintext sockets from uprobes in
 * the process's C library or from the raw syscall tracepoints, chosen per process. Uprobes, tracepoints and raw tracepoints only: no kprobes, no fentry.
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

/* ---- plaintext sockets: one raw tracepoint on each side of every syscall ---- */

/*
 * Why raw_syscalls and not a syscalls/sys_enter_<name> tracepoint per call: those run through
 * the perf tracepoint path (a per-event buffer filled with the arguments) before the program
 * sees that the caller is not traced, and every read and write of every process on the host
 * paid that (2.3x on a `dd bs=1`, bench/RESULTS.md). A raw tracepoint hands the program the
 * registers directly; a process that is not traced costs one array load, and the registers are
 * read only for targets. x86-64 syscall numbers: the targets are 64-bit processes (a 32-bit
 * process's numbers differ, and bizprobe ignores them by checking the numbers it knows).
 */
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_mmap 9
#define NR_readv 19
#define NR_writev 20
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_accept4 288

/* The syscalls below 64 that a hook looks at, as a bit mask: the first test, before any helper. */
#define NR_ENTER_MASK                                                                              \
	((1ULL << NR_read) | (1ULL << NR_write) | (1ULL << NR_close) | (1ULL << NR_mmap) |          \
	 (1ULL << NR_readv) | (1ULL << NR_writev) | (1ULL << NR_connect) | (1ULL << NR_sendto) |    \
	 (1ULL << NR_recvfrom) | (1ULL << NR_sendmsg) | (1ULL << NR_recvmsg))

/* A read or write of a target: if its connection is (or may prove to be) HTTP, the arguments
 * wait for the return, when the byte count is known. */
static __always_inline int sock_call_enter(__u64 pid_tgid, __u64 fd, __u64 buf, __u64 extra,
					   __u32 kind)
{
	struct call_args a = {.conn_id = fd, .buf = buf, .extra = extra, .kind = kind};
	struct conn_state *cs = sock_conn(pid_tgid >> 32, (__u32)fd);

	if (cs && cs->state <= CONN_HTTP)
		call_stash(SLOT_SOCK, pid_tgid, &a);
	return 0;
}

static __always_inline int sock_call_exit(__u64 pid_tgid, long ret, __u8 dir)
{
	__u32 tgid = pid_tgid >> 32;
	struct call_args a;
	struct conn_state *cs;
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET};

	if (!call_take(SLOT_SOCK, pid_tgid, &a))
		return 0;
	key.id = a.conn_id;
	cs = bpf_map_lookup_elem(&conns, &key);
	if (cs && ret > 0)
		emit_call(tgid, &a, cs, (__u64)ret, dir, BP_SRC_SOCKET);
	return 0;
}

/* A new connection of a target: a fresh generation, and a single sniff on its first bytes. */
static __always_inline int sock_opened(__u32 tgid, long fd, __u8 hint)
{
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET, .id = (__u64)fd};

	if (fd < 0)
		return 0;
	conn_new(&key, hint, SNIFFS_FROM_START, CONN_SNIFFING);
	return 0;
}

static __always_inline int sock_closed(__u32 tgid, __u64 fd)
{
	struct conn_key key = {.tgid = tgid, .source = BP_SRC_SOCKET, .id = fd};

	conn_end(&key);
	return 0;
}

/* An executable mapping of a file: maybe libssl loaded late (Python imports ssl on demand). */
static __always_inline int mmap_seen(__u32 tgid, __u64 prot, long fd)
{
	if ((prot & PROT_EXEC_) && fd >= 0)
		emit_meta(BP_EV_MMAP, tgid, 0, 0, 0);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int rtp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = (long)ctx->args[1];
	__u64 pid_tgid, fd, buf, extra = 0;
	__u32 kind = CALL_BUF;

	if (empty_probes || nr < 0 || nr >= 64 || !((NR_ENTER_MASK >> nr) & 1))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	if (target_hooks(pid_tgid >> 32) != BP_TARGET_SYSCALLS)
		return 0;
	fd = BPF_CORE_READ(regs, di);
	switch (nr) {
	case NR_close:
		return sock_closed(pid_tgid >> 32, fd);
	/* At entry: a non-blocking connect returns -EINPROGRESS and the fd is in use from here on. */
	case NR_connect:
		return sock_opened(pid_tgid >> 32, (long)fd, BP_HINT_CONNECTED);
	case NR_mmap:
		return mmap_seen(pid_tgid >> 32, BPF_CORE_READ(regs, dx), (long)BPF_CORE_READ(regs, r8));
	case NR_readv:
	case NR_writev:
		kind = CALL_IOV;
		extra = BPF_CORE_READ(regs, dx);
		break;
	case NR_recvmsg:
	case NR_sendmsg:
		kind = CALL_MSG;
		break;
	default: /* read, write, recvfrom, sendto */
		break;
	}
	buf = BPF_CORE_READ(regs, si);
	return sock_call_enter(pid_tgid, fd, buf, extra, kind);
}

/* The return: the syscall's number is read from the registers only for targets. */
SEC("raw_tracepoint/sys_exit")
int rtp_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long ret = (long)ctx->args[1];
	__u64 pid_tgid;
	long nr;

	if (empty_probes)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	if (target_hooks(pid_tgid >> 32) != BP_TARGET_SYSCALLS)
		return 0;
	nr = (long)BPF_CORE_READ(regs, orig_ax);
	switch (nr) {
	case NR_read:
	case NR_readv:
	case NR_recvfrom:
	case NR_recvmsg:
		return sock_call_exit(pid_tgid, ret, BP_DIR_INGRESS);
	case NR_write:
	case NR_writev:
	case NR_sendto:
	case NR_sendmsg:
		return sock_call_exit(pid_tgid, ret, BP_DIR_EGRESS);
	case NR_accept:
	case NR_accept4:
		return sock_opened(pid_tgid >> 32, ret, BP_HINT_ACCEPTED);
	default:
		return 0;
	}
}

/*
 * ---- plaintext sockets, the other way: uprobes on the C library's wrappers ----
 *
 * A process whose byte is BP_TARGET_LIBC (what `--socket-hooks auto`, the default, chooses for a
 * --pid or node-mode process that makes its socket calls through libc) is seen through these,
 * planted in its own libc: no other process on the host pays anything, where a syscall
 * tracepoint makes every process's syscalls take the slow path. The traced process pays a trap
 * per call instead, and calls that bypass libc (a static binary, raw syscall(2)) are not seen.
 * The raw tracepoints are attached only while a BP_TARGET_SYSCALLS process is traced. The same
 * stash and emit as the tracepoints.
 */
/* Only its own byte: a process is seen by one set of hooks, never twice (one that exec'd an
 * --exe program keeps its libc uprobes and has become a BP_TARGET_SYSCALLS process). */
static __always_inline bool libc_hooked(__u32 tgid)
{
	return target_hooks(tgid) == BP_TARGET_LIBC;
}

static __always_inline int libc_call_enter(__u64 fd, __u64 buf, __u64 extra, __u32 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (empty_probes || !libc_hooked(pid_tgid >> 32))
		return 0;
	return sock_call_enter(pid_tgid, fd, buf, extra, kind);
}

static __always_inline int libc_call_return(long ret, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (empty_probes || !libc_hooked(pid_tgid >> 32))
		return 0;
	return sock_call_exit(pid_tgid, ret, dir);
}

/* read, recv, recvfrom, write, send, sendto */
SEC("uprobe")
int BPF_KPROBE(up_libc_buf, int fd, void *buf)
{
	return libc_call_enter((__u64)fd, (__u64)buf, 0, CALL_BUF);
}

/* readv, writev */
SEC("uprobe")
int BPF_KPROBE(up_libc_iov, int fd, void *iov, int iovcnt)
{
	return libc_call_enter((__u64)fd, (__u64)iov, (__u64)iovcnt, CALL_IOV);
}

/* recvmsg, sendmsg */
SEC("uprobe")
int BPF_KPROBE(up_libc_msg, int fd, void *msg)
{
	return libc_call_enter((__u64)fd, (__u64)msg, 0, CALL_MSG);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_libc_in, long ret)
{
	return libc_call_return(ret, BP_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(urp_libc_out, long ret)
{
	return libc_call_return(ret, BP_DIR_EGRESS);
}

/* accept, accept4 */
SEC("uretprobe")
int BPF_KRETPROBE(urp_libc_accept, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (empty_probes || !libc_hooked(tgid))
		return 0;
	return sock_opened(tgid, ret, BP_HINT_ACCEPTED);
}

SEC("uprobe")
int BPF_KPROBE(up_libc_connect, int fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (empty_probes || !libc_hooked(tgid))
		return 0;
	return sock_opened(tgid, fd, BP_HINT_CONNECTED);
}

SEC("uprobe")
int BPF_KPROBE(up_libc_close, int fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (empty_probes || !libc_hooked(tgid))
		return 0;
	return sock_closed(tgid, (__u64)(long)fd);
}

/* What the mmap tracepoint tells in the other mode: a library loaded late (Python's ssl). */
SEC("uretprobe")
int BPF_KRETPROBE(urp_libc_dlopen, void *handle)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (empty_probes || !handle || !libc_hooked(tgid))
		return 0;
	emit_meta(BP_EV_MMAP, tgid, 0, 0, 0);
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
		set_target(tgid, BP_TARGET_SYSCALLS);
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
	__u8 hooks = target_hooks(ptgid);

	if (empty_probes || cpid != ctgid || ptgid == ctgid || !hooks)
		return 0;
	/* A child of a libc-hooked parent waits for its own uprobes (see add_newborn). */
	set_target(ctgid, hooks);
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

/* SPDX-License-Identifier: MIT */
/*
 * Records the BPF programs (bpf/bizprobe.bpf.c) write into the ring buffer, and the settings and
 * statistics they share with the loader (src/capture/). This header is the single definition of
 * both sides' view: it is compiled by clang -target bpf against vmlinux.h and by the userspace
 * compiler against <linux/types.h>. Keep every struct free of implicit padding.
 */
#ifndef BIZPROBE_CAPTURE_EVENT_H
#define BIZPROBE_CAPTURE_EVENT_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define BP_COMM_LEN 16

/* One ring-buffer record carries at most this many payload bytes; a larger read or write is
 * split into several records, up to max_copy_bytes (a load-time setting) per call. 16 KiB is
 * the TLS record size, so one SSL_read is one record in practice. Must be a power of two. */
#define BP_CHUNK_BYTES 16384u

/* Hard ceiling for max_copy_bytes: the kernel loop emits at most this many chunks per call. */
#define BP_MAX_CHUNKS_PER_CALL 16u

/* The targets map holds one byte per pid, this many to an entry (one cache line): userspace
 * maps it and flips single bytes, as the BPF programs do, so neither overwrites the other's. */
#define BP_TARGETS_PER_ENTRY 64u

/* A traced process's byte says which hooks see its plaintext sockets; userspace chooses per
 * process, and a forked child inherits its parent's. The OpenSSL and lifecycle programs take
 * either. */
enum bp_target_hooks {
	BP_TARGET_SYSCALLS = 1, /* the raw syscall tracepoints (attached while such a target lives) */
	BP_TARGET_LIBC = 2,	/* uprobes planted in the process's own C library */
};

enum bp_event_kind {
	BP_EV_DATA = 1,	 /* payload bytes the process read or wrote */
	BP_EV_CLOSE = 2, /* the connection ended (close(2), SSL_free) */
	BP_EV_EXEC = 3,	 /* a process to consider started (sched_process_exec) */
	BP_EV_EXIT = 4,	 /* a traced process exited */
	BP_EV_MMAP = 5,	 /* a traced process mapped an executable file: maybe a new libssl */
};

enum bp_dir {
	BP_DIR_EGRESS = 0,  /* the process wrote these bytes */
	BP_DIR_INGRESS = 1, /* the process read these bytes */
};

enum bp_conn_source {
	BP_SRC_SOCKET = 0, /* plaintext socket: conn_id is the fd */
	BP_SRC_TLS = 1,	   /* OpenSSL session: conn_id is the SSL* */
};

/* Role as far as the kernel can tell from connection setup; userspace decides from the bytes. */
enum bp_role_hint {
	BP_HINT_UNKNOWN = 0,
	BP_HINT_ACCEPTED = 1,  /* accept()ed: we are the server */
	BP_HINT_CONNECTED = 2, /* connect()ed: we are the client */
};

/* What bpf/procs.bpf.c's task iterator writes per process, in pid order: a hash of its
 * program's inode, its name and its set of cgroups, which changes when any of them does. */
struct bp_proc_signature {
	__u32 pid;
	__u32 pad;
	__u64 signature;
};

/* Twin: struct capture_chunk in include/bizprobe/capture.h is what userspace makes of it. */
struct bp_event {
	__u64 ts_ns;	  /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u64 conn_id;	  /* fd or SSL* */
	__u64 generation; /* distinguishes reuse of the same fd/SSL* within a process */
	__u32 tgid;
	__u32 tid;
	__u32 kind;	  /* enum bp_event_kind */
	__u32 len;	  /* bytes the call moved in this chunk's span (>= copied) */
	__u32 copied;	  /* payload bytes that follow this header */
	__u8 dir;	  /* enum bp_dir */
	__u8 source;	  /* enum bp_conn_source */
	__u8 role_hint;	  /* enum bp_role_hint */
	__u8 pad0;
	/* Bytes of this stream lost just before this record (ring full, read fault). 64-bit: a
	 * connection whose records keep failing can lose more than 4 GiB before one gets through. */
	__u64 lost_before;
	char comm[BP_COMM_LEN];
	/* payload follows: copied bytes */
};
_Static_assert(sizeof(struct bp_event) == 72, "bp_event layout is shared with BPF; keep it packed");

/* Key of the per-CPU statistics array (BPF map "stats"); exported as bizprobe_capture_* metrics. */
enum bp_stat {
	BP_STAT_RINGBUF_FULL = 0, /* a record could not be reserved: bytes lost */
	BP_STAT_CONN_MAP_FULL,	  /* a connection could not be tracked */
	BP_STAT_ARGS_MAP_FULL,	  /* a syscall/uprobe entry could not stash its arguments */
	BP_STAT_TRUNCATED,	  /* a call moved more than max_copy_bytes: tail not copied */
	BP_STAT_READ_FAILED,	  /* bpf_probe_read_user failed (page not present) */
	BP_STAT_CONN_HTTP,	  /* connections sniffed as HTTP */
	BP_STAT_CONN_IGNORED,	  /* connections sniffed as something else: no further cost */
	BP_STAT_EVENTS,		  /* records written */
	/* A record dropped by a guard the verifier needs but that should never fire (a size out of
	 * its class, no per-CPU scratch): its bytes are reported lost as a gap. */
	BP_STAT_DISCARDED,
	BP_STAT__COUNT,
};

#endif

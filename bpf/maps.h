/* SPDX-License-Identifier: MIT */
/* Maps shared by every bizprobe program. Each size is a default the loader may override before
 * load (bpf_map__set_max_entries); the comment says what one entry costs. */
#ifndef BIZPROBE_BPF_MAPS_H
#define BIZPROBE_BPF_MAPS_H

#include "bizprobe/capture_event.h"

#define MAX_TARGETS 4194304  /* possible pids: one byte each (the loader sets it from pid_max) */
#define MAX_TARGET_EXES 256  /* executables whose new processes are traced: 16 B key + 4 B */
#define MAX_CONNS 65536	     /* fds and SSL* of traced processes: 16 B key + 32 B value */
#define MAX_INFLIGHT 16384   /* threads inside a traced read/write call: 8 B key + 32 B value */
#define RINGBUF_BYTES (8u << 20) /* records in flight to userspace; power of two */

/*
 * One byte per pid: an enum bp_target_hooks for the processes the loader selected, 0 for every
 * other. An array rather
 * than a hash: every read and write syscall on the host asks it, and the verifier turns an array
 * lookup into an address computation where a hash costs a jhash and a bucket walk (the largest
 * item of the syscall programs in the profile). Bytes are packed BP_TARGETS_PER_ENTRY to an
 * entry because the kernel rounds every array value up to 8 bytes; mmapable so that userspace
 * sets a byte without rewriting its neighbours.
 */
struct targets_entry {
	__u8 traced[BP_TARGETS_PER_ENTRY];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_TARGETS / BP_TARGETS_PER_ENTRY);
	__type(key, __u32);
	__type(value, struct targets_entry);
} targets SEC(".maps");

/* Executable identity as the kernel sees it (s_dev in kernel encoding, i_ino). */
struct exe_key {
	__u64 dev;
	__u64 ino;
};

enum exe_flags {
	EXE_TRACE = 1,	/* trace new processes of this executable at exec, before they run */
	EXE_NOTIFY = 2, /* only tell userspace (a --pid target's restart candidate) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGET_EXES);
	__type(key, struct exe_key);
	__type(value, __u32);
} target_exes SEC(".maps");

enum conn_kind_state {
	CONN_SNIFFING = 0,   /* no verdict yet on what the connection carries */
	CONN_HTTP = 1,	     /* HTTP/1.x: every byte goes to userspace */
	CONN_IGNORED = 2,    /* TLS records, other protocols: nothing more is copied */
	CONN_NOT_SOCKET = 3, /* a file or pipe fd: remembered so the check runs once */
};

struct conn_key {
	__u32 tgid;
	__u32 source; /* enum bp_conn_source */
	__u64 id;     /* fd or SSL* */
};

struct conn_state {
	__u64 generation;
	/* Per enum bp_dir: bytes lost since that direction's last record. 64-bit, added to with
	 * saturation: a 32-bit count wrapped after 4 GiB of losses and reported a small gap. */
	__u64 lost_pending[2];
	__u8 state;	       /* enum conn_kind_state */
	__u8 role_hint;	    /* enum bp_role_hint */
	__u8 sniffs_left;   /* chunks that may still prove the connection is HTTP */
	__u8 pad[5];
};

/* LRU: connections whose end we never see (process killed between calls) age out instead of
 * filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

enum call_kind {
	CALL_BUF = 0, /* (buf, len) */
	CALL_IOV = 1, /* (struct iovec *, iovcnt) */
	CALL_MSG = 2, /* (struct user_msghdr *) */
};

/* Arguments stashed at entry, consumed at return. */
struct call_args {
	__u64 conn_id;
	__u64 buf;	/* buffer, iovec array or msghdr */
	__u64 extra;	/* iovcnt, or SSL_read_ex's size_t *readbytes */
	__u32 kind;	/* enum call_kind */
	__u8 dir;	/* enum bp_dir (SSL calls; syscalls know theirs at exit) */
	__u8 live;	/* thread storage: stashed and not yet consumed */
	__u8 pad[2];
};

/* Syscalls and SSL calls get separate slots: SSL_read calls read(2) on the same thread. */
enum call_slot {
	SLOT_SOCK = 0,
	SLOT_SSL = 1,
};

/*
 * Where a thread's calls wait for their return. On kernels whose tracing programs have task
 * storage (5.11+), in the thread itself: a lookup is a pointer load from the task, with no
 * hashing, bucket lock or element allocation on the two hottest probes, and the storage dies
 * with the thread. Only creating it can fail (a counted args_map_full); finding it cannot.
 * Elsewhere (5.10) the loader turns this map into an unused 1-entry hash and the programs use
 * the pid_tgid-keyed hashes below.
 */
struct thread_calls {
	struct call_args slot[2]; /* enum call_slot */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_calls);
} thread_calls SEC(".maps");

/* The loader shrinks these to one unused entry where thread storage is used. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call_args);
} sock_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct call_args);
} ssl_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BP_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Where the bytes of one call are: a single buffer, or an iovec array walked one entry at a time;
 * and the record being filled from them. */
struct span_cursor {
	__u64 base;	 /* current buffer */
	__u64 left;	 /* bytes left in the current buffer */
	__u64 iov;	 /* next struct iovec to read */
	__u64 iovs_left; /* iovecs not yet read */
	__u64 total;	 /* bytes the call moved that are not yet emitted */
	struct conn_key key;
	__u32 budget;	  /* bytes this call may still copy */
	__u32 dir;	  /* enum bp_dir */
	__u32 filled;	  /* payload bytes in the record being built */
	__u32 lost_after; /* bytes lost after them (a fault, the copy cap) */
	/* The connection's state, copied at the call's start so that records need no lookup. */
	__u64 generation;
	__u64 lost_before; /* this direction's lost_pending: bytes lost before the next record */
	__u32 role_hint;
	__u32 pad;
};

/*
 * A record is assembled here before bpf_ringbuf_output: reserving a maximal record per call would
 * waste the ring on small reads, and reserve needs a constant size. Small iovecs (a chunked
 * response's size lines) are packed into one record. data is twice BP_CHUNK_BYTES so that the
 * verifier can prove any copy of at most BP_CHUNK_BYTES at an offset below BP_CHUNK_BYTES fits.
 */
struct scratch_record {
	struct span_cursor cur;
	struct bp_event ev;
	__u8 data[2 * BP_CHUNK_BYTES];
};

/* One entry per possible CPU (the loader sets max_entries), indexed by the current CPU: an array
 * rather than a per-CPU array because per-CPU values are limited to 32 KiB. ~32.8 KiB per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_record);
} scratch SEC(".maps");

/* a + b, stuck at the maximum rather than wrapping to a small number. */
static __always_inline __u64 sat_add_u64(__u64 a, __u64 b)
{
	return a + b < a ? ~0ull : a + b;
}

static __always_inline void stat_inc(__u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

#endif

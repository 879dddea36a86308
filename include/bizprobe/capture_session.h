/* SPDX-License-Identifier: MIT */
/*
 * The capture stage's driver (src/capture/): loads and attaches the BPF programs, selects the
 * processes to trace, and turns ring-buffer records into ordered capture_chunk calls.
 */
#ifndef BIZPROBE_CAPTURE_SESSION_H
#define BIZPROBE_CAPTURE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/capture.h"

#define CAPTURE_MAX_PIDS 64
#define CAPTURE_MAX_EXES 16

/* How plaintext sockets are seen (--socket-hooks; see bizprobe.bpf.c). */
enum capture_socket_hooks {
	/* Per process: libc for one that passes tls_libc_hooks_fit when it is first traced (not
	 * --exe's), syscalls for the others, attached only while such a process is traced. */
	SOCKET_HOOKS_AUTO,
	/* The raw syscall tracepoints: every socket call, libc or not, paid for by every process
	 * on the host at each of its syscalls. */
	SOCKET_HOOKS_SYSCALLS,
	/* Uprobes in the traced processes' own C library (not with --exe): other processes pay
	 * nothing; calls that bypass libc are not seen. */
	SOCKET_HOOKS_LIBC,
};

struct capture_config {
	uint32_t pids[CAPTURE_MAX_PIDS]; /* --pid, repeatable */
	size_t n_pids;
	const char *exes[CAPTURE_MAX_EXES]; /* --exe: every process running that file */
	size_t n_exes;
	uint32_t max_copy_bytes; /* per read/write call; 0 = default (256 KiB) */
	uint32_t ringbuf_bytes;	 /* 0 = default (4 MiB); rounded down to a power of two */
	uint32_t child_delay_ms; /* --pid: a child is attached once it has lived this long; 0 =
				  * default (100 ms) */
	/* Node mode (run --node): besides --pid and --exe, every process select() accepts, asked
	 * at the process's exec and, on the capture thread, at a look once a second at the
	 * processes that are new or changed program, name or cgroups since the last one. */
	bool (*select)(uint32_t pid, void *ctx);
	/* What else select() reads (the pod list) changed when this returns another value: every
	 * process is asked again at the next look. May be NULL. */
	uint64_t (*select_epoch)(void *ctx);
	/* Then, for a process select() chose, once its files are attached (its OpenSSL calls are
	 * seen from here on; select() is too early to say so). May be NULL. */
	void (*selected)(uint32_t pid, void *ctx);
	void *select_ctx;
	bool empty_probes;	 /* benchmark floor: attach everything, do nothing */
	enum capture_socket_hooks socket_hooks;
	bool verbose;		 /* libbpf debug output and attach decisions on stderr */
};

struct capture_callbacks {
	void (*on_chunk)(const struct capture_chunk *chunk, void *ctx);
	void (*on_close)(const struct conn_ref *conn, uint64_t ts_ns, void *ctx);
	void (*on_exit)(uint32_t pid, void *ctx); /* a traced process ended */
	void *ctx;
};

struct capture_stats {
	uint64_t kernel[BP_STAT__COUNT]; /* summed over CPUs; see enum bp_stat */
	uint64_t records;		 /* ring-buffer records consumed */
	uint64_t bytes;			 /* payload bytes consumed */
	uint64_t lost_bytes;		 /* gaps reported by the kernel */
	uint64_t malformed_records;	 /* records whose lengths contradict each other: skipped */
	uint32_t traced_processes;
	uint32_t tls_files;	 /* files (inodes) with OpenSSL uprobes attached */
	uint64_t attach_errors;
	uint32_t libc_hooked_processes; /* traced processes seen through their own libc */
	bool syscall_hooks;		/* the raw syscall tracepoints are attached now */
	uint64_t processes_examined;	/* untraced processes whose /proc files were read to
					 * decide (--exe, node mode) */
};

struct capture_session;

/* Returns NULL and writes a message to err when the kernel lacks a feature, privileges are
 * missing, or a --pid/--exe cannot be found. */
struct capture_session *capture_session_new(const struct capture_config *cfg,
					    const struct capture_callbacks *cb, char *err,
					    size_t err_len);
/* Waits up to timeout_ms for records and dispatches them. While records keep coming it returns
 * every 20 ms at most, and earlier when its own timed work is due. Returns records handled, or
 * a negative errno (-EINTR when a signal arrived). */
int capture_session_poll(struct capture_session *s, int timeout_ms);
void capture_session_get_stats(struct capture_session *s, struct capture_stats *out);
/* The pids traced now, up to cap of them into out; returns how many were written. */
size_t capture_session_traced(struct capture_session *s, uint32_t *out, size_t cap);
/* Stops tracing pid, as if it had exited (its links go, on_exit is called so the later stages
 * forget its connections); a process that stopped being selected. Its children traced through
 * it stay traced. 0, or -ENOENT when pid is not traced. */
int capture_session_untrace(struct capture_session *s, uint32_t pid);
/* Detaches everything. NULL is fine. */
void capture_session_free(struct capture_session *s);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * OpenSSL uprobes. A file is examined once (per inode); its breakpoints are planted in the traced
 * processes alone (one set of links per process and file), so that other processes running the
 * same node binary or the system libssl never stop at them. Executables selected with --exe are
 * the exception: every process running them is traced, so they get one set for all.
 */
#ifndef BIZPROBE_CAPTURE_TLS_ATTACH_H
#define BIZPROBE_CAPTURE_TLS_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include "proc.h"

struct bizprobe_bpf;
struct tls_attacher;

#define TLS_EVERY_PROCESS 0u /* pid argument of tls_attach_file: all processes mapping the file */

/* libc_sockets: some processes will be seen through socket uprobes in their own C library
 * (--socket-hooks auto or libc): the files are examined for them too. */
struct tls_attacher *tls_attacher_new(struct bizprobe_bpf *skel, bool verbose, bool libc_sockets);
void tls_attacher_free(struct tls_attacher *a);

/* Attaches to path for pid (or TLS_EVERY_PROCESS) if the file defines OpenSSL's SSL_read and is
 * not attached for it yet; with libc, also if it is a C library (never for every process).
 * path may be mapped later: the kernel plants the breakpoints when pid maps the file. Returns 1
 * when the file has OpenSSL and is attached for pid (now or before), 0 when it has no OpenSSL
 * or is gone, or a negative errno. */
int tls_attach_file(struct tls_attacher *a, const char *path, uint32_t pid, bool libc);

/* Removes pid's links (the process exited). */
void tls_detach_process(struct tls_attacher *a, uint32_t pid);

/*
 * Whether the libc socket uprobes would see all the socket calls of a process that maps these
 * files: one is a C library that defines them, and none is a Go program (Go makes its socket
 * calls with its own syscall instructions, libc or not). What --socket-hooks auto asks of each
 * process it traces; the files examined are the ones tls_attach_file attaches next. False when
 * the attacher was made without libc_sockets.
 */
bool tls_libc_hooks_fit(struct tls_attacher *a, const struct proc_mappings *files);

/* Files with OpenSSL examined so far. */
unsigned tls_attacher_files(const struct tls_attacher *a);

#endif

/* SPDX-License-Identifier: MIT */
/* What the running kernel and our privileges allow, probed at start instead of version checks. */
#ifndef BIZPROBE_CAPTURE_FEATURES_H
#define BIZPROBE_CAPTURE_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

struct bizprobe_bpf;

/* 0, or -errno with a message naming what is missing (BTF, ring buffer, a capability). */
int features_check(char *err, size_t err_len);

/* Turns off programs whose tracepoint this kernel does not have; says so on stderr. */
void features_disable_missing(struct bizprobe_bpf *skel);

/* Before load: where read/write calls wait for their return, thread storage (true) where the
 * kernel has it for tracing programs, hash maps keyed by thread id (false) where it does not. */
bool features_choose_call_storage(struct bizprobe_bpf *skel);

/* Where tracefs is mounted (mounting it if it is not), or NULL. */
const char *features_tracefs_root(void);

/* The capabilities bizprobe needs, for the README and the error messages. */
extern const char features_required_caps[];

#endif

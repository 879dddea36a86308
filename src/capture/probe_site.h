/* SPDX-License-Identifier: MIT */
/* Where in a function a uprobe costs least: past a prologue the kernel would single-step. */
#ifndef BIZPROBE_CAPTURE_PROBE_SITE_H
#define BIZPROBE_CAPTURE_PROBE_SITE_H

#include <stdint.h>

/*
 * Returns the file offset of the first instruction of the function at `entry` (a file offset in
 * the ELF at path) that a uprobe can sit on without single-stepping, where that is provably the
 * same as probing the entry for both an entry uprobe and a uretprobe: every path through the
 * function reaches it, the argument registers and the stack pointer are still as at entry, and
 * nothing jumps back to it. Returns entry when it does not recognise the code.
 */
uint64_t probe_site_past_prologue(const char *path, uint64_t entry);

#endif

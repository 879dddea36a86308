/* SPDX-License-Identifier: MIT */
/* Where in a function a uprobe costs least: past a prologue the kernel would single-step. */
#ifndef BIZPROBE_CAPTURE_PROBE_SITE_H
#define BIZPROBE_CAPTURE_PROBE_SITE_H

#include <stdint.h>

/*
 * Returns the file offset of the first instruction of the function at `entry` (a file offset in
 * the ELF at path) that a uprobe can sit on without single-stepping, for code of a shape known to
 * make that the same as probing the entry, for an entry uprobe and a uretprobe alike: every call
 * reaches it once, with the argument registers and the stack pointer as at entry. Returns entry
 * when it does not recognise the code.
 */
uint64_t probe_site_past_prologue(const char *path, uint64_t entry);

/*
 * OpenSSL 3's SSL_read_ex (SSL_write_ex) is a thunk around the internal function that SSL_read
 * (SSL_write) calls too, with the _ex arguments and return. Given the offsets of the _ex and the
 * plain function, returns the internal function's offset when the _ex function is exactly that
 * thunk, the plain one calls the same function, and it starts with a push the kernel emulates
 * (the thunk's first instruction moves the stack pointer: a probe there is single-stepped). 0
 * otherwise.
 */
uint64_t probe_site_ssl_core(const char *path, uint64_t ex_entry, uint64_t plain_entry);

#endif

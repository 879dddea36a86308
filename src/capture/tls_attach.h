/* SPDX-License-Identifier: MIT */
/* OpenSSL uprobes, attached once per file (inode) whatever number of processes map it. */
#ifndef BIZPROBE_CAPTURE_TLS_ATTACH_H
#define BIZPROBE_CAPTURE_TLS_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

struct bizprobe_bpf;
struct tls_attacher;

struct tls_attacher *tls_attacher_new(struct bizprobe_bpf *skel, bool verbose);
void tls_attacher_free(struct tls_attacher *a);

/* Attaches to path if it defines OpenSSL's SSL_read/SSL_write and is not attached yet (files
 * without them are remembered too, so each inode is examined once). Returns 1 when newly
 * attached, 0 when nothing was to be done, or a negative errno. */
int tls_attach_file(struct tls_attacher *a, const char *path);

unsigned tls_attacher_files(const struct tls_attacher *a);

#endif

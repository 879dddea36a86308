/* SPDX-License-Identifier: MIT */
/* What the node agent's files (src/k8s/) share. */
#ifndef BIZPROBE_K8S_INTERNAL_H
#define BIZPROBE_K8S_INTERNAL_H

#include <stddef.h>

/* printf into err (err_len bytes; NULL or 0: nothing). */
void k8s_seterr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

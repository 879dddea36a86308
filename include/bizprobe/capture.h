/* SPDX-License-Identifier: MIT */
/*
 * Output of the capture stage (src/capture/), input of the HTTP stage (src/http/): ordered
 * chunks of one connection's byte streams, and the connection's end.
 */
#ifndef BIZPROBE_CAPTURE_H
#define BIZPROBE_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/capture_event.h"

/* Identifies one connection for its whole life: (tgid, fd, generation) for plaintext sockets,
 * (tgid, SSL*, generation) for TLS sessions. */
struct conn_ref {
	uint32_t pid;
	uint64_t id;
	uint64_t generation;
	bool tls;
	char comm[BP_COMM_LEN];
};

struct capture_chunk {
	struct conn_ref conn;
	uint64_t ts_ns;		/* CLOCK_MONOTONIC time the kernel saw the call */
	enum bp_dir dir;	/* egress: the traced process wrote it; ingress: it read it */
	const uint8_t *data;	/* valid only during the call that receives it */
	uint32_t len;		/* bytes in data */
	uint32_t lost;		/* bytes the call moved after data that were not copied (a gap) */
};

#endif

/* SPDX-License-Identifier: MIT */
/* `bizprobe run --node` (src/cli/run_node.c): which processes of this host are traced, by
 * executable, command name, cgroup and, with the kube API, pod namespace and labels. */
#ifndef BIZPROBE_RUN_NODE_H
#define BIZPROBE_RUN_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

struct run_node;

/* Parses the --select arguments and, when one needs pod metadata, lists this node's pods and
 * starts watching them. NULL with a message on stderr: run must not start. */
struct run_node *run_node_new(const struct cli_opts *o);
/* struct capture_config.select: whether pid is one to trace (ctx is the run_node). */
bool run_node_select(uint32_t pid, void *ctx);
void run_node_free(struct run_node *n);

#endif

/* SPDX-License-Identifier: MIT */
/* `bizprobe run --node` (src/cli/run_node.c): which processes of this host are traced, by
 * executable, command name, cgroup and, with the kube API, pod namespace and labels. */
#ifndef BIZPROBE_RUN_NODE_H
#define BIZPROBE_RUN_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/business_event.h"
#include "bizprobe/self_metrics.h"
#include "cli.h"

struct run_node;

/* Parses the --select arguments and, when one needs pod metadata, lists this node's pods and
 * starts watching them. NULL with a message on stderr: run must not start. */
struct run_node *run_node_new(const struct cli_opts *o);
/* struct capture_config.select: whether pid is one to trace (ctx is the run_node). */
bool run_node_select(uint32_t pid, void *ctx);
/* capture_config.select_epoch: the pod cache's changes so far (lists and watch events). */
uint64_t run_node_select_epoch(void *ctx);
/* capture_config.selected: says "node: tracing pid N (...)" once pid's files are attached. */
void run_node_selected(uint32_t pid, void *ctx);
/* An exchange of pid: counted to its target, which is returned (NULL without --k8s-labels). */
const struct biz_target *run_node_exchange(struct run_node *n, uint32_t pid);
/* Node mode's self-metrics (the dropped counter; per target with --k8s-labels). */
int run_node_register_metrics(struct run_node *n, struct self_metrics *self,
			      struct metrics_registry *reg);
/* On the capture thread, each tick: drops the traced processes whose pod stopped matching (when
 * the pod cache changed), maps new ones to their targets, publishes the self-metrics. */
void run_node_tick(struct run_node *n, struct capture_session *cs, struct self_metrics *self);
void run_node_free(struct run_node *n);

#endif

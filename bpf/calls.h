/* SPDX-License-Identifier: MIT */
/* A read or write call's arguments, kept from its entry to its return on the same thread. */
#ifndef BIZPROBE_BPF_CALLS_H
#define BIZPROBE_BPF_CALLS_H

#include "emit.h"
#include "maps.h"

static __always_inline void *calls_hash(enum call_slot slot)
{
	return slot == SLOT_SSL ? (void *)&ssl_calls : (void *)&sock_calls;
}

/* Keeps *a until the call returns; a call that cannot be kept is counted, never guessed. */
static __always_inline void call_stash(enum call_slot slot, __u64 pid_tgid, struct call_args *a)
{
	struct thread_calls *tc;

	if (thread_storage) {
		tc = bpf_task_storage_get(&thread_calls, bpf_get_current_task_btf(), 0,
					  BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!tc) {
			stat_inc(BP_STAT_ARGS_MAP_FULL, 1);
			return;
		}
		a->live = 1;
		tc->slot[slot] = *a;
		return;
	}
	if (bpf_map_update_elem(calls_hash(slot), &pid_tgid, a, BPF_ANY))
		stat_inc(BP_STAT_ARGS_MAP_FULL, 1);
}

/* Moves the call stashed at entry into *a; false when this thread has none (its entry was not
 * traced, or was a call on a connection we ignore). */
static __always_inline bool call_take(enum call_slot slot, __u64 pid_tgid, struct call_args *a)
{
	struct thread_calls *tc;
	struct call_args *kept;

	if (thread_storage) {
		tc = bpf_task_storage_get(&thread_calls, bpf_get_current_task_btf(), 0, 0);
		if (!tc || !tc->slot[slot].live)
			return false;
		tc->slot[slot].live = 0;
		*a = tc->slot[slot];
		return true;
	}
	kept = bpf_map_lookup_elem(calls_hash(slot), &pid_tgid);
	if (!kept)
		return false;
	*a = *kept;
	bpf_map_delete_elem(calls_hash(slot), &pid_tgid);
	return true;
}

#endif

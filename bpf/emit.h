/* SPDX-License-Identifier: MIT */
/* Copying a call's bytes into ring-buffer records of at most BP_CHUNK_BYTES each. */
#ifndef BIZPROBE_BPF_EMIT_H
#define BIZPROBE_BPF_EMIT_H

#include "maps.h"

/* Loader settings (rodata, fixed at load). */
const volatile __u32 max_copy_bytes = 256 * 1024; /* per call; the rest is counted as lost */
const volatile bool empty_probes = false; /* benchmark floor: attach everything, do nothing */

static __always_inline struct scratch_record *scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/* Bytes of the call that will not be copied: a gap userspace learns of with the next record. */
static __always_inline void note_lost(struct conn_key *key, __u64 n)
{
	struct conn_state *cs = bpf_map_lookup_elem(&conns, key);

	stat_inc(BP_STAT_TRUNCATED, 1);
	if (cs)
		cs->lost_pending += n > 0xffffffffull ? 0xffffffffu : (__u32)n;
}

/* Sends one record of n (<= BP_CHUNK_BYTES) bytes at ubuf; failures become lost bytes. */
static __always_inline void emit_chunk(struct scratch_record *rec, __u64 ubuf, __u32 n)
{
	struct span_cursor *c = &rec->cur;
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &c->key);
	__u32 size;

	if (!cs || n > BP_CHUNK_BYTES)
		return;
	if (bpf_probe_read_user(rec->data, n, (const void *)ubuf)) {
		stat_inc(BP_STAT_READ_FAILED, 1);
		cs->lost_pending += n;
		return;
	}
	rec->ev.ts_ns = bpf_ktime_get_ns();
	rec->ev.conn_id = c->key.id;
	rec->ev.generation = cs->generation;
	rec->ev.tgid = c->key.tgid;
	rec->ev.tid = (__u32)bpf_get_current_pid_tgid();
	rec->ev.kind = BP_EV_DATA;
	rec->ev.len = n;
	rec->ev.copied = n;
	rec->ev.dir = c->dir;
	rec->ev.source = c->key.source;
	rec->ev.role_hint = cs->role_hint;
	rec->ev.pad0 = 0;
	rec->ev.lost_before = cs->lost_pending;
	rec->ev.pad1 = 0;
	bpf_get_current_comm(rec->ev.comm, sizeof(rec->ev.comm));
	size = sizeof(rec->ev) + n;
	if (bpf_ringbuf_output(&events, &rec->ev, size, 0)) {
		stat_inc(BP_STAT_RINGBUF_FULL, 1);
		cs->lost_pending += n;
		return;
	}
	cs->lost_pending = 0;
	stat_inc(BP_STAT_EVENTS, 1);
}

/*
 * One step of the per-CPU cursor: load the next iovec, or emit one chunk. Returns 1 when the call
 * is done. A global (non-inlined) function, verified once with unknown state instead of once per
 * loop iteration of every caller: that keeps the verifier's work small on every kernel from 5.10
 * (bpf_loop would need 5.17).
 */
__noinline int bp_emit_step(__u32 unused)
{
	struct scratch_record *rec = scratch_get();
	struct span_cursor *c;
	struct iovec iov;
	__u32 n;

	if (!rec)
		return 1;
	c = &rec->cur;
	if (c->total == 0 || c->budget == 0)
		return 1;
	if (c->left == 0) {
		if (c->iovs_left == 0 || bpf_probe_read_user(&iov, sizeof(iov), (void *)c->iov))
			return 1;
		c->iov += sizeof(iov);
		c->iovs_left--;
		c->base = (__u64)iov.iov_base;
		c->left = iov.iov_len < c->total ? iov.iov_len : c->total;
		return 0;
	}
	n = c->left > BP_CHUNK_BYTES ? BP_CHUNK_BYTES : (__u32)c->left;
	if (n > c->budget)
		n = c->budget;
	emit_chunk(rec, c->base, n);
	c->budget -= n;
	c->base += n;
	c->left -= n;
	c->total -= n;
	return 0;
}

/* Emits the call described by the per-CPU cursor. Each iovec costs one step besides its chunks. */
static __always_inline void emit_cursor(struct scratch_record *rec)
{
	for (int i = 0; i < 2 * BP_MAX_CHUNKS_PER_CALL; i++)
		if (bp_emit_step(0))
			break;
	if (rec->cur.total)
		note_lost(&rec->cur.key, rec->cur.total);
}

/* A close record for a connection userspace has been receiving bytes of. */
static __always_inline void emit_close(__u32 tgid, __u64 conn_id, struct conn_state *cs,
				       __u8 source)
{
	struct bp_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		stat_inc(BP_STAT_RINGBUF_FULL, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->conn_id = conn_id;
	ev->generation = cs->generation;
	ev->tgid = tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind = BP_EV_CLOSE;
	ev->source = source;
	ev->lost_before = cs->lost_pending;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

/* Process lifecycle records (exec, exit, executable mapping) carry no payload. */
static __always_inline void emit_proc_event(__u32 kind, __u32 tgid)
{
	struct bp_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		stat_inc(BP_STAT_RINGBUF_FULL, 1);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->tgid = tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind = kind;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

#endif

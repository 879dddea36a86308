/* SPDX-License-Identifier: MIT */
/* Copying a call's bytes into ring-buffer records of at most BP_CHUNK_BYTES each. */
#ifndef BIZPROBE_BPF_EMIT_H
#define BIZPROBE_BPF_EMIT_H

#include "maps.h"

/* Loader settings (rodata, fixed at load). */
const volatile __u32 max_copy_bytes = 256 * 1024; /* per call; the rest is counted as lost */
const volatile bool empty_probes = false; /* benchmark floor: attach everything, do nothing */
const volatile __u32 wakeup_bytes = 64 * 1024; /* wake the reader once this much is waiting */
const volatile bool thread_storage = false; /* calls wait in task storage (see thread_calls) */

/*
 * Data records do not wake the reader one by one: each wake-up is an inter-processor interrupt
 * (a VM exit on virtual machines) in the traced process and a context switch in bizprobe, and
 * the benchmark showed them costing more than the copies. The reader is woken once per batch,
 * by the record that takes the bytes waiting across wakeup_bytes, and otherwise looks at the
 * ring on its own schedule (every 20 ms under load, every 250 ms when idle). Forcing a wake-up
 * on every record past the mark instead costs the traced thread a self-interrupt per record
 * until the reader has drained the ring (the profile of 2146ed8: the largest item of the SSL
 * return programs). An idle reader is not woken by the first record either: the traced thread
 * would take that interrupt after every quiet stretch, to save at most 250 ms of delay that
 * the metrics do not notice. waiting includes the record.
 */
static __always_inline __u64 data_wakeup_flags(__u64 waiting, __u64 record_bytes)
{
	return waiting >= wakeup_bytes && waiting - record_bytes < wakeup_bytes
		   ? BPF_RB_FORCE_WAKEUP
		   : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 ring_waiting(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
}

/* Steps one call may take: each fills part of a record from one buffer. Enough for IOV_MAX
 * (1024) iovecs, which Node.js approaches when it writes a large chunked body in one writev,
 * plus the records of max_copy_bytes; the rest of a longer call is counted as lost. */
#define MAX_STEPS_PER_CALL (1024 + 2 * BP_MAX_CHUNKS_PER_CALL)

static __always_inline struct scratch_record *scratch_get(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratch, &cpu);
}

static __always_inline __u32 clamp_u32(__u64 n)
{
	return n > 0xffffffffull ? 0xffffffffu : (__u32)n;
}

/* Bytes of this call's direction that never reached userspace: reported before the next record
 * that does, by this call or a later one. Slow path (a full ring), so the lookup is here. */
static __always_inline void cursor_add_lost(struct span_cursor *c, __u32 dir, __u64 n)
{
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &c->key);

	if (cs) {
		cs->lost_pending[dir & 1] = sat_add_u64(cs->lost_pending[dir & 1], n);
		c->lost_before = cs->lost_pending[dir & 1];
	} else {
		c->lost_before = sat_add_u64(c->lost_before, n);
	}
}

static __always_inline void cursor_lost_reported(struct span_cursor *c, __u32 dir)
{
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &c->key);

	if (cs)
		cs->lost_pending[dir & 1] = 0;
	c->lost_before = 0;
}

/* The header of a data record: copied bytes follow it, len - copied were lost after them. */
static __always_inline void data_header(struct bp_event *ev, const struct conn_key *key,
					__u64 generation, __u32 role_hint, __u32 dir, __u32 copied,
					__u32 len, __u64 lost_before)
{
	ev->ts_ns = bpf_ktime_get_ns();
	ev->conn_id = key->id;
	ev->generation = generation;
	ev->tgid = key->tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind = BP_EV_DATA;
	ev->copied = copied;
	ev->len = len;
	ev->dir = dir;
	ev->source = key->source;
	ev->role_hint = (__u8)role_hint;
	ev->pad0 = 0;
	ev->lost_before = lost_before;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/* Sends the record being built (its payload, then the bytes lost after it); a record the ring
 * cannot take becomes a gap reported before the next record of that direction. */
static __always_inline void flush_record(struct scratch_record *rec)
{
	struct span_cursor *c = &rec->cur;
	__u32 filled = c->filled, dir = c->dir & 1, size;

	if (filled == 0 && c->lost_after == 0)
		return;
	c->filled = 0;
	if (filled > BP_CHUNK_BYTES) {
		/* The verifier's bound; counted and reported as a gap should it ever fire. */
		stat_inc(BP_STAT_DISCARDED, 1);
		cursor_add_lost(c, dir, (__u64)filled + c->lost_after);
		c->lost_after = 0;
		return;
	}
	/* len is 32-bit: a call that lost more than 4 GiB after its bytes (possible only for an
	 * SSL_write_ex of that size) reports the most it can. */
	data_header(&rec->ev, &c->key, c->generation, c->role_hint, dir, filled,
		    clamp_u32((__u64)filled + c->lost_after), c->lost_before);
	/* Re-bound after the barrier: clang spills filled and 5.10's verifier loses the bound
	 * checked above on the reloaded copy. The mask is a no-op for filled <= BP_CHUNK_BYTES. */
	size = filled;
	asm volatile("" : "+r"(size));
	size = (size & (2 * BP_CHUNK_BYTES - 1)) + sizeof(rec->ev);
	if (bpf_ringbuf_output(&events, &rec->ev, size,
			       data_wakeup_flags(ring_waiting() + size, size))) {
		stat_inc(BP_STAT_RINGBUF_FULL, 1);
		cursor_add_lost(c, dir, filled + c->lost_after);
	} else {
		if (c->lost_before)
			cursor_lost_reported(c, dir);
		stat_inc(BP_STAT_EVENTS, 1);
	}
	c->lost_after = 0;
}

/*
 * One step of the per-CPU cursor: load the next iovec if the current buffer is done, then copy
 * what fits into the record, sending it when full. Returns 1 when the call is done. A global
 * (non-inlined) function: the verifier checks it once with unknown state instead of once per
 * loop iteration of every caller, which keeps the per-call loop within its budget on every
 * kernel from 5.10 on (bpf_loop would need 5.17).
 */
__noinline int bp_emit_step(__u32 step)
{
	struct scratch_record *rec = scratch_get();
	struct span_cursor *c;
	struct iovec iov;
	__u64 n, off;

	/* step is used (a redundant bound) so that clang keeps passing it: 5.10 rejects a call
	 * to a global function whose argument register was left holding a pointer. */
	if (!rec || step >= MAX_STEPS_PER_CALL)
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
		if (c->left == 0)
			return 0;
	}
	off = c->filled;
	if (off >= BP_CHUNK_BYTES) {
		flush_record(rec);
		return 0;
	}
	n = c->left > BP_CHUNK_BYTES - off ? BP_CHUNK_BYTES - off : c->left;
	if (n > c->budget)
		n = c->budget;
	/* Bounds the verifier of every kernel can follow: 5.10's loses them through clang's
	 * 32-bit moves, so re-derive them after a barrier (no-ops for the values above). */
	asm volatile("" : "+r"(off), "+r"(n));
	off &= BP_CHUNK_BYTES - 1;
	n &= 2 * BP_CHUNK_BYTES - 1;
	if (n > BP_CHUNK_BYTES)
		return 1;
	if (bpf_probe_read_user(rec->data + off, n, (const void *)c->base)) {
		/* Not paged in: the bytes are lost, after what the record already holds. */
		stat_inc(BP_STAT_READ_FAILED, 1);
		c->lost_after += n;
		flush_record(rec);
	} else {
		c->filled = off + n;
		if (c->filled >= BP_CHUNK_BYTES)
			flush_record(rec);
	}
	c->budget -= n;
	c->base += n;
	c->left -= n;
	c->total -= n;
	return 0;
}

/* Emits the call described by the per-CPU cursor. */
static __always_inline void emit_cursor(struct scratch_record *rec)
{
	struct span_cursor *c = &rec->cur;

	c->filled = 0;
	c->lost_after = 0;
	for (int i = 0; i < MAX_STEPS_PER_CALL; i++)
		if (bp_emit_step(i))
			break;
	if (c->total) {
		stat_inc(BP_STAT_TRUNCATED, 1);
		c->lost_after = clamp_u32((__u64)c->lost_after + c->total);
	}
	flush_record(rec);
}

/*
 * Small calls from one buffer (a request with a few headers, a short response) skip the per-CPU
 * assembly: the record is reserved in the ring and the bytes are read straight into it, saving
 * a copy, the per-CPU lookups and the step loop. The ring takes only constant sizes, hence two
 * size classes; userspace reads the copied bytes and ignores the rest of the class.
 */
#define SMALL_RECORD_BYTES 256
#define MEDIUM_RECORD_BYTES 1024
#define SMALL_CALL_MAX_BYTES (MEDIUM_RECORD_BYTES - sizeof(struct bp_event))

static __always_inline void emit_in_place(const struct conn_key *key, struct conn_state *cs,
					  __u64 base, __u64 len, __u32 dir, const __u32 record_bytes)
{
	struct bp_event *ev = bpf_ringbuf_reserve(&events, record_bytes, 0);
	__u64 n = len;
	__u32 copied;

	dir &= 1;
	if (!ev) {
		stat_inc(BP_STAT_RINGBUF_FULL, 1);
		cs->lost_pending[dir] = sat_add_u64(cs->lost_pending[dir], len);
		return;
	}
	/* The bound the verifier needs for the read, re-derived after a barrier (see
	 * bp_emit_step); callers pass len within the class, so this never fires: if it did, the
	 * bytes are counted and reported lost like a full ring's. */
	asm volatile("" : "+r"(n));
	if (n > record_bytes - sizeof(*ev)) {
		bpf_ringbuf_discard(ev, 0);
		stat_inc(BP_STAT_DISCARDED, 1);
		cs->lost_pending[dir] = sat_add_u64(cs->lost_pending[dir], len);
		return;
	}
	copied = (__u32)n;
	if (bpf_probe_read_user(ev + 1, n, (const void *)base)) {
		/* Not paged in: the bytes are lost, reported as such. */
		stat_inc(BP_STAT_READ_FAILED, 1);
		copied = 0;
	}
	data_header(ev, key, cs->generation, cs->role_hint, dir, copied, (__u32)len,
		    cs->lost_pending[dir]);
	cs->lost_pending[dir] = 0;
	bpf_ringbuf_submit(ev, data_wakeup_flags(ring_waiting(), record_bytes));
	stat_inc(BP_STAT_EVENTS, 1);
}

static __always_inline bool is_small_call(__u64 len)
{
	return len <= SMALL_CALL_MAX_BYTES && len <= max_copy_bytes;
}

static __always_inline void emit_small(const struct conn_key *key, struct conn_state *cs,
				       __u64 base, __u64 len, __u32 dir)
{
	if (len <= SMALL_RECORD_BYTES - sizeof(struct bp_event))
		emit_in_place(key, cs, base, len, dir, SMALL_RECORD_BYTES);
	else
		emit_in_place(key, cs, base, len, dir, MEDIUM_RECORD_BYTES);
}

/* A payload-less record: a connection's end, or a process event (exec, exit, mapping). */
static __always_inline void emit_meta(__u32 kind, __u32 tgid, __u64 conn_id, __u64 generation,
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
	ev->generation = generation;
	ev->tgid = tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind = kind;
	ev->source = source;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
}

/* The end of a connection userspace has been receiving bytes of; forgets it here. */
static __always_inline void conn_end(struct conn_key *key)
{
	struct conn_state *cs = bpf_map_lookup_elem(&conns, key);

	if (!cs)
		return;
	if (cs->state == CONN_HTTP)
		emit_meta(BP_EV_CLOSE, key->tgid, key->id, cs->generation, (__u8)key->source);
	bpf_map_delete_elem(&conns, key);
}

#endif

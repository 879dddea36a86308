#!/usr/bin/env bash
# bizprobe's programs and maps are loaded on this kernel while it runs, as the bpf() syscall
# reports them (bpftool, by the ids its descriptors hold), and none outlives it: not after
# SIGINT, nor after SIGKILL (the kernel frees what only the killed process's descriptors held).
# budget: 60 (estimated: two bizprobe starts; a start took 2-6 s in the capture cases under TCG)
set -eu
command -v bpftool >/dev/null || { echo "bpftool not installed"; exit 77; }
. "$(dirname "$0")/../lib/bizprobe.sh"
bp_require
bpftool prog list >/dev/null
bpftool map list >/dev/null
tmp=$(mktemp -d)
trap 'bp_cleanup; rm -rf "$tmp"' EXIT
bp_sleeper
for sig in INT KILL; do
	bp_start "$tmp/out" "$tmp/err" trace --pid "$sleeper_pid"
	pid=$bp_pid
	progs=$(bp_ids "$pid" prog)
	n=$(echo "$progs" | wc -w)
	echo "bizprobe($pid): $n programs loaded:"
	for id in $progs; do
		bpftool prog show id "$id" | head -1 | sed 's/^/  /'
	done
	[ "$n" -ge 10 ] || { echo "expected bizprobe's programs"; exit 1; }
	# Its ring buffer, as bpf() lists it.
	ring=no
	for id in $(bp_ids "$pid" map); do
		bpftool map show id "$id" | grep -q "ringbuf  name events" && ring=yes
	done
	[ "$ring" = yes ] || { echo "no events ring buffer among bizprobe($pid)'s maps"; exit 1; }
	bp_stop "$sig" || true
	# Programs are freed once their last reference goes: give the kernel a moment.
	for i in $(seq 1 100); do
		[ "$(bp_progs_alive $progs)" = 0 ] && break
		sleep 0.1
	done
	left=$(bp_progs_alive $progs)
	[ "$left" = 0 ] || { echo "$left programs of bizprobe($pid) left after SIG$sig"; exit 1; }
	echo "after SIG$sig: none of its $n programs left"
done

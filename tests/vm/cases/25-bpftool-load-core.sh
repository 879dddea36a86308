#!/usr/bin/env bash
# This kernel's verifier accepts bizprobe's programs: a tiny CO-RE tracepoint program
# (tests/vm/lib/core_probe.bpf.c) loaded with bpftool, then build/bizprobe itself, which loads
# every program it needs here (turning off what the kernel lacks, see src/capture/features.c)
# and attaches them; the instructions each was verified and JITed to are listed. Then, with an
# --exe, its task iterator (bpf/procs.bpf.c), which --exe and node mode use to look at the host's
# processes: it must load here too, or they fall back to reading every process's /proc files.
# budget: 90 (estimated: the CO-RE probe measured 4.4-12.1 s under TCG, plus two bizprobe starts)
set -eu
command -v bpftool >/dev/null || { echo "bpftool not installed"; exit 77; }
command -v clang >/dev/null || { echo "clang not installed"; exit 77; }
. "$(dirname "$0")/../lib/bizprobe.sh"
bp_require
here=$(cd "$(dirname "$0")/../lib" && pwd)
tmp=$(mktemp -d)
pin=/sys/fs/bpf/vmtest_core_probe_$$
trap 'bp_cleanup; rm -f "$pin"; rm -rf "$tmp"' EXIT
clang -O2 -g -target bpf -c "$here/core_probe.bpf.c" -o "$tmp/core_probe.bpf.o"
bpftool prog load "$tmp/core_probe.bpf.o" "$pin"
bpftool prog show pinned "$pin"
bp_sleeper
# The syscall hooks, though sleep's libc would get the libc ones: in that mode the raw syscall
# tracepoint programs are not loaded, and this case is where this kernel's verifier sees them.
bp_start "$tmp/out" "$tmp/err" trace -v --pid "$sleeper_pid" --socket-hooks syscalls
total=0
for id in $(bp_ids "$bp_pid" prog); do
	info=$(bpftool prog show id "$id")
	x=$(echo "$info" | sed -n 's/.*xlated \([0-9]*\)B.*/\1/p')
	echo "$info" | sed -n '1s/^/  /p; 3s/^/    /p'
	total=$((total + ${x:-0}))
done
echo "verified: $((total / 8)) instructions in all"
n=$(bp_prog_count "$bp_pid")
[ "$n" -ge 10 ] || { cat "$tmp/err"; echo "only $n programs loaded"; exit 1; }
echo "bizprobe loaded and attached $n programs on $(uname -r)"
bp_stop INT
bp_start "$tmp/out" "$tmp/err" trace --exe "$(command -v sleep)"
if grep -q 'no BPF task iterator' "$tmp/err"; then
	cat "$tmp/err"
	exit 1
fi
bp_ids "$bp_pid" prog | while read -r id; do bpftool prog show id "$id"; done |
	grep -q 'name process_signat' || { echo "the task iterator is not loaded"; exit 1; }
echo "the task iterator runs on $(uname -r)"
bp_stop INT

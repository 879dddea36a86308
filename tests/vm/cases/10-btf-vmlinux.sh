#!/usr/bin/env bash
# The kernel exposes its BTF, which CO-RE relocation needs, and every kernel type bizprobe's
# programs relocate against (task_struct, file, socket, the syscall registers' pt_regs, ...)
# resolves in it: bpftool derives from this kernel's BTF the minimal BTF that satisfies each
# CO-RE relocation of build/bpf/bizprobe.bpf.o, and each type named must have its members.
# budget: 20 (estimated: the BTF checks measured 0.8-1.4 s under TCG; min_core_btf ~1 s here)
set -eu
f=/sys/kernel/btf/vmlinux
obj=build/bpf/bizprobe.bpf.o
[ -s "$f" ] || { echo "$f missing or empty on $(uname -r)"; exit 1; }
echo "$f: $(stat -c %s "$f") bytes"
command -v bpftool >/dev/null || { echo "bpftool not installed"; exit 77; }
# The blob must parse: look a well-known type up in it.
bpftool btf dump file "$f" format raw | grep -q "STRUCT 'task_struct'" || { echo "no task_struct in $f"; exit 1; }
[ -s "$obj" ] || { echo "$obj not built (make all)"; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bpftool gen min_core_btf "$f" "$tmp" "$obj"
types=$(bpftool btf dump file "$tmp" format raw | grep -E "^\[[0-9]+\] (STRUCT|UNION) '[a-z_]+'" || true)
echo "$types" | sed 's/^/  /'
for want in task_struct file socket pt_regs; do
	line=$(echo "$types" | grep "'$want'" || true)
	[ -n "$line" ] || { echo "bizprobe needs $want: not resolved in $f"; exit 1; }
	echo "$line" | grep -q "vlen=0" && { echo "$want resolved without members"; exit 1; }
done
echo "bizprobe's CO-RE relocations resolve in $(uname -r)'s BTF"

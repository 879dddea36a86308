#!/usr/bin/env bash
# The kernel exposes its BTF, which CO-RE relocation needs.
# budget: 10 (measured 0.8-1.4 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
f=/sys/kernel/btf/vmlinux
[ -s "$f" ] || { echo "$f missing or empty on $(uname -r)"; exit 1; }
echo "$f: $(stat -c %s "$f") bytes"
# The blob must parse: look a well-known type up in it.
if command -v bpftool >/dev/null; then
	bpftool btf dump file "$f" format raw | grep -q "STRUCT 'task_struct'" || { echo "no task_struct in $f"; exit 1; }
fi

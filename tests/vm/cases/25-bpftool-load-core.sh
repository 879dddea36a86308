#!/usr/bin/env bash
# Compiles a tiny CO-RE tracepoint program (tests/vm/lib/core_probe.bpf.c) and loads it with
# bpftool: libbpf must relocate task_struct field offsets against this kernel's BTF and the
# verifier must accept the result.
# budget: 40 (measured 4.4-12.1 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
command -v bpftool >/dev/null || { echo "bpftool not installed"; exit 77; }
command -v clang >/dev/null || { echo "clang not installed"; exit 77; }
here=$(cd "$(dirname "$0")/../lib" && pwd)
tmp=$(mktemp -d)
pin=/sys/fs/bpf/vmtest_core_probe_$$
trap 'rm -f "$pin"; rm -rf "$tmp"' EXIT
clang -O2 -g -target bpf -c "$here/core_probe.bpf.c" -o "$tmp/core_probe.bpf.o"
bpftool prog load "$tmp/core_probe.bpf.o" "$pin"
bpftool prog show pinned "$pin"

#!/usr/bin/env bash
# Regenerates vmlinux/x86/vmlinux.h from the running kernel's BTF. The header is committed so that
# a build never depends on the build machine's kernel; CO-RE relocates field offsets at load time.
set -euo pipefail
cd "$(dirname "$0")/.."
btf=${1:-/sys/kernel/btf/vmlinux}
[ -r "$btf" ] || { echo "gen-vmlinux: $btf not readable (kernel without BTF?)" >&2; exit 1; }
mkdir -p vmlinux/x86
bpftool btf dump file "$btf" format c > vmlinux/x86/vmlinux.h.tmp
mv vmlinux/x86/vmlinux.h.tmp vmlinux/x86/vmlinux.h
echo "gen-vmlinux: wrote vmlinux/x86/vmlinux.h from $btf"

#!/usr/bin/env bash
# The bpf() syscall answers: bpftool can enumerate programs and maps.
# budget: 10 (measured 2.0-2.6 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
command -v bpftool >/dev/null || { echo "bpftool not installed"; exit 77; }
bpftool prog list >/dev/null
bpftool map list >/dev/null
bpftool feature probe kernel 2>/dev/null | grep -E "eBPF program_type (tracepoint|kprobe) is available" 

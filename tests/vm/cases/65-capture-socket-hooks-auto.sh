#!/usr/bin/env bash
# --socket-hooks auto on this kernel: a --pid of a node server is traced through uprobes in its
# own libc, planted past the entry's prologue (on a jump the kernel emulates), exactly, with no
# raw syscall tracepoint loaded and no breakpoint in another process.
# budget: 60 (measured 21.8-24.6 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.SocketHooksAutoTest.test_auto_is_libc_for_node_and_plants_nothing_elsewhere

#!/usr/bin/env bash
# bizprobe captures a plaintext Node server, attached while running on this kernel.
# budget: 40 (measured 9.2-10.4 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_plaintext_node_server

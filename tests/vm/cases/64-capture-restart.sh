#!/usr/bin/env bash
# bizprobe captures a traced server that exits and starts again on this kernel.
# budget: 60 (measured 15.7-20.4 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_traced_program_restarts

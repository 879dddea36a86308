#!/usr/bin/env bash
# bizprobe captures a Python client whose libssl.so.3 is loaded after bizprobe started on this kernel.
# budget: 50 (measured 12.2-15.3 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_python_libssl_client_started_after_bizprobe

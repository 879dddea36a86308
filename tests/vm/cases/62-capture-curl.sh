#!/usr/bin/env bash
# bizprobe captures curl over TLS and plaintext on this kernel.
# budget: 50 (measured 12.5-15.1 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_curl_tls_and_plaintext

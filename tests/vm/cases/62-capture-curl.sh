#!/usr/bin/env bash
# bizprobe captures curl over TLS and plaintext on this kernel.
# budget: 90 (provisional)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_curl_tls_and_plaintext

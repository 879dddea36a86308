#!/usr/bin/env bash
# bizprobe captures OpenSSL inside node, TLS server and client over keep-alive on this kernel.
# budget: 80 (measured 19.3-26.0 s in guests of 5.10, 6.1 and 6.12 under TCG)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
cd tests/integration
exec /usr/bin/python3 -m unittest -v test_capture.CaptureTest.test_node_tls_server_and_client_keepalive

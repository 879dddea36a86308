#!/usr/bin/env bash
# The Stripe end-to-end metrics check on this kernel: the demo platform traced by bizprobe run,
# every metric equal to the traffic mix's ground truth, bearer auth, promtool, and Prometheus.
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
exec /usr/bin/python3 tests/e2e/test_stripe_e2e.py

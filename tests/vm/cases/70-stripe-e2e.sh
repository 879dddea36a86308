#!/usr/bin/env bash
# The Stripe end-to-end metrics check on this kernel: the demo platform traced by bizprobe run,
# every metric equal to the traffic mix's ground truth, bearer auth, promtool, no leaks, a clean
# detach. Prometheus's queries (test_e) run on the host only: they test Prometheus's arithmetic on
# what bizprobe exported, not this kernel, and under TCG they took as long as the rest together.
# budget: 300 (provisional)
set -eu
[ -x build/bizprobe ] || { echo "build/bizprobe not built (make all)"; exit 1; }
[ "${VMTEST_GUEST:-0}" = 1 ] && export BIZPROBE_E2E_PROMETHEUS=0
exec /usr/bin/python3 tests/e2e/test_stripe_e2e.py

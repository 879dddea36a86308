#!/usr/bin/env bash
# The whole suite, as `make test` runs it (root needed for the BPF parts):
#   deps        scripts/check-deps.py: every program the scripts run is installed by deps.sh
#   unit        every build/tests/test_* (cmocka)
#   sanitizers  every build/asan/tests/test_*: the unit tests under ASan+UBSan (make asan-tests)
#   fuzz        scripts/fuzz.sh 10: each libFuzzer harness for 10 s (make fuzzers)
#   deploy      tests/deploy/test_*.py: promtool checks and unit tests of deploy/prometheus, the
#               shipped configurations in a real Prometheus, the dashboards' structure (no root)
#   integration tests/integration/test_*.py against real Node, Python and curl processes
#   e2e         tests/e2e/test_*.py: the demo platform end to end, scraped by a real Prometheus
#               (test_alerts.py: the shipped alerts and dashboards, with Alertmanager)
#   bench       bench/run.sh --smoke: every benchmark configuration, briefly
#   vm          scripts/vmtest.sh: the BPF tests on other kernels (skipped when qemu is absent,
#               or with BIZPROBE_SKIP_VMTEST=1)
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
failed_logs=()
logdir=build/test-logs
mkdir -p "$logdir"

# Adds the counts of a log's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines (cmocka)
# or its last "N passed, N failed" line; a runner that died without either counts as one failure.
count_log() {
	local name=$1 log=$2 rc=$3 p f line
	p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
	f=$(grep -Eo '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then
		line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
		if [ -n "$line" ]; then
			p=$(echo "$line" | awk '{print $1}')
			f=$(echo "$line" | awk '{print $3}')
		fi
	fi
	if [ "$rc" -ne 0 ] && [ "$f" = 0 ]; then
		f=1 # crashed or exited non-zero without reporting a failure: still a failure
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		failures+=("$name (log: $log)")
		failed_logs+=("$log")
	fi
	printf '%-40s %4d passed, %4d failed\n' "$name" "$p" "$f"
}

run() {
	local name=$1
	shift
	local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
	"$@" >"$log" 2>&1
	count_log "$name" "$log" $?
}

echo "== deps"
run "deps/check-deps" /usr/bin/python3 scripts/check-deps.py
echo "== unit"
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	run "unit/$(basename "$t")" "$t"
done
echo "== deploy"
for t in tests/deploy/test_*.py; do
	run "deploy/$(basename "$t" .py)" /usr/bin/python3 "$t"
done

echo "== sanitizers (unit tests under ASan+UBSan)"
for t in build/asan/tests/test_*; do
	[ -x "$t" ] || continue
	# halt_on_error: a report fails the test even where a test forks; leaks are reports too.
	run "asan/$(basename "$t")" env ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$t"
done
echo "== fuzz smoke (each harness 10 s; make fuzz FUZZ_S=N for longer)"
run "fuzz/smoke" scripts/fuzz.sh 10
grep -E '^fuzz ' "$logdir/fuzz_smoke.log" | sed 's/^/   /'

if [ "$(id -u)" -ne 0 ]; then
	echo "run-tests: the integration, e2e and VM tests need root (BPF); run as root" >&2
	failed=$((failed + 1))
else
	echo "== integration"
	for t in tests/integration/test_*.py; do
		run "integration/$(basename "$t" .py)" /usr/bin/python3 "$t"
	done
	echo "== e2e"
	for t in tests/e2e/test_*.py; do
		run "e2e/$(basename "$t" .py)" /usr/bin/python3 "$t"
	done
	echo "== bench smoke (the harness works; figures come from make bench)"
	# The smoke checks that the harness works, not figures; it runs real servers, tracers and
	# load on a shared VM. One step failed once in CI (stop 9) and in no run here. A failed run
	# is repeated once; its failures stay in this output.
	smoke_log=$logdir/bench_smoke.log
	if bench/run.sh --smoke >"$smoke_log" 2>&1; then
		count_log "bench/smoke" "$smoke_log" 0
	else
		echo "bench/smoke: a step failed, so the smoke runs once more; the first run said:"
		grep -B4 'bench: FAIL' "$smoke_log" | sed 's/^/   | /'
		mv "$smoke_log" "$logdir/bench_smoke.first.log"
		run "bench/smoke" bench/run.sh --smoke
	fi
	if [ "${BIZPROBE_SKIP_VMTEST:-0}" != 1 ] && command -v qemu-system-x86_64 >/dev/null &&
		[ -x scripts/vmtest.sh ]; then
		echo "== vm"
		# Each case has its own budget and hang limit (tests/vm/run-in-vm.sh); a kernel is stopped
		# only when its guest outlives all of them together, plus its boot.
		vm_limit=$(cat tests/vm/cases/* | awk -v f="${BIZPROBE_VM_SLOW_FACTOR:-5}" \
			'/^# budget: *[0-9]+/ { s += $3 } END { print 120 + s * f }')
		run "vm/kernel-matrix" scripts/vmtest.sh --timeout "$vm_limit"
		grep -E '^vmtest ' "$logdir/vm_kernel-matrix.log" | sed 's/^/   /'
	fi
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
	# CI keeps only this output, not the logs: show how each failure ended.
	for log in "${failed_logs[@]}"; do
		echo "--- last lines of $log"
		tail -n 100 "$log"
	done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

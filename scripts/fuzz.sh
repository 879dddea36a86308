#!/usr/bin/env bash
# Runs every libFuzzer harness (build/fuzz/fuzz_*, `make fuzzers`) for SECONDS each, one after
# the other, on a working copy of its committed seeds (tests/fuzz/corpus/<harness>/, which new
# inputs never reach: build/fuzz/work/<harness>/ collects them).
#
#   scripts/fuzz.sh [SECONDS]     (default 60; `make fuzz FUZZ_S=N`)
#
# A harness passes when libFuzzer ends without a finding. A finding (crash, sanitizer report,
# leak, timeout over 10 s, more than 2 GiB) is written to build/fuzz/artifacts/<harness>-* and
# fails it: reproduce with `build/fuzz/<harness> FILE`, then make it a unit test and fix it.
# One line per harness: runs, executions per second and CPU seconds (user + system, from
# /proc), then the suite's "N passed, N failed". Exit status 1 if any harness failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 125

secs=${1:-60}
out=build/fuzz
mkdir -p "$out/artifacts" "$out/work" "$out/logs"
passed=0
failed=0
tick=$(getconf CLK_TCK)

for bin in "$out"/fuzz_*; do
	[ -x "$bin" ] && [ -f "$bin" ] || continue
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	work=$out/work/$name
	log=$out/logs/$name.log
	mkdir -p "$work"
	# -close_fd_mask=1: the harnesses print nothing worth keeping on stdout.
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$out/artifacts/$name-" -close_fd_mask=1 \
		"$work" "$seeds" >"$log" 2>&1 &
	pid=$!
	cpu=0
	# The CPU time is read while the process lives: once reaped, /proc forgets it.
	while kill -0 "$pid" 2>/dev/null; do
		if read -r -a st <"/proc/$pid/stat" 2>/dev/null; then
			cpu=$(((st[13] + st[14]) * 100 / tick))
		fi
		sleep 0.2
	done
	wait "$pid"
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cpus=$(awk -v c="$cpu" 'BEGIN { printf "%.1f", c / 100 }')
	if [ "$rc" -eq 0 ] && ! grep -qE '^==[0-9]+==ERROR|SUMMARY: |deadly signal' "$log"; then
		printf 'fuzz %-22s PASS %10s runs %7s/s %6s s CPU\n' "$name" "${runs:-?}" \
			"${speed:-?}" "$cpus"
		passed=$((passed + 1))
	else
		printf 'fuzz %-22s FAIL (exit %d) %s s CPU; log %s:\n' "$name" "$rc" "$cpus" "$log"
		grep -E 'ERROR|SUMMARY|Test unit written|deadly' "$log" | head -5 | sed 's/^/    | /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

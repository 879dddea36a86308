#!/usr/bin/env bash
# Runs the vmtest cases, inside a vmtest guest (scripts/vmtest.sh) or on the host, as root.
#
# The cases are every executable file in tests/vm/cases/, in name order, or the paths listed
# (space- or newline-separated, relative to the repo root or absolute) in BIZPROBE_VM_TESTS.
# A case passes when it exits 0, is skipped when it exits 77 (e.g. an optional tool is missing),
# and fails otherwise.
#
# Time: each case names its budget in a "# budget: SECONDS" line, its measured time in a guest
# under TCG on this project's 2-vCPU machines with a wide margin (default 60). A case that passes
# over its budget still passes and is reported SLOW, so a slow machine shows up as slow, not red.
# Only a case that outlives BIZPROBE_VM_SLOW_FACTOR (default 5) times its budget is stopped, as
# hung, and fails; BIZPROBE_VM_CASE_TIMEOUT, when set, is that limit for every case instead.
# A case's output is shown when it fails (all output with BIZPROBE_VM_VERBOSE=1).
# The last line is "N passed, N failed" (", N skipped" added when some were skipped), which
# scripts/vmtest.sh reads; the exit status is 1 if any case failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 125
REPO=$PWD
CASE_TIMEOUT=${BIZPROBE_VM_CASE_TIMEOUT:-}
SLOW_FACTOR=${BIZPROBE_VM_SLOW_FACTOR:-5}
DEFAULT_BUDGET=60
VERBOSE=${BIZPROBE_VM_VERBOSE:-0}

cases=()
if [ -n "${BIZPROBE_VM_TESTS:-}" ]; then
	for c in $BIZPROBE_VM_TESTS; do
		case "$c" in /*) ;; *) c="$REPO/$c" ;; esac
		cases+=("$c")
	done
else
	for c in "$REPO"/tests/vm/cases/*; do
		[ -f "$c" ] && [ -x "$c" ] && cases+=("$c")
	done
fi

where="host"
[ "${VMTEST_GUEST:-0}" = 1 ] && where="guest"
echo "run-in-vm: kernel $(uname -r) ($where), ${#cases[@]} cases"

# budget_of CASE: the seconds its "# budget:" line names, or the default.
budget_of() {
	local b
	b=$(sed -n 's/^# budget: *\([0-9][0-9]*\).*/\1/p' "$1" | head -1)
	echo "${b:-$DEFAULT_BUDGET}"
}

pass=0 fail=0 skip=0 slow=0
out=$(mktemp "${TMPDIR:-/tmp}/vmcase.XXXXXX")
trap 'rm -f "$out"' EXIT
for c in "${cases[@]}"; do
	name=${c#"$REPO"/}
	if [ ! -x "$c" ]; then
		echo "FAIL $name (not an executable file)"
		fail=$((fail + 1))
		continue
	fi
	budget=$(budget_of "$c")
	limit=${CASE_TIMEOUT:-$((budget * SLOW_FACTOR))}
	t0=$(date +%s.%N)
	timeout -k 5 "$limit" "$c" >"$out" 2>&1 </dev/null
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	timing="${secs}s of a ${budget}s budget"
	if awk -v s="$secs" -v b="$budget" 'BEGIN { exit !(s > b) }'; then
		timing="$timing, SLOW: this machine runs it slower than measured"
		slow=$((slow + 1))
	fi
	case $rc in
	0) echo "PASS $name ($timing)"; pass=$((pass + 1)) ;;
	77) echo "SKIP $name ($timing): $(tail -1 "$out")"; skip=$((skip + 1)) ;;
	124 | 137) echo "FAIL $name (stopped as hung after ${limit}s, ${SLOW_FACTOR}x its ${budget}s budget)"; fail=$((fail + 1)) ;;
	*) echo "FAIL $name (exit $rc, $timing)"; fail=$((fail + 1)) ;;
	esac
	if [ "$VERBOSE" = 1 ] || { [ $rc != 0 ] && [ $rc != 77 ]; }; then
		sed 's/^/    | /' "$out"
	fi
done

[ $slow = 0 ] || echo "run-in-vm: $slow case(s) ran over their budget (SLOW above); they count by their result"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail = 0 ]

#!/usr/bin/env bash
# Runs the vmtest cases, inside a vmtest guest (scripts/vmtest.sh) or on the host, as root.
#
# The cases are every executable file in tests/vm/cases/, in name order, or the paths listed
# (space- or newline-separated, relative to the repo root or absolute) in BIZPROBE_VM_TESTS.
# A case passes when it exits 0, is skipped when it exits 77 (e.g. an optional tool is missing),
# and fails otherwise or when it runs longer than BIZPROBE_VM_CASE_TIMEOUT seconds (default 300).
# A case's output is shown when it fails (all output with BIZPROBE_VM_VERBOSE=1).
# The last line is "N passed, N failed" (", N skipped" added when some were skipped), which
# scripts/vmtest.sh reads; the exit status is 1 if any case failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 125
REPO=$PWD
CASE_TIMEOUT=${BIZPROBE_VM_CASE_TIMEOUT:-300}
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

pass=0 fail=0 skip=0
out=$(mktemp "${TMPDIR:-/tmp}/vmcase.XXXXXX")
trap 'rm -f "$out"' EXIT
for c in "${cases[@]}"; do
	name=${c#"$REPO"/}
	if [ ! -x "$c" ]; then
		echo "FAIL $name (not an executable file)"
		fail=$((fail + 1))
		continue
	fi
	t0=$(date +%s.%N)
	timeout -k 5 "$CASE_TIMEOUT" "$c" >"$out" 2>&1 </dev/null
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0) echo "PASS $name (${secs}s)"; pass=$((pass + 1)) ;;
	77) echo "SKIP $name (${secs}s): $(tail -1 "$out")"; skip=$((skip + 1)) ;;
	124 | 137) echo "FAIL $name (timed out after ${CASE_TIMEOUT}s)"; fail=$((fail + 1)) ;;
	*) echo "FAIL $name (exit $rc, ${secs}s)"; fail=$((fail + 1)) ;;
	esac
	if [ "$VERBOSE" = 1 ] || { [ $rc != 0 ] && [ $rc != 77 ]; }; then
		sed 's/^/    | /' "$out"
	fi
done

if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail = 0 ]

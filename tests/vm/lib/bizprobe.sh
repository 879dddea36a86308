# Sourced by tests/vm/cases/*: start the built bizprobe on this kernel and stop it again.
#   bp_start OUT ERR ARGS...   starts build/bizprobe ARGS in the background (pid in $bp_pid),
#                              stdout to OUT and stderr to ERR, and waits for "attached:"
#   bp_stop [SIGNAL]           stops it (SIGINT by default) and returns its exit status
#   bp_sleeper                 starts a process to trace (pid in $sleeper_pid)
# Everything started is stopped on exit, so no bizprobe program outlives a case.
bp_bin=build/bizprobe
bp_pid=
sleeper_pid=

# Never fails (it runs in EXIT traps under set -e, where a failing wait would skip the rest).
bp_cleanup() {
	if [ -n "$bp_pid" ]; then
		kill -KILL "$bp_pid" 2>/dev/null || true
		wait "$bp_pid" 2>/dev/null || true
	fi
	if [ -n "$sleeper_pid" ]; then
		kill -KILL "$sleeper_pid" 2>/dev/null || true
		wait "$sleeper_pid" 2>/dev/null || true
	fi
	return 0
}
trap bp_cleanup EXIT

bp_require() {
	[ -x "$bp_bin" ] || { echo "$bp_bin not built (make all)"; exit 1; }
}

bp_sleeper() {
	sleep 600 &
	sleeper_pid=$!
}

bp_start() {
	local out=$1 err=$2 i
	shift 2
	"$bp_bin" "$@" >"$out" 2>"$err" &
	bp_pid=$!
	# Under TCG the verifier alone takes seconds per program: wait up to 5 minutes.
	for i in $(seq 1 3000); do
		grep -q "attached:" "$err" && return 0
		if ! kill -0 "$bp_pid" 2>/dev/null; then
			echo "bizprobe exited before attaching:"
			cat "$err"
			bp_pid=
			return 1
		fi
		sleep 0.1
	done
	echo "bizprobe did not attach in 300 s:"
	cat "$err"
	return 1
}

bp_stop() {
	local rc
	kill "-${1:-INT}" "$bp_pid"
	wait "$bp_pid"
	rc=$?
	bp_pid=
	return $rc
}

# The ids of the BPF programs (or maps) a process holds, from its descriptors' fdinfo: a
# program's own descriptor and each link's name it. (bpftool's "pids" column needs a bpftool
# built with its BPF skeletons, which Debian's is not.)
bp_ids() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null | sed -n "s/^$2_id:[[:space:]]*//p" | sort -un
}

bp_prog_count() {
	bp_ids "$1" prog | wc -l
}

# How many of the given program ids the kernel still has.
bp_progs_alive() {
	local n=0 id
	for id in "$@"; do
		bpftool prog show id "$id" >/dev/null 2>&1 && n=$((n + 1))
	done
	echo "$n"
}

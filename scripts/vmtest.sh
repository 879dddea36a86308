#!/usr/bin/env bash
# Runs a test command on several Debian kernels under qemu, and on the host's kernel.
#
#   scripts/vmtest.sh [--kernels "5.10 6.1 6.12"] [--no-host] [--accel auto|tcg|kvm]
#                     [--timeout SECONDS] [--mem SIZE] [--smp N] [-- CMD...]
#
# Each guest boots the kernel from Debian's linux-image package (fetched with apt-get download
# into the cache, see scripts/vm/fetch-kernel.sh; nothing is installed) with a busybox-static
# initramfs (scripts/vm/init) that mounts the host's root filesystem read-only over 9p, lays a
# tmpfs overlay on it so tests can write (changes never reach the host), mounts proc, sys,
# devtmpfs, tracefs, debugfs, bpffs and cgroup2, brings up lo, and runs CMD as root in the repo
# directory. CMD defaults to tests/vm/run-in-vm.sh. Its last "N passed, N failed" line is the
# kernel's result; without one, exit 0 counts as 1 passed and anything else as 1 failed.
#
# Output: one line per kernel, "vmtest <kernel-release>: N passed, N failed", then the host's
# "vmtest <uname -r> (host): N passed, N failed", then a total "vmtest: N passed, N failed".
# Exit status is non-zero if any kernel fails, times out or does not boot.
# Console logs: build/vmtest/<kernel-release>.log (kept for every run, the last one wins).
#
# Environment: VMTEST_CACHE (default /var/cache/bizprobe-vmtest), VMTEST_OUT (build/vmtest),
# VMTEST_KERNELS, VMTEST_ACCEL, VMTEST_TIMEOUT (per kernel, default 600 s), VMTEST_MEM, VMTEST_SMP,
# VMTEST_VERBOSE=1 (stream the console), VMTEST_GUEST_PATH (the guest's PATH; default the host's),
# VMTEST_ROOTFS=tmpfs (no overlay: read-only root, tmpfs on /tmp /run /var/tmp /root),
# VMTEST_9P_CACHE (9p cache mode, default loose), VMTEST_MSIZE (9p msize, default 262144),
# VMTEST_TCG_THREAD (single or multi, default single).
# Variables named BIZPROBE_* and VMTEST_* are passed into the guest's command.
#
# Guests run under single-threaded TCG by default. The kernel patches its own text when a
# tracepoint is switched on or off (int3 first, then the new bytes), and multi-threaded TCG let
# a vCPU execute a stale int3 after the patch had finished: "Oops: int3" in kernel mode, twice
# in a row on 6.12 guests. One thread runs the vCPUs in turn, which closes that window, for
# about 16% more time (6.12: 396 s against 340 s). A guest kernel that crashes under
# VMTEST_TCG_THREAD=multi is booted once more with one thread, and the crash's first lines are
# printed. A test case that fails is never retried.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMDIR="$REPO/scripts/vm"
CACHE=${VMTEST_CACHE:-/var/cache/bizprobe-vmtest}
OUT=${VMTEST_OUT:-$REPO/build/vmtest}
KERNELS=${VMTEST_KERNELS:-"5.10 6.1 6.12"}
ACCEL=${VMTEST_ACCEL:-auto}
TIMEOUT=${VMTEST_TIMEOUT:-600}
MEM=${VMTEST_MEM:-3G}
SMP=${VMTEST_SMP:-2}
TCG_THREAD=${VMTEST_TCG_THREAD:-single}
VERBOSE=${VMTEST_VERBOSE:-0}
RUN_HOST=1
KVM_PROBE_TIMEOUT=20
# Modules the guest needs before it can mount its root; their dependencies come from modules.dep.
GUEST_MODULES=(virtio_pci virtio_rng 9pnet_virtio 9p overlay)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
log() { echo "vmtest: $*" >&2; }
die() { log "error: $*"; exit 2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--kernels) KERNELS=${2?--kernels needs a value}; shift 2 ;;
	--kernels=*) KERNELS=${1#*=}; shift ;;
	--no-host) RUN_HOST=0; shift ;;
	--accel) ACCEL=${2?}; shift 2 ;;
	--accel=*) ACCEL=${1#*=}; shift ;;
	--timeout) TIMEOUT=${2?}; shift 2 ;;
	--timeout=*) TIMEOUT=${1#*=}; shift ;;
	--mem) MEM=${2?}; shift 2 ;;
	--smp) SMP=${2?}; shift 2 ;;
	-v | --verbose) VERBOSE=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done
CMD=("$@")
[ ${#CMD[@]} -gt 0 ] || CMD=(tests/vm/run-in-vm.sh)
case "$ACCEL" in auto | tcg | kvm) ;; *) die "--accel must be auto, tcg or kvm" ;; esac
case "$TCG_THREAD" in multi | single) ;; *) die "VMTEST_TCG_THREAD must be single or multi" ;; esac

# --- prerequisites ---------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2 (scripts/deps.sh installs it)"; }
if [ -n "${KERNELS// /}" ]; then
	need qemu-system-x86_64 "apt-get install qemu-system-x86"
	need cpio "apt-get install cpio"
	need depmod "apt-get install kmod"
	need dpkg-deb "this script needs Debian's dpkg"
	need apt-get "this script needs Debian's apt"
	need timeout "apt-get install coreutils"
	BUSYBOX=${VMTEST_BUSYBOX:-/bin/busybox}
	[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: apt-get install busybox-static (scripts/deps.sh installs it)"
	if LC_ALL=C ldd "$BUSYBOX" 2>/dev/null | grep -q '=>'; then
		die "$BUSYBOX is dynamically linked: apt-get install busybox-static"
	fi
	[ "$(id -u)" = 0 ] || die "run as root (the guest shares / over 9p and the initramfs needs device nodes)"
fi

mkdir -p "$OUT" "$CACHE"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmtest.XXXXXX")
QEMU_PID=
cleanup() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true
		sleep 1
		kill -9 "$QEMU_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- initramfs -------------------------------------------------------------------------------
# Prints the module files (relative to the modules dir) to load for GUEST_MODULES, deps first.
module_order() {
	local moddir=$1
	awk -v want="${GUEST_MODULES[*]}" '
	function base(p) { sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p }
	function visit(m,   n, i, d) {
		if (m in done) return
		done[m] = 1
		n = split(deps[m], d, " ")
		for (i = 1; i <= n; i++) visit(base(d[i]))
		if (m in file) print file[m]
	}
	FILENAME ~ /modules\.builtin$/ { builtin[base($1)] = 1; next }
	{ f = $1; sub(/:$/, "", f); m = base(f); file[m] = f; $1 = ""; deps[m] = $0 }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			m = w[i]; gsub(/-/, "_", m)
			if (!(m in file) && !(m in builtin)) print "vmtest: warning: no module " m > "/dev/stderr"
			visit(m)
		}
	}' "$moddir/modules.builtin" "$moddir/modules.dep"
}

# Writes the guest's command script: cd to the repo, pass selected variables, exec CMD.
write_cmd_script() {
	local kver=$1 out=$2 v
	{
		echo '#!/bin/bash'
		printf 'export PATH=%q\n' "${VMTEST_GUEST_PATH:-$PATH}"
		echo 'export HOME=/root TERM=dumb LANG=C.UTF-8 LC_ALL=C.UTF-8'
		printf 'export VMTEST_GUEST=1 VMTEST_KERNEL=%q\n' "$kver"
		while IFS= read -r v; do
			printf 'export %s=%q\n' "$v" "${!v}"
		done < <(compgen -e | grep -E '^(BIZPROBE_|VMTEST_)' | grep -vE '^VMTEST_(GUEST|KERNEL)$' || true)
		printf 'cd %q || exit 125\n' "$REPO"
		printf 'exec'
		printf ' %q' "${CMD[@]}"
		echo
	} >"$out"
}

build_initramfs() {
	local kver=$1 out=$2
	local kdir="$CACHE/kernels/$kver" moddir root="$TMP/initramfs-$kver" m
	moddir=$(readlink -f "$kdir/modules")
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,vmtest}
	cp "$BUSYBOX" "$root/bin/busybox"
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
	cp "$VMDIR/init" "$root/init"
	chmod 755 "$root/init"
	: >"$root/vmtest/modules.list"
	for m in $(module_order "$moddir"); do
		mkdir -p "$root/lib/modules/$(dirname "$m")"
		# busybox insmod takes plain .ko files only: decompress here.
		case "$m" in
		*.ko.xz) xz -dc "$moddir/$m" >"$root/lib/modules/${m%.xz}"; m=${m%.xz} ;;
		*.ko.zst) zstd -qdc "$moddir/$m" >"$root/lib/modules/${m%.zst}"; m=${m%.zst} ;;
		*.ko.gz) gzip -dc "$moddir/$m" >"$root/lib/modules/${m%.gz}"; m=${m%.gz} ;;
		*) cp "$moddir/$m" "$root/lib/modules/$m" ;;
		esac
		echo "$m" >>"$root/vmtest/modules.list"
	done
	{
		echo "VMTEST_MSIZE=${VMTEST_MSIZE:-262144}"
		echo "VMTEST_ROOTFS=${VMTEST_ROOTFS:-overlay}"
		echo "VMTEST_9P_CACHE=${VMTEST_9P_CACHE:-loose}"
		printf 'VMTEST_MODDIR=%q\n' "$moddir"
		printf 'VMTEST_REPO=%q\n' "$REPO"
	} >"$root/vmtest/config"
	write_cmd_script "$kver" "$root/vmtest/cmd"
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out"
}

# --- one guest -------------------------------------------------------------------------------
# run_guest KVER ACCEL TIMEOUT LOG [TCG_THREAD] : boots the kernel, returns qemu's status (124 on
# timeout).
run_guest() {
	local kver=$1 accel=$2 tmo=$3 logf=$4 thread=${5:-$TCG_THREAD} initrd="$TMP/initramfs-$kver.cpio" cpu accelopt
	build_initramfs "$kver" "$initrd"
	if [ "$accel" = kvm ]; then
		cpu=host accelopt=kvm
	else
		cpu=max accelopt=tcg,thread=$thread
	fi
	: >"$logf"
	local tail_pid=
	if [ "$VERBOSE" = 1 ]; then
		tail -n +1 -f "$logf" >&2 &
		tail_pid=$!
	fi
	local rc=0
	timeout -k 5 "$tmo" qemu-system-x86_64 \
		-nodefaults -no-user-config -machine pc -accel "$accelopt" -cpu "$cpu" \
		-smp "$SMP" -m "$MEM" \
		-display none -vga none -monitor none -serial "file:$logf" -no-reboot \
		-kernel "$CACHE/kernels/$kver/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0,115200 panic=-1 oops=panic quiet loglevel=4 mitigations=off random.trust_cpu=on tsc=reliable no_timer_check" \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-device virtio-rng-pci \
		</dev/null >"$TMP/qemu.out" 2>&1 &
	QEMU_PID=$!
	wait "$QEMU_PID" || rc=$?
	QEMU_PID=
	[ -z "$tail_pid" ] || { sleep 0.2; kill "$tail_pid" 2>/dev/null || true; }
	if [ -s "$TMP/qemu.out" ]; then
		{ echo "--- qemu output ---"; cat "$TMP/qemu.out"; } >>"$logf"
	fi
	return $rc
}

# Counts from a test output file: prints "PASSED FAILED" from its last "N passed, N failed" line,
# or from the exit status when there is none.
count_results() {
	local file=$1 status=$2 line
	line=$(tr -d '\r' <"$file" | grep -E '^([A-Za-z0-9_.-]+: )?[0-9]+ passed, [0-9]+ failed' | tail -1 || true)
	if [ -n "$line" ]; then
		sed -E 's/^([A-Za-z0-9_.-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2 \3/' <<<"$line"
	elif [ "$status" = 0 ]; then
		echo "1 0"
	else
		echo "0 1"
	fi
}

# guest_crashed LOG : the guest's kernel died (oops or panic) before the command finished.
guest_crashed() {
	local logf=$1
	! tr -d '\r' <"$logf" | grep -q '^VMTEST_EXIT=' &&
		tr -d '\r' <"$logf" | grep -qE '(Kernel panic - not syncing|Oops: |BUG: )'
}

# crash_summary LOG : the last case line before the crash, the oops and where it hit.
crash_summary() {
	tr -d '\r' <"$1" | grep -E '^(PASS|FAIL) |Oops: |BUG: |RIP: 0010|Kernel panic' |
		awk '/^(PASS|FAIL) / { last = $0; next } { if (last != "") print "after: " last; last = ""; print }' | head -6
}

TOTAL_PASS=0 TOTAL_FAIL=0 BAD=0
SUMMARY=()
record() { # record LABEL PASS FAIL OK [NOTE]
	local line="vmtest $1: $2 passed, $3 failed${5:+ ($5)}"
	SUMMARY+=("$line")
	echo "$line"
	TOTAL_PASS=$((TOTAL_PASS + $2)) TOTAL_FAIL=$((TOTAL_FAIL + $3))
	[ "$4" = 1 ] || BAD=1
}

# --- accelerator -----------------------------------------------------------------------------
# Nested KVM hangs at boot on some hosts: use it only if a trivial guest gets through quickly.
# The verdict is cached per host boot (boot_id) in the cache dir.
pick_accel() {
	local kver=$1
	[ "$ACCEL" = auto ] || { echo "$ACCEL"; return; }
	if [ ! -w /dev/kvm ]; then echo tcg; return; fi
	local bootid stamp="$CACHE/kvm-probe"
	bootid=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
	if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$bootid" ]; then
		sed -n 2p "$stamp"
		return
	fi
	log "probing KVM with a ${KVM_PROBE_TIMEOUT}s boot of $kver"
	local saved=("${CMD[@]}") verdict=tcg
	CMD=(true)
	if run_guest "$kver" kvm "$KVM_PROBE_TIMEOUT" "$TMP/kvm-probe.log" &&
		tr -d '\r' <"$TMP/kvm-probe.log" | grep -qx 'VMTEST_EXIT=0'; then
		verdict=kvm
	fi
	CMD=("${saved[@]}")
	printf '%s\n%s\n' "$bootid" "$verdict" >"$stamp"
	log "KVM probe: using $verdict"
	echo "$verdict"
}

# --- main ------------------------------------------------------------------------------------
START=$(date +%s)
KVERS=()
for series in $KERNELS; do
	if kver=$("$VMDIR/fetch-kernel.sh" "$series" "$CACHE"); then
		KVERS+=("$kver")
	else
		record "$series" 0 1 0 "kernel not available"
	fi
done

accel=
for kver in "${KVERS[@]}"; do
	[ -n "$accel" ] || accel=$(pick_accel "$kver")
	logf="$OUT/$kver.log"
	t0=$(date +%s.%N)
	rc=0 how=$accel
	run_guest "$kver" "$accel" "$TIMEOUT" "$logf" || rc=$?
	if [ "$accel" = tcg ] && [ "$TCG_THREAD" = multi ] && guest_crashed "$logf"; then
		echo "vmtest $kver: the guest kernel crashed under multi-threaded TCG; booting it again with one TCG thread. The crash:"
		crash_summary "$logf" | sed "s/^/  [$kver] /"
		cp "$logf" "$OUT/$kver.crash.log"
		rc=0 how="$accel, rebooted with one thread after a crash (log: $OUT/$kver.crash.log)"
		run_guest "$kver" "$accel" "$TIMEOUT" "$logf" single || rc=$?
	fi
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	tr -d '\r' <"$logf" | sed -n '/^VMTEST_BEGIN$/,/^VMTEST_EXIT=/p' | sed '1d; $d' >"$TMP/out-$kver"
	[ "$VERBOSE" = 1 ] || sed "s/^/  [$kver] /" "$TMP/out-$kver"
	status=$(tr -d '\r' <"$logf" | sed -n 's/^VMTEST_EXIT=\([0-9]*\)$/\1/p' | tail -1)
	if [ -z "$status" ]; then
		if [ $rc = 124 ] || [ $rc = 137 ]; then note="timed out after ${TIMEOUT}s"; else note="did not finish, qemu status $rc"; fi
		record "$kver" 0 1 0 "$note, $how, ${secs}s; log: $logf"
		continue
	fi
	read -r p f < <(count_results "$TMP/out-$kver" "$status")
	ok=1
	[ "$status" = 0 ] && [ "$f" = 0 ] || ok=0
	note="$how, ${secs}s"
	nslow=$(grep -cE '^(PASS|SKIP) .*SLOW' "$TMP/out-$kver" || true)
	[ "$nslow" = 0 ] || note="$note, $nslow case(s) SLOW: over their budget"
	[ "$status" = 0 ] || note="exit $status, $note; log: $logf"
	[ "$ok" = 1 ] || [ "$status" != 0 ] || note="$note; log: $logf"
	[ "$status" = 0 ] || [ "$f" != 0 ] || f=1
	record "$kver" "$p" "$f" "$ok" "$note"
done

if [ "$RUN_HOST" = 1 ]; then
	hlog="$OUT/host.log"
	t0=$(date +%s.%N)
	set +e
	(cd "$REPO" && VMTEST_GUEST=0 "${CMD[@]}") </dev/null 2>&1 | tee "$hlog" | sed "s/^/  [host] /"
	status=${PIPESTATUS[0]}
	set -e
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	read -r p f < <(count_results "$hlog" "$status")
	ok=1
	[ "$status" = 0 ] && [ "$f" = 0 ] || ok=0
	[ "$status" = 0 ] || [ "$f" != 0 ] || f=1
	note="${secs}s"
	[ "$status" = 0 ] || note="exit $status, $note; log: $hlog"
	record "$(uname -r) (host)" "$p" "$f" "$ok" "$note"
fi

log "matrix took $(($(date +%s) - START))s"
echo "vmtest: $TOTAL_PASS passed, $TOTAL_FAIL failed"
exit $BAD

#!/usr/bin/env bash
# Diagnostic, not a test case: reports what a vmtest guest offers to tests and how fast it is.
#   scripts/vmtest.sh --no-host -- tests/vm/guest-env-report.sh
# Exits non-zero if a basic need (writable /tmp, python3, node) is not met.
set -u
bad=0
t() { # t LABEL CMD... : runs CMD, prints its wall time and status
	local label=$1 t0 rc
	shift
	t0=$(date +%s.%N)
	"$@" >/tmp/envrep.out 2>&1
	rc=$?
	printf '%-34s %6.2fs  exit %d  %s\n' "$label" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" \
		"$rc" "$(head -c 100 /tmp/envrep.out | tr '\n' ' ')"
	return $rc
}
echo "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB"
echo "root: $(awk '$2 == "/" { print $3, $4 }' /proc/mounts | head -1)"
t "write /tmp (64 MiB)" dd if=/dev/zero of=/tmp/envrep.big bs=1M count=64 || bad=1
rm -f /tmp/envrep.big
t "write into the repo (overlay)" sh -c 'echo x >.vmtest-write-probe && rm .vmtest-write-probe'
t "write /root" sh -c 'echo x >/root/.vmtest-write-probe && rm /root/.vmtest-write-probe'
t "/bin/true x20 (exec over 9p)" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/true; done'
big=$(ls -S /usr/lib/x86_64-linux-gnu/lib*.so* 2>/dev/null | head -1)
[ -n "$big" ] || big=/bin/bash
t "read $(basename "$big") ($(($(stat -c %s "$big") / 1048576)) MiB, cold)" sh -c "cat '$big' >/dev/null"
t "read it again (cached)" sh -c "cat '$big' >/dev/null"
t "find /usr/include | wc (metadata)" sh -c 'find /usr/include | wc -l'
t "python3 -c print(1)" python3 -c 'print(1)' || bad=1
t "python3 again" python3 -c 'print(1)'
t "node -e console.log(1)" node -e 'console.log(1)' || bad=1
t "node again" node -e 'console.log(1)'
t "node --version" node --version
t "node http on 127.0.0.1" node -e 'const h=require("http");const s=h.createServer((q,r)=>r.end("ok")).listen(0,"127.0.0.1",()=>h.get("http://127.0.0.1:"+s.address().port,r=>{r.on("data",d=>{console.log(String(d));s.close()})}))' || bad=1
t "ip addr (lo up?)" sh -c 'ip -o -4 addr show lo'
t "clang -target bpf (tiny)" clang -O2 -target bpf -c tests/vm/lib/core_probe.bpf.c -o /tmp/envrep.o
t "getrandom ready (python urandom)" python3 -c 'import os; print(len(os.getrandom(16)))'
exit $bad

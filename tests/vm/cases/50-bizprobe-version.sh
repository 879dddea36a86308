#!/usr/bin/env bash
# The built tracer runs on this kernel: it prints its version, then `bizprobe trace --json`
# captures a real exchange (curl against Python's http.server, plaintext) with the exact
# method, path, status and body size the client saw, and exits 0 on SIGINT.
# budget: 60 (estimated: --version measured 0.6-1.2 s under TCG; one bizprobe start and an
# exchange, as in 63-capture-plaintext-node, 9-10 s)
set -eu
. "$(dirname "$0")/../lib/bizprobe.sh"
bp_require
"$bp_bin" --version
command -v curl >/dev/null || { echo "curl not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'bp_cleanup; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/www"
printf 'hello from %s\n' "$(uname -r)" >"$tmp/www/hello.txt"
size=$(stat -c %s "$tmp/www/hello.txt")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 --directory "$tmp/www" >/dev/null 2>&1 &
srv=$!
for i in $(seq 1 300); do
	curl -s -o /dev/null "http://127.0.0.1:$port/" && break
	sleep 0.1
done
bp_start "$tmp/out" "$tmp/err" trace --json --pid "$srv"
body=$(curl -s "http://127.0.0.1:$port/hello.txt")
[ "$(printf '%s\n' "$body" | wc -c)" = "$size" ] || { echo "curl got '$body'"; exit 1; }
for i in $(seq 1 300); do
	grep -q '"path":"/hello.txt"' "$tmp/out" && break
	sleep 0.1
done
bp_stop INT || { cat "$tmp/err"; echo "bizprobe did not exit 0 on SIGINT"; exit 1; }
cat "$tmp/out"
line=$(grep '"path":"/hello.txt"' "$tmp/out") || { cat "$tmp/err"; echo "exchange not captured"; exit 1; }
for want in '"role":"server"' '"tls":false' '"method":"GET"' '"status":200' \
	"\"resp_bytes\":$size" '"truncated":false'; do
	case "$line" in *"$want"*) ;; *) echo "captured line lacks $want"; exit 1 ;; esac
done
[ "$(grep -c '"path":"/hello.txt"' "$tmp/out")" = 1 ] || { echo "captured more than once"; exit 1; }
echo "captured: $line"

#!/usr/bin/env bash
# bizprobe overhead bench (`make bench`). See bench/README.md.
#
#   bench/run.sh            full run (~15 min): prints the table, writes bench/RESULTS.md
#   bench/run.sh --smoke    every configuration and workload for ~1 s, 1 round; prints
#                           "N passed, N failed" for the harness steps; exit 0 when the harness works
#                           (targets are not judged); writes nothing under bench/ but bench/.build
#
# Configurations (alternated 1 2 3 4 5, 1 2 3 4 5, ... within each workload):
#   1 untraced   2 bizprobe trace --empty-probes   3 bizprobe run + /metrics scraped every 1 s
#   4 bpftrace counting the same probes (bench/count.bt)   5 in-process prom-client (+ scrape)
# Workloads: A trivial Node.js HTTPS handler at saturation (wrk), B the demo app's POST /api/tips
# at saturation (wrk in the demo netns), C A's server at a fixed rate of half of A's capacity
# (bench/loadgen.c, open loop, exact percentiles). The loss step runs nginx at >= 50k exchanges/s.
# CPU placement: the server on CPU 0; wrk / loadgen, bizprobe, bpftrace, scrapers and the Stripe
# stand-in on CPU 1.
#
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (10 s per measurement), BENCH_WARMUP (2 s),
# BENCH_LOSS_SECONDS (60), BENCH_PIPELINE (16: requests per pipelined write in the loss step's nginx
# run; 1 = none), BENCH_TRACER_ARGS (more arguments of config 3's `bizprobe run`, e.g.
# "--socket-hooks libc"), BENCH_NETNS (bizprobe-bench: the demo env under its own netns and run dir
# so that a concurrent `make test` using bizprobe-demo is not disturbed).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH=$ROOT/bench
BIN=$ROOT/build/bizprobe

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
	ROUNDS=1 DUR=1 WARM=0 C_WARM=0 LOSS_S=2 FORCE_S=1 TLS_S=1 ATTACH_TRIALS=1 RENDER_ITERS=20 PROFILE_S=0 PIPELINE_REPS=1
	SHARE_S=1 SHARE_ROUNDS=1 IDLE_S=2 NODE_PROCS=50
else
	ROUNDS=${BENCH_ROUNDS:-3} DUR=${BENCH_DURATION:-10} WARM=${BENCH_WARMUP:-2}
	C_WARM=1 LOSS_S=${BENCH_LOSS_SECONDS:-60} FORCE_S=5 TLS_S=20 ATTACH_TRIALS=7 RENDER_ITERS=500 PROFILE_S=5 PIPELINE_REPS=9
	SHARE_S=${BENCH_SHARE_SECONDS:-5} SHARE_ROUNDS=${BENCH_SHARE_ROUNDS:-3} IDLE_S=30 NODE_PROCS=1000
fi
read -ra CONFIGS <<<"${BENCH_CONFIGS:-1 2 3 4 5}" # debugging: a subset, e.g. "1 3"
CFG_NAME=([1]=untraced [2]=empty-probes [3]=bizprobe [4]=bpftrace [5]=prom-client)
SRV_CPU=0 GEN_CPU=1
LOSS_DEPTH=${BENCH_PIPELINE:-16} # requests per pipelined write in the loss step (1: no pipelining)

export DEMO_NETNS=${BENCH_NETNS:-bizprobe-bench}
export DEMO_RUN_DIR=/run/$DEMO_NETNS
NS=$DEMO_NETNS DEMO=$DEMO_RUN_DIR

WORK=$(mktemp -d /tmp/bizprobe-bench.XXXXXX)
RES=$WORK/results.tsv # workload round config key value
: >"$RES"
PASS=0 FAIL=0
DEMO_UP=0
BPF_STATS_ON=0
declare -A STARTED=() # pid -> what, everything started in the background

log() { printf 'bench: %s\n' "$*" >&2; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
ok() { PASS=$((PASS + 1)); printf 'bench: ok   %s\n' "$*" >&2; }
bad() { FAIL=$((FAIL + 1)); printf 'bench: FAIL %s\n' "$*" >&2; }

bg_started() { STARTED[$1]=$2; }
# stop PID [SIGNAL]: signal it, wait up to 5 s, then SIGKILL.
stop() {
	local pid=$1 sig=${2:-TERM}
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill "-$sig" "$pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	unset "STARTED[$pid]"
	return 0
}

cleanup() {
	local pid
	# bash 5.2 runs this trap in a background child that a signal hits between fork and exec:
	# only the bench's own shell may stop everything.
	[ "$BASHPID" = "$$" ] || return 0
	trap - EXIT INT TERM
	for pid in "${!STARTED[@]}"; do
		stop "$pid" INT
	done
	if [ "$DEMO_UP" = 1 ]; then
		scripts/demo-env.sh down >/dev/null 2>&1 || log "demo-env down failed"
	fi
	# An interrupted BPF-time step must not leave every program on the host paying for stats.
	[ "$BPF_STATS_ON" = 1 ] && sysctl -qw kernel.bpf_stats_enabled=0
	[ -n "${BENCH_KEEP:-}" ] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sum_samples() { # sum_samples NAME_REGEX < exposition: sum of the matching samples
	awk -v re="$1" '$0 !~ /^#/ && $1 ~ re {s += $NF} END {printf "%.0f\n", s}'
}
metric() { curl -s --max-time 5 "$1" | sum_samples "$2"; } # metric URL NAME_REGEX
wait_line() { # wait_line FILE TEXT SECONDS PID
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$4" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_bad() { awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$1"; }

# ------------------------------------------------------------------ setup
setup() {
	[ "$(id -u)" = 0 ] || { log "needs root"; return 1; }
	local t
	for t in wrk bpftrace taskset openssl curl node gcc perf nginx; do
		command -v "$t" >/dev/null || { log "$t not found"; return 1; }
	done
	[ -x "$BIN" ] || { log "$BIN missing: run make"; return 1; }
	mkdir -p "$BENCH/.build"
	gcc -O2 -Wall -o "$BENCH/.build/loadgen" "$BENCH/loadgen.c" -lssl -lcrypto || return 1
	# shellcheck disable=SC2046
	gcc -O2 -Wall -D_GNU_SOURCE -Iinclude -o "$BENCH/.build/render_bench" "$BENCH/render_bench.c" \
		build/libbizprobe.a $(pkg-config --libs libbpf libelf zlib libmicrohttpd libcrypto) \
		build/llhttp/libllhttp.a -lm -lpthread || return 1
	make -s build/bench/pipeline_bench || return 1
	if [ ! -d "$BENCH/app-promclient/node_modules/prom-client" ]; then
		log "installing prom-client from bench/app-promclient/package-lock.json (npm ci)"
		(cd "$BENCH/app-promclient" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2 || return 1
	fi
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || return 1
}

# ------------------------------------------------------------------ servers
SRV=''
SRV_URL=''
start_a_server() { # CONFIG
	local port extra=()
	port=$(free_port)
	[ "$1" = 5 ] && extra=(--promclient)
	taskset -c $SRV_CPU node "$BENCH/https-server.js" "$port" "$WORK/cert.pem" "$WORK/key.pem" "${extra[@]}" \
		>/dev/null 2>"$WORK/srv.err" &
	SRV=$!
	bg_started "$SRV" a-server
	SRV_PORT=$port
	SRV_URL=https://127.0.0.1:$port/
	wait_line "$WORK/srv.err" listening 10 "$SRV" || { log "A server did not start: $(cat "$WORK/srv.err")"; return 1; }
}

nsx() { ip netns exec "$NS" "$@"; }
demo_up() {
	DEMO_UP=1
	scripts/demo-env.sh up >"$WORK/demo-up.log" 2>&1 || { cat "$WORK/demo-up.log" >&2; return 1; }
	# The bench starts the app itself for each measurement (fresh process, pinned, with or without
	# the prom-client preload): stop the one `up` started. The stand-in stays, on the load CPU.
	stop "$(cat "$DEMO/app.pid")"
	rm -f "$DEMO/app.pid"
	taskset -pc $GEN_CPU "$(cat "$DEMO/standin.pid")" >/dev/null
}
start_b_server() { # CONFIG
	local extra=() i
	[ "$1" = 5 ] && extra=(-r "$BENCH/app-promclient/instrument.js")
	# shellcheck disable=SC2046 # secrets.env: two KEY=value words
	ip netns exec "$NS" taskset -c $SRV_CPU env $(cat "$DEMO/secrets.env") NODE_EXTRA_CA_CERTS="$DEMO/ca.crt" \
		HOST=127.0.0.1 PORT=3000 node "${extra[@]}" examples/fan-platform/server.js >"$WORK/app.log" 2>&1 &
	SRV=$!
	bg_started "$SRV" b-app
	SRV_URL=http://127.0.0.1:3000/
	for i in $(seq 100); do
		nsx curl -s -o /dev/null --max-time 1 http://127.0.0.1:3000/api/content/c1 && return 0
		kill -0 "$SRV" 2>/dev/null || break
		sleep 0.1
	done
	log "B app did not start: $(tail -3 "$WORK/app.log")"
	return 1
}

# ------------------------------------------------------------------ tracers
TRACER='' SCRAPER='' MURL=''
SAMPLES='' # set: start_tracer 3's scraper keeps "unix-time server-exchanges" lines there (the
# time is the middle of the scrape)
SERVER_EX='^bizprobe_exchanges_total[{].*role="server"'
start_scraper() { # URL [netns]
	if [ "${2:-}" = ns ]; then
		ip netns exec "$NS" taskset -c $GEN_CPU sh -c 'while :; do curl -sk -o /dev/null --max-time 2 "$0"; sleep 1; done' "$1" &
	elif [ -n "$SAMPLES" ]; then
		(
			while :; do
				t=$(date +%s.%N) v=$(metric "$1" "$SERVER_EX")
				awk -v a="$t" -v b="$(date +%s.%N)" -v v="$v" 'BEGIN {printf "%.6f %s\n", (a + b) / 2, v}'
				sleep 1
			done
		) >"$SAMPLES" 2>/dev/null &
		taskset -pc $GEN_CPU $! >/dev/null
	else
		taskset -c $GEN_CPU sh -c 'while :; do curl -sk -o /dev/null --max-time 2 "$0"; sleep 1; done' "$1" &
	fi
	SCRAPER=$!
	bg_started "$SCRAPER" scraper
}
start_tracer() { # CONFIG WORKLOAD [extra bizprobe args]
	local cfg=$1 wl=$2 port
	shift 2
	TRACER='' SCRAPER='' MURL=''
	case $cfg in
	2)
		taskset -c $GEN_CPU "$BIN" trace --pid "$SRV" --empty-probes >/dev/null 2>"$WORK/tracer.err" &
		TRACER=$!
		bg_started "$TRACER" bizprobe-empty
		wait_line "$WORK/tracer.err" 'bizprobe: attached:' 30 "$TRACER"
		;;
	3)
		port=$(free_port)
		MURL=http://127.0.0.1:$port/metrics
		(
			[ "$wl" = B ] && set -a && . "$DEMO/secrets.env" # STRIPE_WEBHOOK_SECRET: signatures checked
			# shellcheck disable=SC2086 # BENCH_TRACER_ARGS: words, e.g. "--socket-hooks libc"
			exec taskset -c $GEN_CPU "$BIN" run --pid "$SRV" --listen "127.0.0.1:$port" ${BENCH_TRACER_ARGS:-} "$@"
		) >/dev/null 2>"$WORK/tracer.err" &
		TRACER=$!
		bg_started "$TRACER" bizprobe-run
		wait_line "$WORK/tracer.err" 'bizprobe: attached:' 30 "$TRACER" || return 1
		start_scraper "$MURL"
		;;
	4)
		BPFTRACE_STRLEN=16 taskset -c $GEN_CPU bpftrace "$BENCH/count.bt" "$SRV" >"$WORK/tracer.err" 2>&1 &
		TRACER=$!
		bg_started "$TRACER" bpftrace
		wait_line "$WORK/tracer.err" 'bpftrace: attached' 60 "$TRACER"
		;;
	5)
		if [ "$wl" = B ]; then start_scraper "${SRV_URL}metrics" ns; else start_scraper "${SRV_URL}metrics"; fi
		;;
	esac
}
stop_tracer() {
	stop "$SCRAPER"
	stop "$TRACER" INT
	SCRAPER='' TRACER=''
}

# ------------------------------------------------------------------ one measurement
# measure WORKLOAD ROUND CONFIG: fresh server, tracer, warm-up, measured load, teardown.
measure() {
	local wl=$1 r=$2 cfg=$3 out=$WORK/load.out c0 e0 c1 e1 t0 t1 v rate=${C_RATE:-0}
	[ "$wl" = D ] && rate=${D_RATE:-0}
	if [ "$wl" = B ]; then start_b_server "$cfg" || return 1; else start_a_server "$cfg" || return 1; fi
	start_tracer "$cfg" "$wl" || { log "tracer ${CFG_NAME[$cfg]} did not attach: $(tail -3 "$WORK/tracer.err")"; stop_tracer; stop "$SRV"; return 1; }
	case $wl in
	A)
		[ "$WARM" -gt 0 ] && taskset -c $GEN_CPU wrk -t1 -c32 -d"${WARM}s" "$SRV_URL" >/dev/null 2>&1
		;;
	B)
		[ "$WARM" -gt 0 ] && nsx taskset -c $GEN_CPU wrk -t1 -c32 -d"${WARM}s" -s "$BENCH/tips.lua" "$SRV_URL" >/dev/null 2>&1
		;;
	C | D)
		[ "$WARM" -gt 0 ] && taskset -c $GEN_CPU "$BENCH/.build/loadgen" -p "$SRV_PORT" -r "$rate" -d "$WARM" -c 16 -w 0 >/dev/null 2>&1
		;;
	esac
	if [ "$cfg" = 3 ]; then
		c0=$(cpu_ticks "$TRACER") e0=$(metric "$MURL" '^bizprobe_exchanges_total')
	fi
	t0=$(date +%s.%N)
	case $wl in
	A) taskset -c $GEN_CPU wrk -t1 -c32 -d"${DUR}s" "$SRV_URL" >"$out" 2>&1 ;;
	B) nsx taskset -c $GEN_CPU wrk -t1 -c32 -d"${DUR}s" -s "$BENCH/tips.lua" "$SRV_URL" >"$out" 2>&1 ;;
	C | D) taskset -c $GEN_CPU "$BENCH/.build/loadgen" -p "$SRV_PORT" -r "$rate" -d "$DUR" -c 16 -w "$C_WARM" >"$out" 2>&1 ;;
	esac
	t1=$(date +%s.%N)
	if [ "$cfg" = 3 ]; then
		sleep 0.5 # let bizprobe drain what the load left in its ring buffer
		c1=$(cpu_ticks "$TRACER") e1=$(metric "$MURL" '^bizprobe_exchanges_total')
		rec "$wl" "$r" 3 cpu_s "$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN {print (b - a) / hz}')"
		rec "$wl" "$r" 3 wall_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a + 0.5}')"
		rec "$wl" "$r" 3 exchanges "$((e1 - e0))"
		rec "$wl" "$r" 3 hwm_kib "$(hwm_kib "$TRACER")"
		rec "$wl" "$r" 3 lost "$(metric "$MURL" '^bizprobe_events_lost_total')"
	fi
	stop_tracer
	stop "$SRV"
	if [ "$wl" = C ] || [ "$wl" = D ]; then
		v=$(node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop()); console.log(j.p50_us, j.p99_us, j.errors, j.measured)' "$out" 2>/dev/null) || { log "loadgen: $(tail -2 "$out")"; return 1; }
		read -r p50 p99 errs ncomp <<<"$v"
		[ "${ncomp:-0}" -gt 0 ] || { log "loadgen completed no request: $(tail -2 "$out")"; return 1; }
		rec "$wl" "$r" "$cfg" p50_us "$p50"
		rec "$wl" "$r" "$cfg" p99_us "$p99"
		rec "$wl" "$r" "$cfg" errors "$errs"
		log "$wl round $r ${CFG_NAME[$cfg]}: p50 ${p50} us, p99 ${p99} us at $rate/s"
	else
		v=$(wrk_rps "$out")
		[ -n "$v" ] || { log "wrk: $(tail -3 "$out")"; return 1; }
		rec "$wl" "$r" "$cfg" rps "$v"
		rec "$wl" "$r" "$cfg" bad "$(wrk_bad "$out")"
		log "$wl round $r ${CFG_NAME[$cfg]}: $v req/s ($(wrk_bad "$out") non-2xx or errors)"
	fi
}

workload() { # WORKLOAD
	local wl=$1 r cfg
	for r in $(seq "$ROUNDS"); do
		for cfg in "${CONFIGS[@]}"; do
			if measure "$wl" "$r" "$cfg"; then ok "workload $wl round $r config $cfg (${CFG_NAME[$cfg]})"; else bad "workload $wl round $r config $cfg (${CFG_NAME[$cfg]})"; fi
		done
	done
}

# ------------------------------------------------------------------ the fast server (loss step)
# Debian's nginx returning a fixed 3-byte 200 over plaintext keep-alive: A's node process tops out
# near 13k exchanges/s on one CPU, nginx serves several times that with bizprobe attached, so the
# loss step can run at the 50k/s the target names. Plaintext is captured by the same read/write/
# recvfrom/sendto/writev tracepoints. master_process off: one process, our child, that serves and
# is stopped by its pid like everything else (a master would respawn a worker stopped first, and
# a worker left behind by a killed master would keep serving).
start_fast_server() {
	local port
	port=$(free_port)
	mkdir -p "$WORK/nginx"
	cat >"$WORK/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		pid $WORK/nginx/nginx.pid;
		error_log $WORK/nginx/error.log warn;
		events { worker_connections 1024; }
		http {
			access_log off;
			client_body_temp_path $WORK/nginx/body;
			proxy_temp_path $WORK/nginx/proxy;
			fastcgi_temp_path $WORK/nginx/fastcgi;
			uwsgi_temp_path $WORK/nginx/uwsgi;
			scgi_temp_path $WORK/nginx/scgi;
			keepalive_requests 1000000000;
			keepalive_timeout 300s;
			server {
				listen 127.0.0.1:$port;
				location / { default_type text/plain; return 200 "ok\n"; }
			}
		}
	EOF
	taskset -c $SRV_CPU nginx -c "$WORK/nginx.conf" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" \
		>/dev/null 2>"$WORK/srv.err" &
	SRV=$!
	bg_started "$SRV" nginx
	SRV_PORT=$port
	SRV_URL=http://127.0.0.1:$port/
	for _ in $(seq 100); do
		[ "$(curl -s --max-time 1 "$SRV_URL")" = ok ] && return 0
		kill -0 "$SRV" 2>/dev/null || break
		sleep 0.1
	done
	log "nginx did not start: $(cat "$WORK/srv.err" "$WORK/nginx/error.log" 2>/dev/null | tail -3)"
	return 1
}

# ------------------------------------------------------------------ the other figures
wrk_total() { awk '/ requests in / {print $1}' "$1"; }
# loss_load SECONDS [DEPTH]: wrk -t1 -c64 on the load CPU against SRV_URL into loss.out; DEPTH > 1
# pipelines that many requests per write (bench/pipeline.lua).
loss_load() {
	local args=(-t1 -c64 -d"$1s" "$SRV_URL")
	[ "${2:-1}" -gt 1 ] && args=(-t1 -c64 -d"$1s" -s "$BENCH/pipeline.lua" "$SRV_URL" -- "$2")
	taskset -c $GEN_CPU wrk "${args[@]}" >"$WORK/loss.out" 2>&1
}
# loss_mark: the tracer's server exchanges and ring-buffer records before a loss run's load.
E0=0 R0=0
loss_mark() {
	E0=$(metric "$MURL" "$SERVER_EX") R0=$(metric "$MURL" '^bizprobe_ringbuf_records_total')
}
# record_loss RUN: what wrk and the tracer's /metrics say after a loss run (counters since
# loss_mark), all from one scrape kept in WORK/loss-metrics.txt. The duration is wrk's own
# (requests / Requests/sec).
record_loss() {
	local n rps e lost lost_bytes snap=$WORK/loss-metrics.txt
	curl -s --max-time 5 "$MURL" >"$snap"
	n=$(wrk_total "$WORK/loss.out") rps=$(wrk_rps "$WORK/loss.out")
	e=$(($(sum_samples "$SERVER_EX" <"$snap") - E0))
	lost=$(sum_samples '^bizprobe_events_lost_total' <"$snap")
	lost_bytes=$(sum_samples '^bizprobe_lost_bytes_total' <"$snap")
	rec L "$1" 3 records "$(($(sum_samples '^bizprobe_ringbuf_records_total' <"$snap") - R0))"
	rec L "$1" 3 wrk_requests "${n:-0}"
	rec L "$1" 3 rps "${rps:-0}"
	rec L "$1" 3 seconds "$(awk -v n="${n:-0}" -v r="${rps:-0}" 'BEGIN {if (r > 0) printf "%.3f\n", n / r; else print 0}')"
	rec L "$1" 3 bad "$(wrk_bad "$WORK/loss.out")"
	rec L "$1" 3 exchanges "$e"
	rec L "$1" 3 lost "$lost"
	rec L "$1" 3 lost_bytes "$lost_bytes"
	rec L "$1" 3 parse_errors "$(sum_samples '^bizprobe_http_parse_errors_total' <"$snap")"
	log "loss run $1: wrk $n requests at ${rps:-?}/s, bizprobe $e exchanges, lost $lost events, $lost_bytes bytes"
	[ "${n:-0}" -gt 0 ] && [ "$e" -gt 0 ]
}

# Loss runs (rec L RUN): 1 the target, nginx at >= 50k exchanges/s for LOSS_S with the default
# ring buffer; 2 forced, the same load against a 4 KiB ring buffer, whose losses must be counted;
# 3 the TLS path, A's node HTTPS server at saturation for TLS_S.
loss_test() {
	local v rc=0
	start_fast_server || return 1
	rec L 0 0 server "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	rec L 0 0 depth "$LOSS_DEPTH"
	rec L 0 0 connections 64
	# 1. the target
	SAMPLES=$WORK/loss-samples.txt
	start_tracer 3 A || { SAMPLES=''; stop_tracer; stop "$SRV"; return 1; }
	SAMPLES=''
	loss_mark
	rec L 1 3 t0 "$(date +%s.%N)"
	loss_load "$LOSS_S" "$LOSS_DEPTH"
	rec L 1 3 t1 "$(date +%s.%N)"
	sleep 1 # let bizprobe drain what the load left in its ring buffer
	record_loss 1 || rc=1
	stop_tracer
	# 2. forced
	start_tracer 3 A --ringbuf 4096 || { stop_tracer; stop "$SRV"; return 1; }
	loss_mark
	loss_load "$FORCE_S" "$LOSS_DEPTH"
	sleep 1
	record_loss 2 || rc=1
	grep -E '^bizprobe_(events_lost_total|lost_bytes_total|exchanges_total|http_parse_errors_total|http_truncated)' \
		"$WORK/loss-metrics.txt" >"$WORK/forced-metrics.txt"
	stop_tracer
	stop "$SRV"
	v=$(awk -F'\t' '$1 == "L" && $2 == 2 && $4 == "lost" {print $5}' "$RES")
	[ "${v:-0}" -gt 0 ] || { log "forced loss run counted no loss"; rc=1; }
	# 3. TLS
	start_a_server 1 || return 1
	start_tracer 3 A || { stop_tracer; stop "$SRV"; return 1; }
	loss_mark
	loss_load "$TLS_S" 1
	sleep 1
	record_loss 3 || rc=1
	stop_tracer
	stop "$SRV"
	return $rc
}

attach_test() {
	local v
	start_a_server 1 || return 1
	# a running node process that has served TLS (its OpenSSL is mapped and used)
	taskset -c $GEN_CPU wrk -t1 -c4 -d1s "$SRV_URL" >/dev/null 2>&1
	v=$(taskset -c $GEN_CPU node "$BENCH/attach-time.js" "$BIN" "$SRV" "$ATTACH_TRIALS") || { stop "$SRV"; return 1; }
	stop "$SRV"
	rec T 1 3 attach_json "$v"
	log "attach: $v"
}

# Run time in ns of every thread of a process (schedstat: finer than the 10 ms ticks of stat), and
# how often its threads were switched in.
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }

# What bizprobe costs a quiet host: attached to A's server with no requests, scraped every second.
idle_test() {
	local n0 n1 w0 w1
	start_a_server 3 || return 1
	start_tracer 3 A || { stop_tracer; stop "$SRV"; return 1; }
	sleep 1
	n0=$(run_ns "$TRACER") w0=$(switches "$TRACER")
	sleep "$IDLE_S"
	n1=$(run_ns "$TRACER") w1=$(switches "$TRACER")
	stop_tracer
	stop "$SRV"
	rec I 1 3 seconds "$IDLE_S"
	rec I 1 3 cpu_s "$(awk -v a="$n0" -v b="$n1" 'BEGIN {print (b - a) / 1e9}')"
	rec I 1 3 switches "$((w1 - w0))"
	log "idle: $(((n1 - n0) / 1000)) us of CPU and $((w1 - w0)) switches in ${IDLE_S} s"
	[ "$n1" -gt 0 ]
}

# What node mode (the DaemonSet) costs a quiet node: `run --node` selecting nothing beside
# NODE_PROCS idle processes, so that all its work is the look once a second at the host's processes.
nodeidle_test() {
	local n0 n1 e0 e1 port tracer i url ok=0
	local -a idle=()
	for i in $(seq "$NODE_PROCS"); do
		sleep 3600 &
		idle+=($!)
	done
	port=$(free_port)
	url=http://127.0.0.1:$port/metrics
	taskset -c $GEN_CPU "$BIN" run --node --select comm=selects-none --listen "127.0.0.1:$port" \
		--state-dir "$WORK/nodeidle-state" >/dev/null 2>"$WORK/nodeidle.err" &
	tracer=$!
	bg_started "$tracer" nodeidle-tracer
	if wait_line "$WORK/nodeidle.err" "attached:" 60 "$tracer"; then
		sleep 2
		n0=$(run_ns "$tracer") e0=$(metric "$url" '^bizprobe_processes_examined_total$')
		sleep "$IDLE_S"
		n1=$(run_ns "$tracer") e1=$(metric "$url" '^bizprobe_processes_examined_total$')
		rec N 1 3 seconds "$IDLE_S"
		rec N 1 3 processes "$NODE_PROCS"
		rec N 1 3 cpu_s "$(awk -v a="$n0" -v b="$n1" 'BEGIN {print (b - a) / 1e9}')"
		rec N 1 3 examined "$((e1 - e0))"
		log "node idle: $(((n1 - n0) / 1000)) us of CPU in ${IDLE_S} s beside $NODE_PROCS processes, $((e1 - e0)) examined"
		[ "$n1" -gt 0 ] && ok=1
	else
		log "node idle: bizprobe did not attach: $(cat "$WORK/nodeidle.err")"
	fi
	stop "$tracer"
	kill "${idle[@]}" 2>/dev/null
	wait "${idle[@]}" 2>/dev/null
	[ "$ok" = 1 ]
}

render_test() {
	local v
	v=$(taskset -c $GEN_CPU "$BENCH/.build/render_bench" "$RENDER_ITERS") || return 1
	rec R 1 0 flat "$(echo "$v" | sed -n 1p)"
	rec R 1 0 mixed "$(echo "$v" | sed -n 2p)"
	log "render: $(echo "$v" | tr '\n' ' ')"
}

# The userspace stages alone: pipeline_bench replays A's and B's bytes through the tracker and the
# Stripe semantics (it checks its own counts and exits non-zero when they are wrong).
pipeline_test() {
	local out
	out=$(taskset -c $GEN_CPU build/bench/pipeline_bench "$PIPELINE_REPS") || return 1
	rec U 1 0 A "$(echo "$out" | grep '"workload":"A"')"
	rec U 1 0 B "$(echo "$out" | grep '"workload":"B"')"
	log "pipeline: $(echo "$out" | tr '\n' ' ')"
}

# perf_record NAME PID: PROFILE_S seconds of PID's samples into WORK/perf-NAME.data.
perf_record() { perf record -q -g -o "$WORK/perf-$1.data" -p "$2" -- sleep "$PROFILE_S" >/dev/null 2>&1; }
# perf_top NAME LINES: the top self-time symbols of WORK/perf-NAME.data into WORK/profile-NAME.txt.
perf_top() {
	perf report -i "$WORK/perf-$1.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
		grep '%' | head -"$2" >"$WORK/profile-$1.txt"
	[ -s "$WORK/profile-$1.txt" ]
}

# perf profiles for RESULTS.md: bizprobe (config 3) and the traced server under A's load, and
# bizprobe under B's, where it reads Stripe bodies.
profile_test() {
	[ "$PROFILE_S" -gt 0 ] || return 0
	start_a_server 1 || return 1
	start_tracer 3 A || { stop_tracer; stop "$SRV"; return 1; }
	taskset -c $GEN_CPU wrk -t1 -c32 -d"$((2 * PROFILE_S + 4))s" "$SRV_URL" >/dev/null 2>&1 &
	local w=$!
	bg_started "$w" wrk-profile
	sleep 1
	perf_record bizprobe "$TRACER"
	perf_record server "$SRV"
	stop "$w"
	stop_tracer
	stop "$SRV"
	perf_top bizprobe 25 && perf_top server 30 || return 1
	perf report -i "$WORK/perf-server.data" --children --sort sym --stdio -g none 2>/dev/null |
		grep -E '%.*(uprobe|bpf_prog|handle_swbp|trace_call_bpf|perf_syscall|bpf_ringbuf|bpf_probe_read|syscall_trace)' | head -15 >"$WORK/profile-server-bpf.txt"
	[ "$DEMO_UP" = 1 ] || return 0
	start_b_server 1 || return 1
	start_tracer 3 B || { stop_tracer; stop "$SRV"; return 1; }
	nsx taskset -c $GEN_CPU wrk -t1 -c32 -d"$((PROFILE_S + 3))s" -s "$BENCH/tips.lua" "$SRV_URL" >/dev/null 2>&1 &
	w=$!
	bg_started "$w" wrk-profile-b
	sleep 1
	perf_record bizprobe-b "$TRACER"
	stop "$w"
	stop_tracer
	stop "$SRV"
	perf_top bizprobe-b 20
}

# The share of the traced server's CPU spent in the tracers' kernel paths (bench/tracer-share.awk),
# A and B at saturation, configurations 1-4 alternated, SHARE_S seconds of perf samples of the
# server each (rec H ROUND CONFIG share_A|share_B PERCENT). Untraced shows what the classification
# finds with no tracer (it should be ~0). B's throughput ratios are within its noise; this is not.
share_one() { # share_one WORKLOAD ROUND CONFIG
	local wl=$1 r=$2 cfg=$3 w v
	if [ "$wl" = B ]; then start_b_server 1 || return 1; else start_a_server 1 || return 1; fi
	start_tracer "$cfg" "$wl" || { stop_tracer; stop "$SRV"; return 1; }
	if [ "$wl" = B ]; then
		nsx taskset -c $GEN_CPU wrk -t1 -c32 -d"$((SHARE_S + 4))s" -s "$BENCH/tips.lua" "$SRV_URL" >/dev/null 2>&1 &
	else
		taskset -c $GEN_CPU wrk -t1 -c32 -d"$((SHARE_S + 4))s" "$SRV_URL" >/dev/null 2>&1 &
	fi
	w=$!
	bg_started "$w" wrk-share
	sleep 2
	perf record -q -g -o "$WORK/perf-share.data" -p "$SRV" -- sleep "$SHARE_S" >/dev/null 2>&1
	stop "$w"
	stop_tracer
	stop "$SRV"
	v=$(perf script -i "$WORK/perf-share.data" -F comm,tid,ip,sym 2>/dev/null | awk -f "$BENCH/tracer-share.awk")
	# Where bizprobe's share goes (the last round's is kept): time including children.
	[ "$cfg" = 3 ] && perf report -i "$WORK/perf-share.data" --children --sort sym --stdio -g none 2>/dev/null |
		grep -E '%.*\[k\] (asm_exc_int3|irqentry_exit_to_user_mode|uprobe_notify_resume|__x64_sys_uretprobe|uprobe_handle_trampoline|syscall_trace_enter|syscall_exit_work|perf_syscall_(enter|exit)|trace_call_bpf|bpf_prog_|bpf_ringbuf|bpf_probe_read|__check_object_size|lookup_nulls_elem_raw|bpf_task_storage_get)' |
		head -30 >"$WORK/share-bizprobe-$wl.txt"
	rm -f "$WORK/perf-share.data"
	[ "$(echo "$v" | awk '{print $2}')" -gt 0 ] || { log "share: no samples of the server"; return 1; }
	# A tracer whose paths are not found means the symbol list no longer matches this kernel.
	[ "$cfg" = 1 ] || [ "$(echo "$v" | awk '{print ($1 > 0)}')" = 1 ] ||
		{ log "share: no tracer path in the ${CFG_NAME[$cfg]} server's stacks (bench/tracer-share.awk)"; return 1; }
	rec H "$r" "$cfg" "share_$wl" "$(echo "$v" | awk '{print $3}')"
	SHARE_LOG="$SHARE_LOG ${CFG_NAME[$cfg]}=$(echo "$v" | awk '{print $3}')%"
}
share_test() {
	local wl r cfg
	for wl in A B; do
		[ "$wl" = B ] && [ "$DEMO_UP" != 1 ] && continue
		SHARE_LOG=''
		for r in $(seq "$SHARE_ROUNDS"); do
			for cfg in "${CONFIGS[@]}"; do
				[ "$cfg" = 5 ] && continue # prom-client's work is the app's own code, not a kernel path
				share_one "$wl" "$r" "$cfg" || return 1
			done
		done
		log "server CPU in tracer paths, $wl:$SHARE_LOG"
	done
}

# BPF time per request of the tracers' programs (kernel.bpf_stats_enabled: each program's run count
# and total run time) at saturation, floor (config 2) and bizprobe (config 3), for A (node's own
# OpenSSL), B (the demo app, when its env is up) and P (a Python HTTPS server: libssl.so.3). Its own
# step because the statistics cost two clock reads per program run, which must not touch the
# throughput runs. Writes WORK/bpfcost-WL-CFG.txt (per program: runs per request, ns per run) and
# records the totals.
# Programs are told by bizprobe's names (tp_, up_, urp_, rtp_): only one tracer may run (a name
# seen twice fails the step), and the syscall tracepoints count every process's calls (wrk's too),
# as they cost.
bpfcost_one() { # WORKLOAD CONFIG: A (node's OpenSSL), B (the demo app), P (Python on libssl.so.3)
	local wl=$1 cfg=$2 reqs s=$((PROFILE_S > 0 ? PROFILE_S : 1)) port load=()
	case $wl in
	A) start_a_server 1 || return 1 ;;
	B) start_b_server 1 || return 1 ;;
	P)
		port=$(free_port)
		taskset -c $SRV_CPU /usr/bin/python3 "$BENCH/bystander_tls.py" serve "$port" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/srv.err" 2>&1 &
		SRV=$!
		bg_started "$SRV" p-server
		SRV_URL=https://127.0.0.1:$port/
		wait_line "$WORK/srv.err" listening 10 "$SRV" || return 1
		;;
	esac
	start_tracer "$cfg" "$wl" || { stop_tracer; stop "$SRV"; return 1; }
	case $wl in
	A) load=(taskset -c $GEN_CPU wrk -t1 -c32 -d"${s}s" "$SRV_URL") ;;
	B) load=(nsx taskset -c $GEN_CPU wrk -t1 -c32 -d"${s}s" -s "$BENCH/tips.lua" "$SRV_URL") ;;
	P) load=(taskset -c $GEN_CPU wrk -t1 -c1 -d"${s}s" "$SRV_URL") ;; # one connection: a serial server
	esac
	BPF_STATS_ON=1
	sysctl -qw kernel.bpf_stats_enabled=1
	"${load[@]}" >"$WORK/wrk-bpfcost.txt" 2>&1
	bpftool prog show -j >"$WORK/progs-$wl-$cfg.json" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled=0
	BPF_STATS_ON=0
	reqs=$(wrk_total "$WORK/wrk-bpfcost.txt")
	node -e '
const [file, reqs] = process.argv.slice(1);
const progs = JSON.parse(require("fs").readFileSync(file, "utf8"))
  .filter((p) => /^(tp|up|urp|rtp)_/.test(p.name || "") && p.run_cnt > 0);
const names = progs.map((p) => p.name);
if (new Set(names).size !== names.length) {
  console.error("bench: another bizprobe is loaded beside the measured one; its programs would be counted");
  process.exit(1);
}
let total = 0;
for (const p of progs.sort((a, b) => b.run_time_ns - a.run_time_ns)) {
  total += p.run_time_ns;
  console.log(`${p.name.padEnd(16)} ${(p.run_cnt / reqs).toFixed(2).padStart(6)} runs/req ${(p.run_time_ns / p.run_cnt).toFixed(0).padStart(6)} ns/run ${(p.run_time_ns / reqs).toFixed(0).padStart(6)} ns/req`);
}
console.log(`total ${(total / reqs).toFixed(0)} ns/req over ${reqs} requests`);
'  "$WORK/progs-$wl-$cfg.json" "${reqs:-0}" >"$WORK/bpfcost-$wl-$cfg.txt" || { stop_tracer; stop "$SRV"; return 1; }
	stop_tracer
	stop "$SRV"
	rec P 1 "$cfg" "bpf_ns_per_req_$wl" "$(awk '/^total/ {print $2}' "$WORK/bpfcost-$wl-$cfg.txt")"
}
bpfcost_test() {
	local wl cfg
	for wl in A B P; do
		[ "$wl" = B ] && [ "$DEMO_UP" != 1 ] && continue # B needs the demo env (its workload step)
		for cfg in 2 3; do
			bpfcost_one "$wl" "$cfg" || return 1
		done
		log "BPF ns per request, $wl: floor $(tail -1 "$WORK/bpfcost-$wl-2.txt"); bizprobe $(tail -1 "$WORK/bpfcost-$wl-3.txt")"
	done
	[ -n "$(awk -F'\t' '$1 == "P" && $3 == 3 && $4 == "bpf_ns_per_req_A" && $5 > 0' "$RES")" ]
}

# ------------------------------------------------------------------ bystanders
# What a process bizprobe does NOT trace pays while bizprobe traces another one on the same host:
# the first question of an SRE deploying on a shared node. Two bystanders, timed to completion:
#   dd:  `dd bs=1` from /dev/zero to /dev/null (small reads and writes: a syscall-bound process)
#   tls: bench/bystander_tls.py, HTTPS GETs over one keep-alive connection between a Python
#        client and a Python server, both on the host's libssl.so.3 (the library bizprobe probes)
# Configurations, alternated within each round: 1 no bizprobe; 2 `bizprobe run --pid` on an idle
# node process (the default socket hooks, auto: libc's for node); 3 `bizprobe run --exe` with
# that node binary (its idle process running: syscall tracepoints); 4 the syscall hooks' floor,
# `bizprobe trace --pid --empty-probes --socket-hooks syscalls`; 5 `bizprobe run --pid
# --socket-hooks syscalls`; 6 `bizprobe run --node --select comm=node` (the DaemonSet's mode:
# node's processes through their libc). The bystanders on CPU 0, the rest on CPU 1.
BYS_CFG_NAME=([1]=none [2]=run-pid [3]=run-exe [4]=empty-pid-syscalls [5]=run-pid-syscalls [6]=run-node)
bystander_start() { # CONFIG: starts the idle target and the tracer the configuration needs
	local port
	BYS_TARGET='' TRACER=''
	[ "$1" = 1 ] && return 0
	taskset -c $GEN_CPU node -e 'require("https"); setInterval(() => {}, 1000)' &
	BYS_TARGET=$!
	bg_started "$BYS_TARGET" bystander-target
	port=$(free_port)
	( # exec: the pid kept is bizprobe's own, so that stop reaches it
		case $1 in
		2) exec taskset -c $GEN_CPU "$BIN" run --pid "$BYS_TARGET" --listen "127.0.0.1:$port" --state-dir "$WORK/bys-state-$1" ;;
		3) exec taskset -c $GEN_CPU "$BIN" run --exe "$(readlink -f "$(command -v node)")" --listen "127.0.0.1:$port" --state-dir "$WORK/bys-state-$1" ;;
		4) exec taskset -c $GEN_CPU "$BIN" trace --pid "$BYS_TARGET" --empty-probes --socket-hooks syscalls ;;
		5) exec taskset -c $GEN_CPU "$BIN" run --pid "$BYS_TARGET" --socket-hooks syscalls --listen "127.0.0.1:$port" --state-dir "$WORK/bys-state-$1" ;;
		6) exec taskset -c $GEN_CPU "$BIN" run --node --select comm=node --listen "127.0.0.1:$port" --state-dir "$WORK/bys-state-$1" ;;
		esac
	) >/dev/null 2>"$WORK/tracer.err" &
	TRACER=$!
	bg_started "$TRACER" bystander-tracer
	wait_line "$WORK/tracer.err" 'bizprobe: attached:' 30 "$TRACER" || { log "bystander tracer: $(tail -2 "$WORK/tracer.err")"; return 1; }
}
bystander_stop() {
	stop "$TRACER" INT
	stop "$BYS_TARGET"
	TRACER='' BYS_TARGET=''
}
bystander_test() {
	local r cfg s t0 t1 port srv dd_n=$((SMOKE ? 100000 : 2000000)) tls_n=$((SMOKE ? 200 : 15000))
	port=$(free_port)
	taskset -c $GEN_CPU /usr/bin/python3 "$BENCH/bystander_tls.py" serve "$port" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/bys-srv.out" 2>&1 &
	srv=$!
	bg_started "$srv" bystander-tls-server
	wait_line "$WORK/bys-srv.out" listening 10 "$srv" || { log "bystander TLS server: $(cat "$WORK/bys-srv.out")"; return 1; }
	for r in $(seq "$ROUNDS"); do
		for cfg in 1 2 3 4 5 6; do
			bystander_start "$cfg" || { bystander_stop; stop "$srv"; return 1; }
			t0=$(date +%s.%N)
			taskset -c $SRV_CPU dd if=/dev/zero of=/dev/null bs=1 count="$dd_n" 2>/dev/null
			t1=$(date +%s.%N)
			rec Y "$r" "$cfg" dd_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}')"
			s=$(taskset -c $SRV_CPU /usr/bin/python3 "$BENCH/bystander_tls.py" get "$port" "$tls_n") || { bystander_stop; stop "$srv"; return 1; }
			rec Y "$r" "$cfg" tls_s "$s"
			log "bystanders round $r ${BYS_CFG_NAME[$cfg]}: dd $(awk -F'\t' -v r="$r" -v c="$cfg" '$1 == "Y" && $2 == r && $3 == c && $4 == "dd_s" {print $5}' "$RES") s, tls $s s"
			bystander_stop
		done
	done
	stop "$srv"
	[ -n "$(awk -F'\t' '$1 == "Y" && $3 == 2 && $4 == "tls_s" && $5 > 0' "$RES")" ]
}

step() { # step NAME FUNCTION...
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

# ------------------------------------------------------------------ main
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $WORK; $([ "$SMOKE" = 1 ] && echo smoke || echo full) run: $ROUNDS round(s) x ${DUR}s per measurement"
step setup setup || { log "setup failed"; printf '%d passed, %d failed\n' "$PASS" "$FAIL"; exit 1; }

ONLY=" ${BENCH_ONLY:-A C D B attach idle nodeidle render pipeline loss profile share bpfcost bystander} " # debugging: a subset of the steps
want() { [[ "$ONLY" == *" $1 "* ]]; }
want A && workload A
# C runs A's server at half of A's untraced capacity, measured just now (median of the rounds).
C_RATE=$(awk -F'\t' '$1 == "A" && $3 == 1 && $4 == "rps" {print $5}' "$RES" | sort -n |
	awk '{v[NR] = $1} END {if (NR) printf "%d\n", v[int((NR + 1) / 2)] / 2; else print 500}')
[ "$SMOKE" = 1 ] && C_RATE=500
rec C 0 0 rate "$C_RATE"
log "C: fixed rate $C_RATE req/s"
want C && workload C
# D: C again at half of the SLOWEST configuration's A capacity, so that no configuration is saturated
# and the added latency is per request, not queueing.
D_RATE=$(for c in 1 2 3 4 5; do awk -F'\t' -v c=$c '$1 == "A" && $3 == c && $4 == "rps" {print $5}' "$RES" | sort -n |
	awk '{v[NR] = $1} END {if (NR) printf "%d\n", v[int((NR + 1) / 2)] / 2}'; done | sort -n | head -1)
[ "$SMOKE" = 1 ] || [ -z "$D_RATE" ] && D_RATE=300
rec D 0 0 rate "$D_RATE"
log "D: fixed rate $D_RATE req/s"
want D && workload D
want B && step "demo env up ($NS)" demo_up && workload B
want attach && step "attach time" attach_test
want idle && step "idle cost" idle_test
want nodeidle && step "node mode's idle cost" nodeidle_test
want render && step "/metrics render" render_test
want pipeline && step "userspace pipeline" pipeline_test
want loss && step "lost events" loss_test
want profile && step "perf profiles" profile_test
want share && step "server CPU in tracer paths" share_test
want bpfcost && step "BPF time per request" bpfcost_test
want bystander && step "bystanders" bystander_test
if [ "$DEMO_UP" = 1 ]; then
	scripts/demo-env.sh down >/dev/null 2>&1 && DEMO_UP=0
fi
END=$(date +%s)

REPORT_ARGS=(--results "$RES" --work "$WORK" --seconds "$((END - START))" --load-before "$LOAD_BEFORE"
	--load-after "$(cut -d' ' -f1-3 /proc/loadavg)" --rounds "$ROUNDS" --duration "$DUR")
if [ "$SMOKE" = 1 ] || [ -n "${BENCH_ONLY:-}" ]; then
	step report node "$BENCH/report.js" "${REPORT_ARGS[@]}" --out "$WORK/RESULTS.md"
else
	step report node "$BENCH/report.js" "${REPORT_ARGS[@]}" --out "$BENCH/RESULTS.md"
fi
printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" = 0 ]

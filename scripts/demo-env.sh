#!/usr/bin/env bash
# The demo environment: a network namespace where api.stripe.com is a local Stripe stand-in, and the
# demo fan platform (examples/fan-platform) runs with the stripe SDK's production defaults.
#
#   scripts/demo-env.sh up       create netns, CA + cert, start stand-in and app, wait until both answer
#   scripts/demo-env.sh down     stop both, delete the netns, /etc/netns/bizprobe-demo and the run dir
#   scripts/demo-env.sh status   exit 0 when all is up, 3 when all is down, 1 when partly up
#   scripts/demo-env.sh exec CMD run CMD inside the netns (e.g. node examples/traffic/mix.js)
#
# Run dir (DEMO_RUN_DIR, default /run/bizprobe-demo): ca.crt/ca.key, api.stripe.com.crt/.key,
# secrets.env (fake sk_test_ key and whsec_ secret, 0600), app.pid (what bizprobe attaches to),
# standin.pid, app.log, standin.log. Both `up` and `down` are idempotent. Needs root, ip, openssl, node.
set -euo pipefail

NS=${DEMO_NETNS:-bizprobe-demo}
RUN=${DEMO_RUN_DIR:-/run/bizprobe-demo}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APP_DIR=$ROOT/examples/fan-platform
STANDIN=$ROOT/examples/stripe-standin/standin.js
APP_PORT=${DEMO_APP_PORT:-3000}
CONTROL_PORT=${DEMO_CONTROL_PORT:-12112}
NODE=${NODE:-node}

log() { printf 'demo-env: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
nsexec() { ip netns exec "$NS" "$@"; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

make_certs() {
	[ -s "$RUN/api.stripe.com.crt" ] && [ -s "$RUN/ca.crt" ] && return 0
	log "generating a throw-away CA and a certificate for api.stripe.com in $RUN"
	local tmp
	tmp=$(mktemp -d)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj "/O=bizprobe demo/CN=bizprobe demo CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=api.stripe.com" -keyout "$tmp/srv.key" -out "$tmp/srv.csr" 2>/dev/null
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=DNS:api.stripe.com" >"$tmp/ext.cnf"
	openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
		-days 30 -extfile "$tmp/ext.cnf" -out "$tmp/srv.crt" 2>/dev/null
	install -m 0600 "$tmp/ca.key" "$RUN/ca.key"
	install -m 0644 "$tmp/ca.crt" "$RUN/ca.crt"
	install -m 0600 "$tmp/srv.key" "$RUN/api.stripe.com.key"
	install -m 0644 "$tmp/srv.crt" "$RUN/api.stripe.com.crt"
	rm -rf "$tmp"
}

make_secrets() {
	[ -s "$RUN/secrets.env" ] && return 0
	# Fake test-mode credentials, new for every environment: they only mean something to the stand-in.
	(
		umask 077
		printf 'STRIPE_SECRET_KEY=sk_test_bizprobeDemo%s\nSTRIPE_WEBHOOK_SECRET=whsec_%s\n' \
			"$(openssl rand -hex 12)" "$(openssl rand -hex 16)" >"$RUN/secrets.env"
	)
}

make_netns() {
	if ! ns_exists; then
		log "creating network namespace $NS"
		ip netns add "$NS"
	fi
	nsexec ip link set lo up
	mkdir -p "/etc/netns/$NS"
	# `ip netns exec` bind-mounts this over /etc/hosts for everything started in the namespace.
	printf '%s\n' "127.0.0.1 localhost" "::1 localhost ip6-localhost ip6-loopback" \
		"127.0.0.1 api.stripe.com" >"/etc/netns/$NS/hosts"
}

# start NAME CMD...: run CMD in the netns, detached, with secrets.env loaded; NAME.pid is the pid of
# the node process itself (sh execs it), NAME.log gets stdout and stderr.
start() {
	local name=$1
	shift
	if alive "$RUN/$name.pid"; then
		log "$name already running (pid $(cat "$RUN/$name.pid"))"
		return 0
	fi
	rm -f "$RUN/$name.pid"
	# shellcheck disable=SC2016 # expanded by the inner sh
	setsid -f ip netns exec "$NS" sh -c 'set -a; . "$0/secrets.env"; set +a; echo $$ >"$0/$1.pid"; shift; exec "$@"' \
		"$RUN" "$name" "$@" </dev/null >>"$RUN/$name.log" 2>&1
	for _ in $(seq 50); do
		[ -s "$RUN/$name.pid" ] && break
		sleep 0.1
	done
	[ -s "$RUN/$name.pid" ] || die "$name did not start (see $RUN/$name.log)"
	log "$name started (pid $(cat "$RUN/$name.pid"))"
}

# Probes run inside the netns: name resolution, TLS to the stand-in with the demo CA, the app.
probe_js='
const [what, port] = process.argv.slice(1);
const done = (ok, msg) => { console.log(msg); process.exit(ok ? 0 : 1); };
if (what === "dns") require("dns").lookup("api.stripe.com", (e, a) => done(!e && a === "127.0.0.1", e ? e.code : a));
if (what === "stripe") require("https").get("https://api.stripe.com/v1/charges", (r) => { r.resume(); done(r.statusCode === 401, "HTTP " + r.statusCode); }).on("error", (e) => done(false, e.code || e.message));
if (what === "control") require("http").get({ host: "127.0.0.1", port, path: "/health" }, (r) => { r.resume(); done(r.statusCode === 200, "HTTP " + r.statusCode); }).on("error", (e) => done(false, e.code));
if (what === "app") require("http").get({ host: "127.0.0.1", port, path: "/healthz" }, (r) => { r.resume(); done(r.statusCode === 200, "HTTP " + r.statusCode); }).on("error", (e) => done(false, e.code));
'
probe() { NODE_EXTRA_CA_CERTS=$RUN/ca.crt nsexec "$NODE" -e "$probe_js" "$@" 2>&1; }

wait_for() { # wait_for WHAT [PORT]
	local out
	for _ in $(seq 100); do
		if out=$(probe "$@"); then
			return 0
		fi
		sleep 0.1
	done
	log "$1 not answering: $out"
	return 1
}

cmd_up() {
	[ "$(id -u)" = 0 ] || die "needs root (ip netns)"
	command -v "$NODE" >/dev/null || die "node not found"
	mkdir -p "$RUN"
	chmod 0755 "$RUN"
	if [ ! -d "$APP_DIR/node_modules" ]; then
		log "installing the app's dependencies from its lockfile (npm ci)"
		(cd "$APP_DIR" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2
	fi
	make_certs
	make_secrets
	make_netns
	local where
	where=$(probe dns) || die "node in $NS resolves api.stripe.com to '$where', not 127.0.0.1"
	log "node in $NS resolves api.stripe.com to $where"
	start standin env STANDIN_CERT="$RUN/api.stripe.com.crt" STANDIN_KEY="$RUN/api.stripe.com.key" \
		CONTROL_PORT="$CONTROL_PORT" WEBHOOK_URL="http://127.0.0.1:$APP_PORT/webhooks/stripe" \
		"$NODE" "$STANDIN"
	wait_for control "$CONTROL_PORT" || { tail -n 20 "$RUN/standin.log" >&2; exit 1; }
	wait_for stripe || { tail -n 20 "$RUN/standin.log" >&2; exit 1; }
	start app env NODE_EXTRA_CA_CERTS="$RUN/ca.crt" HOST=127.0.0.1 PORT="$APP_PORT" \
		"$NODE" "$APP_DIR/server.js"
	wait_for app "$APP_PORT" || { tail -n 20 "$RUN/app.log" >&2; exit 1; }
	log "up: app pid $(cat "$RUN/app.pid") on 127.0.0.1:$APP_PORT in netns $NS; stand-in pid $(cat "$RUN/standin.pid") (api.stripe.com:443, control 127.0.0.1:$CONTROL_PORT)"
}

stop_pidfile() {
	local f=$1 pid
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$f"
}

cmd_down() {
	[ "$(id -u)" = 0 ] || die "needs root (ip netns)"
	stop_pidfile "$RUN/app.pid"
	stop_pidfile "$RUN/standin.pid"
	if ns_exists; then
		# Anything else still running in the namespace was started there through this script.
		local pid
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill -TERM "$pid" 2>/dev/null || true
		done
		sleep 0.3
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$NS"
		log "deleted network namespace $NS"
	fi
	rm -rf "/etc/netns/$NS"
	rmdir /etc/netns 2>/dev/null || true
	rm -rf "$RUN"
	log "down"
}

cmd_status() {
	local up=0 total=4 s
	if ns_exists; then up=$((up + 1)); s=yes; else s=no; fi
	echo "netns $NS: $s"
	for n in standin app; do
		if alive "$RUN/$n.pid"; then up=$((up + 1)); s="running (pid $(cat "$RUN/$n.pid"))"; else s="not running"; fi
		echo "$n: $s"
	done
	if ns_exists && probe app "$APP_PORT" >/dev/null && probe stripe >/dev/null; then
		up=$((up + 1)); s=yes
	else
		s=no
	fi
	echo "answering: $s"
	[ "$up" = "$total" ] && return 0
	[ "$up" = 0 ] && return 3
	return 1
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
exec)
	shift
	ns_exists || die "netns $NS does not exist: run '$0 up' first"
	exec ip netns exec "$NS" "$@"
	;;
*)
	echo "usage: $0 up|down|status|exec CMD..." >&2
	exit 2
	;;
esac

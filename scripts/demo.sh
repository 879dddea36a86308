#!/usr/bin/env bash
# `make demo`: the fan platform (Express + the real Stripe SDK) in a network namespace talking to
# a Stripe stand-in, live traffic, and bizprobe attached to the app from outside. Prints the
# app's HTTP exchanges as they happen and a business summary every few seconds, with the
# metrics URL. Ctrl-C removes everything (processes, netns).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${DEMO_RUN_DIR:-/run/bizprobe-demo}
LISTEN=${DEMO_METRICS_LISTEN:-127.0.0.1:9464}
SUMMARY_EVERY=${DEMO_SUMMARY_SECONDS:-5}
TOKEN=${METRICS_AUTH_TOKEN:-demo-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (BPF and network namespaces)" >&2; exit 1; }

# Ctrl-C goes to the terminal's foreground process group. Under `make demo` that group holds make,
# which dies of the SIGINT (make: *** Error 130) whatever the demo does. So on a terminal the demo
# runs as a job of its own that takes the terminal (job control, `fg`): Ctrl-C reaches only the
# demo, which cleans up and exits 0, and so does make.
if [ -t 0 ] && [ -z "${DEMO_FOREGROUND_JOB:-}" ]; then
	set -m
	DEMO_FOREGROUND_JOB=1 "$0" "$@" &
	fg %1 >/dev/null
	exit $?
fi

pids=()
# cleanup [STATUS]: Ctrl-C and SIGTERM are the way to stop the demo (status 0); on any other exit
# the status it had is kept, so a failed start still fails.
cleanup() {
	local rc=${1:-$?}
	trap - INT TERM EXIT
	echo
	echo "demo: stopping"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	scripts/demo-env.sh down >/dev/null 2>&1 || true
	echo "demo: everything removed"
	exit "$rc"
}
trap 'cleanup 0' INT TERM
trap cleanup EXIT

scripts/demo-env.sh up
app_pid=$(cat "$RUN/app.pid")
# shellcheck disable=SC1091
STRIPE_WEBHOOK_SECRET=$(. "$RUN/secrets.env" && echo "$STRIPE_WEBHOOK_SECRET")

# One bizprobe: metrics for Prometheus, and the live exchange view on stdout.
# The rules file turns the app's own requests (registrations, views, funnels, ...) into events;
# users are pseudonymized under a salt kept in the state dir (KPIs, counters, MRR).
STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK_SECRET METRICS_AUTH_TOKEN=$TOKEN \
	build/bizprobe run --pid "$app_pid" --listen "$LISTEN" --trace --action-timeout 10 \
	--rules examples/rules/fan-platform.yaml --state-dir "$RUN/state" &
pids+=($!)
for _ in $(seq 1 100); do
	curl -sf "http://$LISTEN/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

scripts/demo-env.sh exec node examples/traffic/mix.js --loop --interval-ms 700 \
	--expect "$RUN/live-expect.json" >/dev/null 2>&1 &
pids+=($!)

cat <<MSG

demo: bizprobe is attached to the fan platform (pid $app_pid); the app has no metrics code.
demo: metrics:  curl -H 'Authorization: Bearer $TOKEN' http://$LISTEN/metrics
demo: Ctrl-C to stop and clean up.

MSG

# A business summary from the metrics endpoint, as a dashboard would show it: payments and
# revenue from Stripe's traffic, then what the rules file made of the app's own requests.
summary() {
	curl -sf -H "Authorization: Bearer $TOKEN" "http://$LISTEN/metrics" | awk '
		function label(name,   r) {
			if (!match($0, name "=\"[^\"]*\"")) return ""
			return substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 3) }
		/^direct_fan_payment_attempts_total/ { att[label("status")] += $NF; total += $NF }
		/^direct_fan_payment_amounts_sum/ { rev = rev sprintf(" %s %.2f", label("currency"), $NF) }
		/^direct_fan_subscription_revenue/ { mrr = mrr sprintf(" %s %.2f", label("currency"), $NF) }
		/^direct_fan_subscriptions_created_total/ { subs = $NF }
		/^direct_fan_refunds_total/ { refunds += $NF }
		/^direct_fan_webhook_events_total/ { hooks += $NF }
		/^direct_fan_user_registrations_total/ { regs += $NF }
		/^direct_fan_content_views_total/ { views += $NF }
		/^direct_fan_content_uploads_total/ { uploads += $NF }
		/^direct_fan_content_engagement_duration_seconds_sum/ { eng_s = $NF }
		/^direct_fan_content_engagement_duration_seconds_count/ { eng_n = $NF }
		/^direct_fan_funnel_steps_total/ { steps += $NF }
		/^direct_fan_experiment_exposures_total/ { exposures += $NF }
		END {
			printf "== payments %d (succeeded %d, failed %d, requires_action %d) | revenue%s | MRR%s | subscriptions %d | refunds %d | webhooks %d\n",
				total, att["succeeded"], att["failed"], att["requires_action"], rev ? rev : " -", mrr ? mrr : " -", subs, refunds, hooks
			printf "== users: registrations %d | content views %d, uploads %d, engagement %d reports (%.0f s) | funnel steps %d | experiment exposures %d\n",
				regs, views, uploads, eng_n, eng_s, steps, exposures
		}'
}

while true; do
	sleep "$SUMMARY_EVERY"
	summary || true
done

"""End to end: the shipped alerts and dashboards on bizprobe's real data. A demo environment of its
own (netns bizprobe-alerts, run dir /run/bizprobe-alerts: never the other e2e tests' one), bizprobe
attached to the app with the demo's rules, a real Prometheus on the shipped prometheus.yml,
alerts.yml (for: shortened in a copy) and recording.yml, Debian's prometheus-alertmanager
delivering to a webhook receiver this test runs.

  healthy   only succeeded payments: no alert fires, the receiver gets nothing
  failing   two declined tips for each good one: HighPaymentFailureRate fires after its for:,
            Alertmanager delivers it; LowConversionRate does not (conversion is well above 2%)
  sign-ups  many registrations and no payment: the 24h conversion rate (the state store's KPI)
            falls below 2%, LowConversionRate fires after its for: and is delivered
  mix       examples/traffic/mix.js (every family), then every dashboard query and the guide's
            queries return data."""
import datetime
import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "deploy"))
import promenv  # noqa: E402
from harness import BIZPROBE, ROOT, SLOW, free_port, main  # noqa: E402

NETNS = "bizprobe-alerts"
RUN_DIR = "/run/bizprobe-alerts"
DEMO_ENV = os.path.join(ROOT, "scripts", "demo-env.sh")
DEMO = dict(os.environ, DEMO_NETNS=NETNS, DEMO_RUN_DIR=RUN_DIR)
MIX = os.path.join(ROOT, "examples", "traffic", "mix.js")
RULES = os.path.join(ROOT, "examples", "rules", "fan-platform.yaml")
TOKEN = "alerts-e2e-" + os.urandom(8).hex()
# The test's copy of alerts.yml has every for: divided by 60 (minutes become seconds):
# HighPaymentFailureRate 2s, BizprobeTargetMissing 10s (Prometheus starts scraping ~5s after
# it starts: a target missing for that long is not an alert), BizprobeNoExchanges 15s.
FOR_SCALE = 1 / 60
HIGH_FAILURE_FOR_S = 2
# Runs inside the netns: argv[1] fans register (e-mail sign-ups from a campaign), nothing else.
SIGNUPS = r'''
import json, os, sys, urllib.request
nonce = os.urandom(4).hex()
for i in range(int(sys.argv[1])):
    req = urllib.request.Request(
        "http://127.0.0.1:3000/api/register?utm_source=newsletter", method="POST",
        data=json.dumps({"email": "signup%d.%s@example.test" % (i, nonce), "role": "fan",
                         "registrationMethod": "email"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201, r.status
'''
# The guide's PromQL ("Key Metrics to Monitor", "Sample Grafana Queries", "Monitoring the
# monitoring"), verbatim. sentry_errors_total is Sentry's, not bizprobe's, and is left out.
GUIDE_QUERIES = [
    'direct_fan_active_users{period="24h",user_type="total"}',
    'direct_fan_subscription_revenue{currency="USD"}',
    'direct_fan_conversion_rate{period="30d"}',
    "rate(direct_fan_user_registrations_total[1h])",
    'rate(direct_fan_payment_attempts_total{status="succeeded"}[5m]) / \n'
    "rate(direct_fan_payment_attempts_total[5m]) * 100",
    "histogram_quantile(0.5, rate(direct_fan_payment_amounts_bucket[5m]))",
    'direct_fan_churn_rate{period="30d"}',
    "rate(direct_fan_content_uploads_total[1h])",
    "rate(direct_fan_content_views_total[1h])",
    "histogram_quantile(0.95, rate(direct_fan_content_engagement_duration_seconds_bucket[5m]))",
    'increase(direct_fan_payment_amounts_sum{currency="USD"}[30d])',
    "(increase(direct_fan_payment_amounts_sum[7d]) / "
    "increase(direct_fan_payment_amounts_sum[14d] offset 7d) - 1) * 100",
    'direct_fan_arpu{period="30d",user_segment="all_users"}',
    "rate(direct_fan_user_registrations_total[1h]) * 3600",
    "rate(direct_fan_platform_metrics_collection_duration_ms[5m])",
    "rate(business_events_total[5m])",
]
# Queries comparing with days ago: a fresh Prometheus has nothing there. They must return
# nothing, and the same query with its days shrunk to the seconds this test ran must return data.
HISTORY = re.compile(r"\boffset\s+\d+d\b")

# Runs inside the netns: tips (and a content view) against the app in the mode the test writes
# to MODE_FILE, until it says stop; writes what it did to STATE_FILE.
DRIVER = r'''
import json, sys, time, urllib.error, urllib.request
mode_file, state_file = sys.argv[1], sys.argv[2]
app = "http://127.0.0.1:3000"

def call(method, path, body=None):
    req = urllib.request.Request(app + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code

def tip(pm):
    return call("POST", "/api/tips", {"amount": 500, "currency": "usd", "payment_method": pm,
                                      "fan_id": "guest-alerts-e2e", "creator_id": "cr_alerts"})

done = {}
while True:
    mode = open(mode_file).read().strip()
    if mode == "stop":
        break
    statuses = []
    if mode in ("healthy", "failing"):
        statuses.append(call("GET", "/api/content/c1"))
        statuses.append(tip("pm_card_visa"))
        if mode == "failing":
            statuses.append(tip("pm_card_chargeDeclined"))
            statuses.append(tip("pm_card_chargeDeclinedInsufficientFunds"))
    for s in statuses:
        key = "%s %d" % (mode, s)
        done[key] = done.get(key, 0) + 1
    with open(state_file + ".tmp", "w") as f:
        json.dump({"mode": mode, "done": done}, f)
    import os
    os.replace(state_file + ".tmp", state_file)
    time.sleep(0.5 if mode != "pause" else 0.1)
'''


def demo_env(*args, **kw):
    return subprocess.run([DEMO_ENV] + list(args), env=DEMO, **kw)


def wait_for(what, cond, timeout, step=0.5):
    """Polls COND until it returns something true (returned) or TIMEOUT (scaled) passes."""
    deadline = time.time() + timeout * SLOW
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %ds waiting for %s (last: %r)" % (
        timeout * SLOW, what, last))


class Receiver(http.server.ThreadingHTTPServer):
    """Alertmanager's webhook receiver: keeps every notification it is sent."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with srv.lock:
                    srv.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def alerts(self):
        with self.lock:
            return [(a["labels"].get("alertname"), a["status"], a["labels"])
                    for n in self.notifications for a in n.get("alerts", [])]


class AlertsE2E(unittest.TestCase):
    maxDiff = None
    procs = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bizprobe-alerts-")
        cls.t0 = time.time()
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        demo_env("down", capture_output=True)
        demo_env("up", check=True, timeout=300 * SLOW)
        app_pid = int(open(os.path.join(RUN_DIR, "app.pid")).read())
        secrets = dict(line.strip().split("=", 1) for line in
                       open(os.path.join(RUN_DIR, "secrets.env")) if "=" in line)
        # bizprobe, as a user runs it: the token and the webhook secret from the environment.
        cls.bp_port = free_port()
        env = dict(os.environ, STRIPE_WEBHOOK_SECRET=secrets["STRIPE_WEBHOOK_SECRET"],
                   METRICS_AUTH_TOKEN=TOKEN)
        env.pop("USER_TRACKING_SALT", None)
        cls.bp_err = os.path.join(cls.tmp, "bizprobe.stderr")
        cls.bp = subprocess.Popen(
            [BIZPROBE, "run", "--pid", str(app_pid), "--listen", "127.0.0.1:%d" % cls.bp_port,
             "--rules", RULES, "--state-dir", os.path.join(cls.tmp, "state"),
             "--action-timeout", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(cls.bp_err, "w"))
        cls.procs.append(cls.bp)
        wait_for("bizprobe to attach", lambda: "attached:" in open(cls.bp_err).read() or
                 cls.bp.poll() is not None, 60)
        if cls.bp.poll() is not None:
            raise RuntimeError("bizprobe exited: " + open(cls.bp_err).read())

        # The mix once before Prometheus starts: every family has its series (as on a platform
        # that has been running), so the second mix's events show in rate() and increase().
        subprocess.run([DEMO_ENV, "exec", "node", MIX, "--expect",
                        os.path.join(cls.tmp, "expect0.json")], env=DEMO, check=True,
                       timeout=300 * SLOW, stdout=subprocess.DEVNULL)

        # The traffic driver, in the netns, healthy from the start: the dashboards' staleness
        # alert must see exchanges from Prometheus's first scrape on.
        cls.mode_file = os.path.join(cls.tmp, "mode")
        cls.state_file = os.path.join(cls.tmp, "driver-state.json")
        driver = os.path.join(cls.tmp, "driver.py")
        with open(driver, "w") as f:
            f.write(DRIVER)
        cls.set_mode("healthy")
        cls.driver = subprocess.Popen(
            [DEMO_ENV, "exec", "python3", driver, cls.mode_file, cls.state_file], env=DEMO,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(cls.tmp, "driver.stderr"), "w"))
        cls.procs.append(cls.driver)
        wait_for("the driver's first tips", lambda: cls.driver_state().get("done"), 60)

        cls.receiver = Receiver()
        am_port = free_port()
        am_cfg = os.path.join(cls.tmp, "alertmanager.yml")
        with open(am_cfg, "w") as f:
            f.write("route:\n  receiver: test\n  group_by: [alertname]\n  group_wait: 1s\n"
                    "  group_interval: 1s\n  repeat_interval: 1h\n"
                    "receivers:\n  - name: test\n    webhook_configs:\n"
                    "      - url: http://127.0.0.1:%d/alerts\n        send_resolved: false\n"
                    % cls.receiver.port)
        cls.am_log = os.path.join(cls.tmp, "alertmanager.log")
        cls.am = subprocess.Popen(
            ["prometheus-alertmanager", "--config.file=" + am_cfg,
             "--storage.path=" + os.path.join(cls.tmp, "am"),
             "--web.listen-address=127.0.0.1:%d" % am_port, "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=open(cls.am_log, "w"))
        cls.procs.append(cls.am)
        cls.am_base = "http://127.0.0.1:%d" % am_port
        wait_for("alertmanager ready", lambda: cls.am.poll() is not None or
                 cls._ready(cls.am_base + "/-/ready"), 60)
        if cls.am.poll() is not None:
            raise RuntimeError("alertmanager exited: " + open(cls.am_log).read()[-2000:])

        # The shipped prometheus.yml and rule files, alerts.yml with every for: shortened.
        alerts = promenv.with_for_scaled(
            promenv.read(os.path.join(promenv.PROM_DIR, "alerts.yml")), FOR_SCALE)
        prom_dir = os.path.join(cls.tmp, "prometheus")
        os.makedirs(prom_dir)
        cfg = promenv.host_config(prom_dir, "127.0.0.1:%d" % cls.bp_port, TOKEN,
                                  "127.0.0.1:%d" % am_port, alerts_text=alerts)
        cls.prom = promenv.Prometheus(cfg, free_port(), os.path.join(prom_dir, "tsdb"),
                                      os.path.join(prom_dir, "prometheus.log"))
        cls.procs.append(cls.prom.proc)
        cls.prom.wait_ready(60 * SLOW)
        cls.prom_started = time.time()
        wait_for("Prometheus to scrape bizprobe",
                 lambda: cls.prom.result('up{job="%s"} == 1' % promenv.STATIC_JOB), 60)
        wait_for("payment attempts in Prometheus", lambda: cls.prom.result(
            "sum(rate(direct_fan_payment_attempts_total[5m])) > 0"), 60)

    @staticmethod
    def _ready(url):
        try:
            return promenv.http(url, timeout=2)[0] == 200
        except OSError:
            return False

    @classmethod
    def set_mode(cls, mode):
        with open(cls.mode_file + ".tmp", "w") as f:
            f.write(mode)
        os.replace(cls.mode_file + ".tmp", cls.mode_file)

    @classmethod
    def driver_state(cls):
        try:
            return json.load(open(cls.state_file))
        except (OSError, ValueError):
            return {}

    @classmethod
    def tearDownClass(cls):
        if os.path.exists(getattr(cls, "mode_file", "")):
            cls.set_mode("stop")
        for p in reversed(cls.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(cls.procs):
            try:
                p.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if getattr(cls, "receiver", None):
            cls.receiver.shutdown()
            cls.receiver.server_close()
        demo_env("down", capture_output=True)
        if os.environ.get("BIZPROBE_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def alerts(self, state=None):
        _, doc = self.prom.api("alerts")
        self.assertEqual(doc["status"], "success", doc)
        return [a for a in doc["data"]["alerts"] if state is None or a["state"] == state]

    def test_a_healthy_fires_nothing(self):
        """Only succeeded payments, for longer than the longest (shortened) for: delay: nothing
        fires, nothing reaches the receiver; at the end nothing is even pending."""
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            firing = self.alerts("firing")
            self.assertEqual(firing, [], "healthy traffic fired alerts")
            time.sleep(1)
        self.assertEqual(self.alerts(), [])
        self.assertEqual(self.receiver.alerts(), [])
        done = self.driver_state()["done"]
        self.assertGreater(done.get("healthy 201", 0), 5, done)
        self.assertEqual({k for k in done if not k.endswith((" 200", " 201"))}, set(), done)
        # Prometheus sees what the driver did: payments succeed, none fail.
        self.assertEqual(float(self.prom.result("direct_fan:payment_success_ratio:rate5m")[0]
                               ["value"][1]), 1.0)

    def test_b_failing_payments_fire_high_failure_rate(self):
        """Two declines for each good tip: HighPaymentFailureRate pending, firing after for:,
        listed by Alertmanager and delivered to the receiver."""
        self.set_mode("failing")
        started = time.time()
        wait_for("failing tips", lambda: self.driver_state().get("done", {}).get(
            "failing 402", 0) >= 4, 60)
        ratio = wait_for("the failure ratio above 10%", lambda: self.prom.result(
            "direct_fan:payment_failure_ratio:rate5m > 0.1"), 90)
        self.assertGreater(float(ratio[0]["value"][1]), 0.1)

        def firing():
            return [a for a in self.alerts("firing") if a["labels"]["alertname"] ==
                    "HighPaymentFailureRate"]
        [alert] = wait_for("HighPaymentFailureRate firing", firing, 90)
        self.assertEqual(alert["labels"], {"alertname": "HighPaymentFailureRate",
                                           "severity": "critical", "team": "payments"})
        self.assertGreater(float(alert["value"]), 0.1)
        self.assertRegex(alert["annotations"]["description"],
                         r"^Payment failure rate: \d+(\.\d+)?% of all payment attempts")
        # Not before its for: elapsed (2s in the test's copy; the shipped rule says 2m).
        active = datetime.datetime.fromisoformat(
            re.sub(r"(\.\d{6})\d*", r"\1", alert["activeAt"]).replace("Z", "+00:00"))
        self.assertGreaterEqual(time.time() - active.timestamp(), HIGH_FAILURE_FOR_S)
        self.assertGreaterEqual(active.timestamp(), started - 1)

        def delivered():
            return [a for a in self.receiver.alerts()
                    if a[0] == "HighPaymentFailureRate" and a[1] == "firing"]
        got = wait_for("Alertmanager to deliver HighPaymentFailureRate", delivered, 90)
        self.assertEqual(got[0][2]["severity"], "critical")
        self.assertEqual(got[0][2]["team"], "payments")
        status, body = promenv.http(self.am_base + "/api/v2/alerts")
        self.assertEqual(status, 200)
        self.assertIn("HighPaymentFailureRate",
                      {a["labels"]["alertname"] for a in json.loads(body)})
        # Conversion is far above 2% (the first mix's users, half of whom paid).
        self.assertGreater(float(self.prom.result(
            'direct_fan_conversion_rate{period="24h"}')[0]["value"][1]), 2)
        self.assertNotIn("LowConversionRate", {a["labels"]["alertname"] for a in self.alerts()})
        self.assertNotIn("LowConversionRate", {a[0] for a in self.receiver.alerts()})

    def bizprobe_sample(self, name, **labels):
        status, body = promenv.http("http://127.0.0.1:%d/metrics" % self.bp_port,
                                    headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200)
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in body.splitlines():
            if line.startswith("%s{%s} " % (name, want)):
                return float(line.split()[-1])
        return None

    def test_c_low_conversion_fires(self):
        """Sign-ups that do not pay: direct_fan_conversion_rate{period="24h"} falls below 2,
        exactly to converted / (active + sign-ups); LowConversionRate fires after its for:
        and Alertmanager delivers it to the growth team."""
        self.set_mode("pause")
        wait_for("the driver to pause", lambda: self.driver_state().get("mode") == "pause", 60)
        time.sleep(6)  # the KPIs are recomputed every 5 s
        active = self.bizprobe_sample("direct_fan_active_users", period="24h", user_type="total")
        rate = self.bizprobe_sample("direct_fan_conversion_rate", period="24h")
        converted = round(rate * active / 100)
        self.assertGreater(converted, 0)
        signups = max(0, 50 * converted - int(active)) + 25
        subprocess.run([DEMO_ENV, "exec", "python3", "-c", SIGNUPS, str(signups)], env=DEMO,
                       check=True, timeout=300 * SLOW)
        expected = 100.0 * converted / (active + signups)
        self.assertLess(expected, 2)
        wait_for("the conversion rate at %.4f%%" % expected, lambda: (
            lambda v: v is not None and abs(v - expected) < 1e-9)(
                self.bizprobe_sample("direct_fan_conversion_rate", period="24h")), 60)

        def firing():
            return [a for a in self.alerts("firing") if a["labels"]["alertname"] ==
                    "LowConversionRate"]
        [alert] = wait_for("LowConversionRate firing", firing, 90)
        # The gauge's own labels stay on the alert (a person sees which target and window).
        self.assertEqual(alert["labels"], {"alertname": "LowConversionRate",
                                           "period": "24h", "severity": "warning",
                                           "team": "growth", "job": promenv.STATIC_JOB,
                                           "instance": "127.0.0.1:%d" % self.bp_port})
        self.assertAlmostEqual(float(alert["value"]), expected, places=6)
        wait_for("Alertmanager to deliver LowConversionRate", lambda: [
            a for a in self.receiver.alerts() if a[0] == "LowConversionRate" and
            a[1] == "firing" and a[2]["team"] == "growth"], 90)

    def test_d_dashboards_and_guide_queries_return_data(self):
        """After the traffic mix (every family): every dashboard query and every guide query
        returns at least one series with a number (the KPI gauges included); queries comparing
        with days ago return nothing yet, and with
        their days shrunk to this run's seconds they return data."""
        self.set_mode("pause")
        wait_for("the driver to pause", lambda: self.driver_state().get("mode") == "pause", 60)
        subprocess.run([DEMO_ENV, "exec", "node", MIX, "--seed", "43", "--expect",
                        os.path.join(self.tmp, "expect.json")], env=DEMO, check=True,
                       timeout=300 * SLOW, stdout=subprocess.DEVNULL)
        self.set_mode("healthy")
        # The mix's last events scraped, 3-D Secure attempts counted after the action timeout.
        time.sleep(5)
        wait_for("the mix's rejected webhooks in Prometheus", lambda: self.prom.result(
            'direct_fan_webhook_events_total{outcome="rejected"}'), 60)
        queries = [("%s / %s / %s" % (d, title, ref), expr)
                   for d, title, ref, expr in promenv.dashboard_targets()]
        queries += [("guide", q) for q in GUIDE_QUERIES]
        # The guide's growth rate reaches back three windows: all within this run, and each
        # window at least 10 scrapes long.
        time.sleep(max(0, self.prom_started + 40 - time.time()))
        window = int((time.time() - self.prom_started) / 3.3)
        self.assertGreaterEqual(window, 10)
        problems, history = [], []
        for where, expr in queries:
            result = self.prom.result(expr)
            numbers = [r for r in result if not math.isnan(float(r["value"][1]))]
            if HISTORY.search(expr):
                history.append(expr)
                if numbers:
                    problems.append("%s: %s has data from days ago?" % (where, expr))
                short = re.sub(r"\b\d+d\b", lambda m: "%ds" % (
                    window * int(m.group(0)[:-1]) // 7), expr)
                if not [r for r in self.prom.result(short)
                        if not math.isnan(float(r["value"][1]))]:
                    problems.append("%s: %s returns nothing" % (where, short))
            elif not numbers:
                problems.append("%s: %s returns %s" % (where, expr, result or "nothing"))
        self.assertEqual(problems, [])
        self.assertEqual(len(history), 2)  # the dashboard's growth rate and the guide's
        print("checked %d queries: %d with data, %d needing history"
              % (len(queries), len(queries) - len(history), len(history)))

    def test_e_rules_evaluate_cleanly_on_real_data(self):
        """Every rule evaluated on bizprobe's series without an error (a many-to-many match
        would show here), and every alert that fired was delivered."""
        _, doc = self.prom.api("rules")
        for g in doc["data"]["groups"]:
            for r in g["rules"]:
                self.assertEqual((r["name"], r["health"], r.get("lastError", "")),
                                 (r["name"], "ok", ""))
        # Every alert that fired during the run reached the receiver through Alertmanager;
        # bizprobe's own health alerts never fired (up, attached, nothing lost, exchanges seen).
        fired = {r["metric"]["alertname"] for r in self.prom.result(
            'count by (alertname) (count_over_time(ALERTS{alertstate="firing"}[1h]))')}
        self.assertIn("HighPaymentFailureRate", fired)
        self.assertIn("LowConversionRate", fired)
        self.assertEqual({a for a in fired if a.startswith("Bizprobe")}, set())
        wait_for("every fired alert at the receiver",
                 lambda: fired <= {a[0] for a in self.receiver.alerts()}, 60)
        print("fired during the run: %s" % ", ".join(sorted(fired)))


if __name__ == "__main__":
    sys.exit(main("test_alerts"))

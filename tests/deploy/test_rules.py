"""deploy/prometheus and deploy/grafana without bizprobe: promtool checks and unit-tests the rule
files; a real Prometheus loads the shipped configurations (the DaemonSet one with its pods
simulated), scrapes a stand-in exporter with the bearer token from the credentials file, and
parses every alert, recording rule and dashboard query; every alert's promtool tests cover it
firing, not firing and its for: delay (a copy with that for: removed, and one with it doubled,
must each fail them); every dashboard passes a structural check. Needs prometheus (promtool)
only: no root, no BPF. The end-to-end test with bizprobe's real data is tests/e2e/test_alerts.py."""
import http.server
import json
import os
import re
import shutil
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
import promenv  # noqa: E402
from harness import free_port, main  # noqa: E402
from promenv import DASHBOARDS, PROM_DIR, PROM_TESTS, GRAFANA_DIR, read  # noqa: E402

GUIDE_ALERTS = {
    # The guide's LowConversionRate, verbatim.
    "LowConversionRate": 'direct_fan_conversion_rate{period="24h"} < 2',
}
# Alerts that compute a ratio a recording rule records for the dashboards: the same expression.
SHARED = {
    "HighPaymentFailureRate": "direct_fan:payment_failure_ratio:rate5m",
    "ElevatedPaymentFailureRate": "direct_fan:payment_failure_ratio:rate5m",
    "StripeApiErrors": "direct_fan:stripe_api_error_ratio:rate5m",
    "StripeApiLatencyHigh": "endpoint:direct_fan_stripe_api_request_duration_seconds:p95_rate5m",
    "WebhookRejections": "direct_fan:webhook_rejected_ratio:rate10m",
}
TOKEN = "deploy-test-" + os.urandom(6).hex()
EXPOSITION = ("# TYPE bizprobe_build_info gauge\nbizprobe_build_info{version=\"test\"} 1\n"
              "# TYPE bizprobe_traced_processes gauge\nbizprobe_traced_processes 1\n")


def promtool(*args, cwd=PROM_DIR):
    return subprocess.run(["promtool"] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=300)


class Exporter(http.server.ThreadingHTTPServer):
    """Stands in for bizprobe's endpoint: /api/metrics and /metrics with the bearer token, 401
    without; remembers each request's path and whether its token was right."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                ok = self.headers.get("Authorization") == "Bearer " + TOKEN
                with srv.lock:
                    srv.requests.append((self.path, ok))
                if self.path.split("?")[0] not in ("/api/metrics", "/metrics"):
                    self.send_response(404)
                    self.end_headers()
                    return
                body = EXPOSITION.encode() if ok else b"unauthorized\n"
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


def copy_rule_files(dest):
    for f in promenv.RULE_FILES:
        shutil.copy(os.path.join(PROM_DIR, f), os.path.join(dest, f))


def static_config(tmp, exporter_port):
    """The shipped prometheus.yml, scraping the stand-in exporter every second."""
    return promenv.host_config(tmp, "127.0.0.1:%d" % exporter_port, TOKEN)


# Simulated pods for the DaemonSet job: what Kubernetes service discovery would report.
def simulated_pods(port):
    def pod(name, labels, annotations, node):
        meta = {"__meta_kubernetes_namespace": "monitoring",
                "__meta_kubernetes_pod_name": name,
                "__meta_kubernetes_pod_node_name": node}
        for k, v in labels.items():
            meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
        for k, v in annotations.items():
            meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
        # A pod's address as discovered: its IP and its first container port.
        return {"targets": ["127.0.0.1:8080"], "labels": meta}

    bp = {"app.kubernetes.io/name": "bizprobe"}
    ann = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
           "prometheus.io/path": "/api/metrics"}
    return [
        pod("bizprobe-a", bp, ann, "node-1"),
        # No path annotation: the job's own /api/metrics.
        pod("bizprobe-b", bp, {k: v for k, v in ann.items() if k != "prometheus.io/path"},
            "node-2"),
        pod("bizprobe-off", bp, dict(ann, **{"prometheus.io/scrape": "false"}), "node-3"),
        pod("some-app", {"app.kubernetes.io/name": "fan-platform"}, ann, "node-1"),
    ]


def daemonset_config(tmp, exporter_port):
    token_dir = os.path.join(tmp, "secrets")
    os.makedirs(token_dir, exist_ok=True)
    with open(os.path.join(token_dir, "token"), "w") as f:
        f.write(TOKEN)
    pods = os.path.join(tmp, "pods.json")
    with open(pods, "w") as f:
        json.dump(simulated_pods(exporter_port), f)
    text = promenv.derive(read(os.path.join(PROM_DIR, "prometheus-daemonset.yml")), [
        ("scrape_interval: 30s", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("evaluation_interval: 30s", "evaluation_interval: 1s"),
        ("credentials_file: /etc/prometheus/secrets/bizprobe-metrics-token/METRICS_AUTH_TOKEN",
         "credentials_file: " + os.path.join(token_dir, "token")),
        ("targets: ['alertmanager:9093']", "targets: ['127.0.0.1:9']"),
        # Debian's Prometheus has no Kubernetes discovery: the same target groups from a file.
        ("    kubernetes_sd_configs:\n      - role: pod\n",
         "    file_sd_configs:\n      - files: ['%s']\n        refresh_interval: 1s\n" % pods),
    ], "deploy/prometheus/prometheus-daemonset.yml")
    path = os.path.join(tmp, "prometheus-daemonset.yml")
    with open(path, "w") as f:
        f.write(text)
    copy_rule_files(tmp)
    return path


def parse_promtool_tests(path):
    """[(group name, alertname, fires?)] of a promtool test file's alert_rule_test cases, read
    line by line (the files are written in one layout; a case this cannot read is an error)."""
    cases, group, case = [], None, None
    for n, line in enumerate(open(path), 1):
        m = re.match(r"^  - name:\s*(.+?)\s*$", line)
        if m:
            group = m.group(1)
            continue
        if re.match(r"^\s+- eval_time:", line):
            case = {"group": group, "line": n}
            continue
        m = re.match(r"^\s+alertname:\s*(\S+)\s*$", line)
        if m and case is not None:
            case["alert"] = m.group(1)
            continue
        m = re.match(r"^\s+exp_alerts:\s*(\[\])?\s*$", line)
        if m and case is not None:
            if "alert" not in case:
                raise AssertionError("%s:%d: a case without alertname" % (path, case["line"]))
            cases.append((case["group"], case["alert"], m.group(1) is None))
            case = None
    return cases


class PrometheusFiles(unittest.TestCase):
    """promtool on the shipped files, and their unit tests."""

    def test_check_rules(self):
        for f in promenv.RULE_FILES:
            r = promtool("check", "rules", f)
            self.assertEqual(r.returncode, 0, f + ": " + r.stdout + r.stderr)
            self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_promtool_test_rules(self):
        self.assertGreaterEqual(len(PROM_TESTS), 4)
        r = promtool("test", "rules", *[os.path.relpath(p, PROM_DIR) for p in PROM_TESTS])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).count("SUCCESS"), len(PROM_TESTS))

    def test_check_config(self):
        """prometheus.yml as shipped (syntax only: its token file is the deployer's), then both
        configurations fully, rule files included, with a token file in place."""
        # Debian's promtool has no Kubernetes discovery, so prometheus-daemonset.yml is checked
        # as the test below runs it: its job on simulated pods.
        r = promtool("check", "config", "--syntax-only", "prometheus.yml")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with tempfile.TemporaryDirectory(prefix="bizprobe-deploy-") as tmp:
            cfg = static_config(tmp, 9464)
            r = promtool("check", "config", cfg, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("SUCCESS: 2 rule files found", r.stdout + r.stderr)
            cfg = daemonset_config(tmp, 9464)
            r = promtool("check", "config", cfg, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_for_delays_are_tested(self):
        """For each alert: with its for: removed, or doubled, its tests fail. So some case
        expects it absent while its condition already holds, and some expects it as soon as
        for: has elapsed."""
        alerts_text = read(os.path.join(PROM_DIR, "alerts.yml"))
        spans = promenv.alert_blocks(alerts_text)
        self.assertGreaterEqual(len(spans), 14)
        with tempfile.TemporaryDirectory(prefix="bizprobe-mut-") as tmp:
            os.makedirs(os.path.join(tmp, "tests"))
            shutil.copy(os.path.join(PROM_DIR, "recording.yml"), tmp)
            for name in sorted(spans):
                block = alerts_text[slice(*spans[name])]
                duration = re.search(r"^\s+for:\s*(\S+)", block, re.M).group(1)
                seconds = promenv.parse_duration(duration)
                self.assertGreater(seconds, 0, name)
                # Only the test groups that name this alert, so each run stays short.
                files = []
                for path in PROM_TESTS:
                    text = read(path)
                    head, _, body = text.partition("\ntests:\n")
                    groups = re.split(r"(?m)^(?=  - name:)", body)
                    mine = [g for g in groups if re.search(r"alertname:\s*%s\s*$" % name, g, re.M)]
                    if mine:
                        out = os.path.join(tmp, "tests", os.path.basename(path))
                        with open(out, "w") as f:
                            f.write(head + "\ntests:\n" + "".join(mine))
                        files.append(out)
                self.assertTrue(files, "no promtool test names " + name)
                # The shipped rules pass the extracted groups (sanity of the extraction).
                with open(os.path.join(tmp, "alerts.yml"), "w") as f:
                    f.write(alerts_text)
                base = promtool("test", "rules", *files, cwd=tmp)
                self.assertEqual(base.returncode, 0, name + ": " + base.stdout + base.stderr)
                for mutated in ("0s", promenv.format_duration(2 * seconds)):
                    with open(os.path.join(tmp, "alerts.yml"), "w") as f:
                        f.write(promenv.with_alert_for(alerts_text, name, mutated))
                    r = promtool("test", "rules", *files, cwd=tmp)
                    self.assertNotEqual(
                        r.returncode, 0,
                        "%s: its tests still pass with for: %s instead of %s" % (
                            name, mutated, duration))

    def test_every_alert_fires_and_does_not_fire(self):
        cases = []
        for path in PROM_TESTS:
            cases += parse_promtool_tests(path)
        names = set(promenv.alert_blocks(read(os.path.join(PROM_DIR, "alerts.yml"))))
        for name in sorted(names):
            fires = [c for c in cases if c[1] == name and c[2]]
            quiet = [c for c in cases if c[1] == name and not c[2]]
            self.assertTrue(fires, name + " has no case where it fires")
            self.assertTrue(quiet, name + " has no case where it does not fire")
        self.assertFalse({c[1] for c in cases} - names, "tests of unknown alerts")
        rec_tests = read(os.path.join(PROM_DIR, "tests", "recording.yml"))
        for name in re.findall(r"^\s+- record:\s*(\S+)", read(os.path.join(PROM_DIR,
                                                                         "recording.yml")), re.M):
            self.assertIn(name, rec_tests, "recording rule %s has no promtool test" % name)


class RealPrometheus(unittest.TestCase):
    """A real Prometheus on the shipped prometheus.yml and one on prometheus-daemonset.yml."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bizprobe-deploy-")
        cls.exporter = Exporter()
        static_dir = os.path.join(cls.tmp, "static")
        ds_dir = os.path.join(cls.tmp, "daemonset")
        os.makedirs(static_dir)
        os.makedirs(ds_dir)
        cls.prom = promenv.Prometheus(static_config(static_dir, cls.exporter.port), free_port(),
                                      os.path.join(static_dir, "tsdb"),
                                      os.path.join(static_dir, "prometheus.log"))
        cls.ds = promenv.Prometheus(daemonset_config(ds_dir, cls.exporter.port), free_port(),
                                    os.path.join(ds_dir, "tsdb"),
                                    os.path.join(ds_dir, "prometheus.log"))
        cls.prom.wait_ready()
        cls.ds.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.ds.stop()
        cls.exporter.shutdown()
        cls.exporter.server_close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def wait_targets(self, prom, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            _, doc = prom.api("targets")
            active = doc.get("data", {}).get("activeTargets", [])
            if len(active) >= n and all(t["health"] == "up" for t in active):
                return doc["data"]
            time.sleep(0.3)
        self.fail("targets not up: %s\n%s" % (json.dumps(doc)[:2000], prom.log_tail()))

    def test_static_job_scrapes_with_token(self):
        data = self.wait_targets(self.prom, 1)
        [t] = data["activeTargets"]
        self.assertEqual(t["labels"]["job"], promenv.STATIC_JOB)
        self.assertEqual(t["scrapeUrl"], "http://127.0.0.1:%d/api/metrics" % self.exporter.port)
        with self.exporter.lock:
            reqs = list(self.exporter.requests)
        self.assertIn(("/api/metrics", True), reqs)
        self.assertNotIn(("/api/metrics", False), reqs)
        self.assertEqual(self.prom.result('bizprobe_build_info{job="%s"}' % promenv.STATIC_JOB)
                         [0]["metric"]["version"], "test")
        # The token stays out of Prometheus's configuration page.
        _, doc = self.prom.api("status/config")
        self.assertNotIn(TOKEN, doc["data"]["yaml"])

    def test_daemonset_job_keeps_bizprobe_pods(self):
        """The relabelling keeps annotated bizprobe pods only, scrapes the annotated port and
        path with the token, and labels each target with its namespace, pod and node."""
        data = self.wait_targets(self.ds, 2)
        got = sorted((t["labels"]["pod"], t["labels"]["node"], t["labels"]["namespace"],
                      t["labels"]["job"], t["scrapeUrl"]) for t in data["activeTargets"])
        url = "http://127.0.0.1:%d/api/metrics" % self.exporter.port
        self.assertEqual(got, [("bizprobe-a", "node-1", "monitoring", promenv.DAEMONSET_JOB, url),
                               ("bizprobe-b", "node-2", "monitoring", promenv.DAEMONSET_JOB, url)])
        dropped = {t["discoveredLabels"]["__meta_kubernetes_pod_name"]
                   for t in data["droppedTargets"]}
        self.assertEqual(dropped, {"bizprobe-off", "some-app"})
        # BizprobeDown and the health dashboard's target count see this job.
        deadline = time.time() + 20
        while time.time() < deadline:
            r = self.ds.result('sum(up{job=~"direct-fan-platform|bizprobe.*"})')
            if r and float(r[0]["value"][1]) == 2:
                break
            time.sleep(0.5)
        self.assertEqual(float(r[0]["value"][1]), 2)

    def rules(self):
        _, doc = self.prom.api("rules")
        self.assertEqual(doc["status"], "success", doc)
        return [r for g in doc["data"]["groups"] for r in g["rules"]]

    def test_rules_loaded_with_labels_and_runbooks(self):
        rules = self.rules()
        alerts = {r["name"]: r for r in rules if r["type"] == "alerting"}
        records = {r["name"]: r for r in rules if r["type"] == "recording"}
        self.assertEqual(set(alerts), set(promenv.alert_blocks(
            read(os.path.join(PROM_DIR, "alerts.yml")))))
        for name in ("LowConversionRate", "HighPaymentFailureRate", "PaymentFailureSpike",
                     "SubscriptionCancellationSpike", "WebhookRejections", "StripeApiErrors",
                     "StripeApiLatencyHigh", "BizprobeEventsLost", "BizprobeBytesLost",
                     "BizprobeDown", "BizprobeTargetMissing", "BizprobeNoExchanges"):
            self.assertIn(name, alerts)
        for name, r in alerts.items():
            self.assertIn(r["labels"].get("severity"), ("critical", "warning"), name)
            self.assertIn(r["labels"].get("team"), ("payments", "growth", "platform"), name)
            self.assertGreater(r["duration"], 0, name + " has no for:")
            self.assertTrue(r["annotations"].get("summary"), name)
            # Runbook-style: says what to check, not only what happened.
            desc = r["annotations"].get("description", "")
            self.assertGreater(len(desc), 150, name)
            self.assertRegex(desc, r"\b(Check|check|See|see|Find|find|Compare|compare)\b", name)
            self.assertEqual(r["health"], "ok", name)
        for name, expr in GUIDE_ALERTS.items():
            self.assertEqual(alerts[name]["query"], expr)
        # The guide's threshold and delay, and its ratio corrected: both sides aggregated.
        high = alerts["HighPaymentFailureRate"]
        self.assertEqual(high["duration"], 120)
        self.assertEqual(alerts["LowConversionRate"]["duration"], 300)
        self.assertEqual(high["labels"], {"severity": "critical", "team": "payments"})
        self.assertRegex(high["query"], r'^\(sum\(rate\(direct_fan_payment_attempts_total\{status='
                                        r'"failed"\}\[5m\]\)\) / sum\(rate\(direct_fan_payment_'
                                        r'attempts_total\[5m\]\)\)\) > 0\.1$')
        self.assertIn("bizprobe_exchanges_total", alerts["BizprobeNoExchanges"]["query"])
        self.assertIn('outcome="rejected"', alerts["WebhookRejections"]["query"])
        self.assertIn('code=~"5..|429"', alerts["StripeApiErrors"]["query"])
        self.assertIn("absent(", alerts["BizprobeTargetMissing"]["query"])
        # Shared ratios: the alert's expression contains the recorded one exactly (both as
        # Prometheus prints them).
        for alert, record in SHARED.items():
            self.assertIn(records[record]["query"], alerts[alert]["query"], alert)
        for name, r in records.items():
            self.assertEqual(r["health"], "ok", name)

    def test_dashboard_queries_parse(self):
        """Every panel query is accepted by Prometheus (no data here: that is the end-to-end
        test's), and every recorded series a dashboard reads is one recording.yml records."""
        records = {r["name"] for r in self.rules() if r["type"] == "recording"}
        targets = promenv.dashboard_targets()
        self.assertGreater(len(targets), 50)
        for dash, title, ref, expr in targets:
            status, doc = self.prom.query(expr)
            self.assertEqual((status, doc.get("status")), (200, "success"),
                             "%s / %s / %s: %s: %s" % (dash, title, ref, expr, doc.get("error")))
            for name in promenv.metric_names(expr):
                if ":" in name:
                    self.assertIn(name, records, "%s / %s reads %s" % (dash, title, name))


class Dashboards(unittest.TestCase):
    """The structure Grafana needs, checked on every dashboard."""

    def test_dashboards_present(self):
        names = {os.path.basename(p) for p in DASHBOARDS}
        self.assertEqual(names, {"revenue.json", "user-growth.json", "payments.json",
                                 "engagement.json", "bizprobe-health.json"})

    def test_structure(self):
        uids = set()
        for path in DASHBOARDS:
            name = os.path.basename(path)
            d = json.load(open(path))
            self.assertIsInstance(d.get("schemaVersion"), int, name)
            self.assertGreaterEqual(d["schemaVersion"], 36, name)
            self.assertTrue(d.get("title"), name)
            self.assertRegex(d.get("uid", ""), r"^[a-z0-9-]{1,40}$", name)
            self.assertNotIn(d["uid"], uids, name)
            uids.add(d["uid"])
            self.assertIsNone(d.get("id"), name + ": a dashboard id belongs to one Grafana")
            variables = d.get("templating", {}).get("list", [])
            dsvars = [v for v in variables if v.get("type") == "datasource"]
            self.assertEqual(len(dsvars), 1, name)
            self.assertEqual(dsvars[0].get("query"), "prometheus", name)
            self.assertEqual(dsvars[0].get("name"), "datasource", name)
            ids = []
            for p in promenv.panels(d):
                ids.append(p.get("id"))
                self.assertIsInstance(p.get("id"), int, name)
                self.assertTrue(p.get("title"), "%s panel %s" % (name, p.get("id")))
                gp = p.get("gridPos", {})
                self.assertTrue({"h", "w", "x", "y"} <= set(gp), (name, p["title"]))
                self.assertLessEqual(gp["x"] + gp["w"], 24, (name, p["title"]))
                if p.get("type") == "row":
                    self.assertNotIn("targets", p)
                    continue
                self.assertTrue(p.get("targets"), (name, p["title"]))
                panel_ds = p.get("datasource")
                if panel_ds is not None:
                    self.assertEqual(panel_ds, {"type": "prometheus", "uid": "${datasource}"},
                                     (name, p["title"]))
                refs = [t.get("refId") for t in p["targets"]]
                self.assertEqual(len(refs), len(set(refs)), (name, p["title"]))
                for t in p["targets"]:
                    self.assertTrue(t.get("expr"), (name, p["title"]))
                    ds = t.get("datasource", panel_ds)
                    # Its own ${datasource}, or the panel's (which is ${datasource}).
                    self.assertEqual(ds, {"type": "prometheus", "uid": "${datasource}"},
                                     (name, p["title"], t.get("refId")))
            self.assertEqual(len(ids), len(set(ids)), name + ": duplicate panel ids")
            # No data source uid anywhere but ${datasource} (the built-in annotation aside).
            text = read(path)
            for uid in re.findall(r'"uid":\s*"([^"]*)"', text):
                self.assertIn(uid, (d["uid"], "${datasource}", "-- Grafana --"), name)

    def test_provisioning(self):
        prov = os.path.join(GRAFANA_DIR, "provisioning")
        dash = read(os.path.join(prov, "dashboards", "bizprobe.yml"))
        self.assertRegex(dash, r"(?m)^apiVersion: 1$")
        self.assertRegex(dash, r"(?m)^\s+type: file$")
        self.assertRegex(dash, r"(?m)^\s+path: /\S+$")
        ds = read(os.path.join(prov, "datasources", "prometheus.yml"))
        self.assertRegex(ds, r"(?m)^apiVersion: 1$")
        self.assertRegex(ds, r"(?m)^\s+type: prometheus$")
        self.assertRegex(ds, r"(?m)^\s+isDefault: true$")


if __name__ == "__main__":
    sys.exit(main("test_rules"))

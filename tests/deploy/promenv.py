"""Shared pieces of the deploy/ tests (tests/deploy/test_rules.py, tests/e2e/test_alerts.py): the
shipped Prometheus files, copies of them made for a test, a real Prometheus process, the
dashboards' panels. Standard library only (Debian's python3)."""
import glob
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROM_DIR = os.path.join(ROOT, "deploy", "prometheus")
GRAFANA_DIR = os.path.join(ROOT, "deploy", "grafana")
RULE_FILES = ("alerts.yml", "recording.yml")
PROM_TESTS = sorted(glob.glob(os.path.join(PROM_DIR, "tests", "*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(GRAFANA_DIR, "dashboards", "*.json")))
# The jobs the shipped configurations scrape bizprobe with (alerts.yml's BizprobeDown matches them).
STATIC_JOB = "direct-fan-platform"
DAEMONSET_JOB = "bizprobe-daemonset"


def read(path):
    with open(path) as f:
        return f.read()


def derive(text, replacements, what="file"):
    """TEXT with each (old, new) replaced; every old must occur, so a change to the shipped file
    that a test relies on fails loudly instead of testing something else."""
    for old, new in replacements:
        if old not in text:
            raise AssertionError("%s no longer contains %r" % (what, old))
        text = text.replace(old, new)
    return text


FOR_LINE = re.compile(r"^(\s+for:\s*)(\S+)\s*$", re.M)


def with_for_scaled(alerts_text, factor):
    """alerts.yml with every `for:` multiplied by FACTOR, at least 1s (the end-to-end test's
    short delays: 1/60 makes minutes seconds, keeping the alerts' delays in proportion)."""
    def scaled(m):
        return m.group(1) + "%ds" % max(1, round(parse_duration(m.group(2)) * factor))
    out, n = FOR_LINE.subn(scaled, alerts_text)
    if n == 0:
        raise AssertionError("alerts.yml has no for: line")
    return out


def alert_blocks(alerts_text):
    """{alert name: (start, end)} character spans of each `- alert:` rule in alerts.yml."""
    starts = [(m.start(), m.group(1)) for m in
              re.finditer(r"^\s*- alert:\s*(\S+)\s*$", alerts_text, re.M)]
    ends = [m.start() for m in re.finditer(r"^\s*(- alert:|- record:|- name:)", alerts_text, re.M)]
    spans = {}
    for start, name in starts:
        end = min([e for e in ends if e > start] + [len(alerts_text)])
        spans[name] = (start, end)
    return spans


def with_alert_for(alerts_text, alert, duration):
    """alerts.yml with only ALERT's `for:` set to DURATION."""
    start, end = alert_blocks(alerts_text)[alert]
    block, n = FOR_LINE.subn(lambda m: m.group(1) + duration, alerts_text[start:end])
    if n != 1:
        raise AssertionError("%s has %d for: lines" % (alert, n))
    return alerts_text[:start] + block + alerts_text[end:]


def host_config(tmp, target, token, alertmanager="127.0.0.1:9", alerts_text=None, interval="1s"):
    """The shipped prometheus.yml in TMP, with its rule files: scraping TARGET every INTERVAL
    with TOKEN from a credentials file, sending alerts to ALERTMANAGER, and alerts.yml replaced
    by ALERTS_TEXT if given. Returns the configuration's path."""
    token_file = os.path.join(tmp, "bizprobe-metrics-token")
    with open(token_file, "w") as f:
        f.write(token + "\n")  # as `echo` writes it: Prometheus trims the newline
    os.chmod(token_file, 0o600)
    text = derive(read(os.path.join(PROM_DIR, "prometheus.yml")), [
        ("scrape_interval: 30s", "scrape_interval: " + interval),
        ("scrape_timeout: 10s", "scrape_timeout: " + interval),
        ("evaluation_interval: 30s", "evaluation_interval: " + interval),
        ("credentials_file: /etc/prometheus/bizprobe-metrics-token",
         "credentials_file: " + token_file),
        ("targets: ['localhost:9464']", "targets: ['%s']" % target),
        ("targets: ['localhost:9093']", "targets: ['%s']" % alertmanager),
    ], "deploy/prometheus/prometheus.yml")
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        f.write(text)
    for name in RULE_FILES:
        with open(os.path.join(tmp, name), "w") as f:
            f.write(alerts_text if name == "alerts.yml" and alerts_text is not None
                    else read(os.path.join(PROM_DIR, name)))
    return path


def parse_duration(s):
    """Prometheus duration (1h30m, 5m, 10s) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|s|m|h|d|w|y)", s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError("not a duration: %r" % s)
    return total


def format_duration(seconds):
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return "%dh" % (seconds // 3600)
    if seconds % 60 == 0:
        return "%dm" % (seconds // 60)
    return "%ds" % seconds


def http(url, data=None, headers=None, timeout=10):
    """(status, body) of a GET (or a POST with DATA); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Prometheus:
    """A real Prometheus (Debian's) on CONFIG, listening on 127.0.0.1:PORT, data in TSDB."""

    def __init__(self, config, port, tsdb, log, extra_args=()):
        self.port = port
        self.base = "http://127.0.0.1:%d" % port
        self.log_path = log
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + tsdb,
             "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-lifecycle",
             "--log.level=info"] + list(extra_args),
            stdout=subprocess.DEVNULL, stderr=open(log, "w"))

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited: " + self.log_tail())
            try:
                if http(self.base + "/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus not ready after %ds: %s" % (timeout, self.log_tail()))

    def log_tail(self, n=20):
        try:
            return "".join(open(self.log_path).readlines()[-n:])
        except OSError:
            return ""

    def api(self, path, **params):
        url = self.base + "/api/v1/" + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http(url)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"status": "error", "error": body}
        return status, doc

    def query(self, expr):
        """(status, response document) of an instant query, POSTed (long expressions)."""
        status, body = http(self.base + "/api/v1/query",
                            data=urllib.parse.urlencode({"query": expr}).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"status": "error", "error": body}

    def result(self, expr):
        status, doc = self.query(expr)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError("query %r: HTTP %d %s" % (expr, status, doc.get("error")))
        return doc["data"]["result"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def panels(dashboard):
    """Every panel of a dashboard, those inside rows included."""
    for p in dashboard.get("panels", []):
        yield p
        for q in p.get("panels", []):
            yield q


def dashboard_targets():
    """(dashboard file name, panel title, refId, expr) of every query of every dashboard."""
    out = []
    for path in DASHBOARDS:
        d = json.load(open(path))
        for p in panels(d):
            for t in p.get("targets", []):
                out.append((os.path.basename(path), p.get("title"), t.get("refId"), t.get("expr")))
    return out


def metric_names(expr):
    """The metric names an expression reads (words followed by a selector or range, or bare),
    without functions, keywords and label names."""
    keywords = {"sum", "by", "without", "rate", "increase", "histogram_quantile", "offset",
                "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "max",
                "min", "avg", "count", "sort_desc", "sort", "vector", "absent", "round",
                "bool", "topk", "bottomk", "le", "time", "scalar", "clamp_min", "clamp_max"}
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)  # ranges
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)  # grouping labels
    stripped = re.sub(r'"[^"]*"', "", stripped)
    names = set()
    for m in re.finditer(r"(?<![a-zA-Z0-9_:.])[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        w = m.group(0)
        if w in keywords or re.fullmatch(r"\d+[smhdwy]", w):
            continue
        after = stripped[m.end():m.end() + 1]
        if after == "(":
            continue  # a function
        names.add(w)
    return names

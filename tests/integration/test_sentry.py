"""Sentry with zero code, against the real @sentry/node SDK (tests/integration/sentry-app) and a
Sentry stand-in run here (plain HTTP on 127.0.0.1, recording every envelope, answering 200 or 429
as told).

1. Counting: `bizprobe run --pid APP` is told nothing of Sentry; the app's DSN is in its own
   environment. The app reports errors by level, one large enough for the SDK to gzip it, one
   with an attachment; sentry_errors_total{level} and bizprobe_sentry_items_total{type} equal
   what the stand-in received, exactly; envelopes the stand-in refused with 429 are counted in
   bizprobe_sentry_rejected_total and not as errors.
2. Reporting: bizprobe with its own DSN (another stand-in): a business route's 500 (a rule with
   sentry:), a webhook the app refuses and a Stripe call that fails past its retries give exactly
   three Sentry events with the expected tags, the user as its pseudonym; a Stripe call whose
   retry succeeds gives none; no request carries a secret or a raw id; bizprobe's own reports are
   never counted as the app's.
3. Sentry's 429 with Retry-After: the report is dropped, later ones are dropped without a
   request before Retry-After passes, each counted in bizprobe_sentry_reports_dropped_total."""
import gzip
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import parse  # noqa: E402
from harness import (BIZPROBE, NODE, SLOW, free_port, main, wait_attached, wait_port)  # noqa: E402

APP_DIR = os.path.join(HERE, "sentry-app")
SALT = "sentry-test-salt-" + os.urandom(4).hex()
# Stripe's retry window in the reporter (sentry_reporter.h: retry_window_ms default).
RETRY_WINDOW_S = 10


def npm_ci():
    """The app's dependencies from its lockfile, once (as scripts/demo-env.sh does the demo's)."""
    if not os.path.isdir(os.path.join(APP_DIR, "node_modules", "@sentry", "node")):
        subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund",
                        "--loglevel=error"], cwd=APP_DIR, check=True, timeout=600)


class Standin(http.server.ThreadingHTTPServer):
    """A Sentry (or Stripe) stand-in on 127.0.0.1: records every request."""
    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", free_port()), handler)
        self.lock = threading.Lock()
        self.requests = []
        self.answer = (200, {})
        self.reject_events = None  # (status, headers) for envelopes that hold an event
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def recorded(self):
        with self.lock:
            return list(self.requests)


class SentryHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if n == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        raw = self.read_body()
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        with self.server.lock:
            status, headers = self.server.answer
            if self.server.reject_events and b'"type":"event"' in body:
                status, headers = self.server.reject_events
            self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                         "raw": raw, "body": body, "status": status,
                                         "t": time.monotonic()})
        out = b"{}"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class StripeHandler(SentryHandler):
    """Fails the first `fail` attempts of each Idempotency-Key with a 500, then succeeds."""

    def do_POST(self):
        self.read_body()
        key = self.headers.get("Idempotency-Key", "")
        with self.server.lock:
            seen = sum(1 for r in self.server.requests if r == key)
            self.server.requests.append(key)
            fail = self.server.fail
        if seen < fail:
            status, out = 500, {"error": {"type": "api_error",
                                          "message": "An unknown error occurred"}}
        else:
            status, out = 200, {"id": "pi_3Sx", "object": "payment_intent",
                                "status": "requires_payment_method", "amount": 2500,
                                "currency": "usd", "metadata": {"fan_id": "fan_42"}}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Stripe-Should-Retry", "true" if status == 500 else "false")
        self.end_headers()
        self.wfile.write(data)


def envelope_items(body):
    """(type, level) of each item of an envelope, read independently of bizprobe."""
    lines = body.split(b"\n")
    out = []
    i, pos = 1, len(lines[0]) + 1
    while pos < len(body):
        nl = body.find(b"\n", pos)
        header_line = body[pos:nl if nl >= 0 else len(body)]
        if not header_line.strip():
            pos = (nl if nl >= 0 else len(body)) + 1
            continue
        header = json.loads(header_line)
        pos = (nl if nl >= 0 else len(body)) + 1
        if "length" in header:
            payload = body[pos:pos + header["length"]]
            pos += header["length"] + 1
        else:
            nl = body.find(b"\n", pos)
            payload = body[pos:nl if nl >= 0 else len(body)]
            pos = (nl if nl >= 0 else len(body)) + 1
        level = ""
        if header["type"] == "event":
            level = json.loads(payload).get("level", "error")
        out.append((header["type"], level))
        i += 1
    return out


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return parse(r.read().decode())


def post(port, path, body=b"", headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30 * SLOW) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class App:
    def __init__(self, sentry_port, stripe_port):
        self.port = free_port()
        env = dict(os.environ, SENTRY_DSN="http://publickey@127.0.0.1:%d/1" % sentry_port)
        self.proc = subprocess.Popen([NODE, os.path.join(APP_DIR, "app.js"), str(self.port),
                                      str(stripe_port)], cwd=APP_DIR, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Run:
    """bizprobe run on the app, its stderr kept."""

    def __init__(self, pid, tmp, *extra, env_extra=None):
        self.port = free_port()
        self.err_path = os.path.join(tmp, "run-%d.stderr" % self.port)
        env = dict(os.environ, USER_TRACKING_SALT=SALT, **(env_extra or {}))
        env.pop("SENTRY_DSN", None)
        self.proc = subprocess.Popen(
            [BIZPROBE, "run", "--pid", str(pid), "--listen", "127.0.0.1:%d" % self.port,
             "--state-dir", tempfile.mkdtemp(dir=tmp, prefix="state-")] + list(extra),
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.err_path, "w"))
        wait_attached(self.proc, self.err_path)

    def stderr(self):
        return open(self.err_path).read()

    def metric(self, name, **labels):
        return scrape(self.port).get((name, tuple(sorted(labels.items()))), 0)

    def wait_metrics(self, want, timeout=20):
        """Scrapes until every {(name, labels): value} of want holds; returns the last scrape."""
        deadline = time.time() + timeout * SLOW
        while True:
            got = scrape(self.port)
            if all(got.get(k, 0) == v for k, v in want.items()) or time.time() > deadline:
                return got
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30 * SLOW)


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


RULES = """version: 1
identity:
  - header: X-User-Id
user_type: {header: X-User-Type, values: [fan, creator]}
events:
  - name: checkout
    metric: checkouts_total
    when: {method: POST, route: /api/checkout, status: 2xx}
    sentry: {component: payment_handler, feature: stripe_integration, funnel: subscription_signup}
"""


class SentryTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        npm_ci()
        cls.tmp = tempfile.mkdtemp(prefix="bizprobe-sentry-")
        cls.rules = os.path.join(cls.tmp, "rules.yaml")
        with open(cls.rules, "w") as f:
            f.write(RULES)

    def setUp(self):
        self.app_sentry = Standin(SentryHandler)
        self.stripe = Standin(StripeHandler)
        self.stripe.fail = 0
        self.app = App(self.app_sentry.port, self.stripe.port)

    def tearDown(self):
        self.app.stop()
        for s in (self.app_sentry, self.stripe):
            s.shutdown()
            s.server_close()

    def settle(self, run, check=None):
        """Scrapes until the metrics equal the truth of what the stand-in has received so far
        (the SDK may still be sending sessions); returns (truth, scrape)."""
        deadline = time.time() + 20 * SLOW
        while True:
            records = self.app_sentry.recorded()
            want, got = self.truth(records), scrape(run.port)
            if all(got.get(k, 0) == v for k, v in want.items()) or time.time() > deadline:
                return want, got, records
            time.sleep(0.2)

    def truth(self, records):
        """What the stand-in received, as the families bizprobe must show."""
        want = {key("sentry_errors_total", level=lv): 0
                for lv in ("fatal", "error", "warning", "info", "debug")}
        for r in records:
            for typ, level in envelope_items(r["body"]):
                if r["status"] == 429:
                    k = key("bizprobe_sentry_rejected_total", type=typ, reason="rate_limited")
                elif typ == "event":
                    k = key("sentry_errors_total", level=level)
                else:
                    k = key("bizprobe_sentry_items_total", type=typ)
                want[k] = want.get(k, 0) + 1
        return want

    def test_app_error_reports_are_counted_exactly(self):
        run = Run(self.app.proc.pid, self.tmp)
        try:
            for q, n in (("level=warning&n=2", 2), ("level=error&n=2", 2),
                         ("level=error&n=1&big=1", 1), ("level=fatal&n=1&attach=1", 1),
                         ("level=info&n=1", 1), ("level=debug&n=1", 1)):
                status, body = post(self.app.port, "/report?" + q)
                self.assertEqual((status, json.loads(body)), (200, {"captured": n}))
            want, got, records = self.settle(run)
            # The SDK gzipped the large one (@sentry/node-core: bodies over 32 KiB).
            gzipped = [r for r in records if r["headers"].get("content-encoding") == "gzip"]
            self.assertEqual(len(gzipped), 1)
            self.assertGreater(len(gzipped[0]["body"]), 32 * 1024)
            self.assertEqual(want[key("sentry_errors_total", level="error")], 3)
            self.assertEqual(want[key("sentry_errors_total", level="warning")], 2)
            self.assertEqual(want[key("sentry_errors_total", level="fatal")], 1)
            self.assertEqual(want[key("sentry_errors_total", level="info")], 1)
            self.assertEqual(want[key("sentry_errors_total", level="debug")], 1)
            self.assertEqual(want[key("bizprobe_sentry_items_total", type="attachment")], 1)
            self.assertEqual({k: got.get(k, 0) for k in want}, want)
            for (name, labels), v in got.items():
                if name in ("sentry_errors_total", "bizprobe_sentry_items_total",
                            "bizprobe_sentry_rejected_total") and v:
                    self.assertEqual(want.get((name, labels)), v, (name, labels))
            for (name, labels), v in got.items():
                if name == "bizprobe_sentry_unreadable_envelopes_total":
                    self.assertEqual(v, 0, labels)

            # Sentry says 429 to the app's errors: what it refused is counted apart, not as
            # errors (the SDK then holds back by itself, as Retry-After tells it).
            self.app_sentry.reject_events = (429, {"Retry-After": "60"})
            status, _ = post(self.app.port, "/report?level=error&n=2")
            self.assertEqual(status, 200)
            want, got, records = self.settle(run)
            self.assertTrue(any(r["status"] == 429 for r in records))
            self.assertEqual(want[key("sentry_errors_total", level="error")], 3)
            self.assertGreaterEqual(want[key("bizprobe_sentry_rejected_total", type="event",
                                             reason="rate_limited")], 1)
            self.assertEqual({k: got.get(k, 0) for k in want}, want)
            # Nothing of the DSN, its key or the payloads in the metrics.
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % run.port).read()
            for s in (b"publickey", b"test failure", b"test message", b"state.txt"):
                self.assertNotIn(s, text)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())

    def reporter_run(self, biz_sentry):
        return Run(self.app.proc.pid, self.tmp, "--rules", self.rules,
                   "--stripe-host", "api.stripe.test",
                   # bizprobe's own Sentry named as the app's too: were bizprobe traced, its own
                   # reports would count in sentry_errors_total.
                   "--sentry-host", "127.0.0.1:%d" % biz_sentry.port,
                   "--sentry-dsn", "http://bizkey@127.0.0.1:%d/7" % biz_sentry.port)

    def test_failed_flows_reported_with_business_context(self):
        biz_sentry = Standin(SentryHandler)
        run = self.reporter_run(biz_sentry)
        try:
            # A business route's 500, from a user whose id is in a header.
            status, _ = post(self.app.port, "/api/checkout", b'{"plan":"pro"}',
                             {"X-User-Id": "user-raw-123", "X-User-Type": "fan",
                              "Content-Type": "application/json"})
            self.assertEqual(status, 500)
            # A webhook the app refuses (a forged signature).
            evt = {"id": "evt_1SxForged", "object": "event", "type": "payment_intent.succeeded",
                   "data": {"object": {"id": "pi_3Sx", "object": "payment_intent"}}}
            status, _ = post(self.app.port, "/webhooks/stripe", json.dumps(evt).encode(),
                             {"Stripe-Signature": "t=1764300000,v1=" + "0" * 64,
                              "Content-Type": "application/json"})
            self.assertEqual(status, 400)
            # A Stripe call failing past its two retries, and one whose retry succeeds.
            self.stripe.fail = 100
            status, body = post(self.app.port, "/pay?retries=2")
            self.assertEqual((status, json.loads(body)), (502, {"stripe_status": 500}))
            self.stripe.fail = 1
            status, body = post(self.app.port, "/pay?retries=2&fan=43")
            self.assertEqual((status, json.loads(body)), (200, {"stripe_status": 200}))
            self.assertEqual(len(self.stripe.recorded()), 5)

            deadline = time.time() + (RETRY_WINDOW_S + 15) * SLOW
            while len(biz_sentry.recorded()) < 3 and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(2)  # nothing more may come
            reqs = biz_sentry.recorded()
            self.assertEqual(len(reqs), 3, [r["body"][:300] for r in reqs])
            events = {}
            for r in reqs:
                self.assertTrue(r["path"].startswith("/api/7/envelope/"), r["path"])
                self.assertEqual(r["headers"]["x-sentry-auth"],
                                 "Sentry sentry_version=7, sentry_key=bizkey, "
                                 "sentry_client=bizprobe/0.1.0")
                lines = r["body"].split(b"\n")
                item = json.loads(lines[1])
                self.assertEqual(item["type"], "event")
                ev = json.loads(r["body"].split(b"\n", 2)[2][:item["length"]])
                events[ev["tags"]["flow"]] = ev
            self.assertEqual(sorted(events), ["business_route", "stripe_api", "stripe_webhook"])

            pseudonym = hmac.new(SALT.encode(), b"user-raw-123", hashlib.sha256).hexdigest()
            route = events["business_route"]
            self.assertEqual(route["tags"], {
                "businessEvent": "checkout", "funnel": "subscription_signup",
                "component": "payment_handler", "feature": "stripe_integration",
                "endpoint": "/api/checkout", "method": "POST", "status": "500",
                "errorCode": "http_5xx", "userType": "fan", "source": "server",
                "platform": "node", "flow": "business_route"})
            self.assertEqual(route["user"], {"id": pseudonym})
            self.assertEqual(route["fingerprint"], ["bizprobe", "business_route", "checkout",
                                                    "500"])
            self.assertEqual(route["contexts"]["business"]["status"], 500)
            self.assertEqual(route["level"], "error")

            hook = events["stripe_webhook"]
            self.assertEqual(hook["tags"], {
                "businessEvent": "webhook_processing", "component": "stripe_webhook",
                "feature": "stripe_integration", "endpoint": "/webhooks/stripe",
                "method": "POST", "status": "400", "errorCode": "app_refused",
                "webhookType": "payment_intent.succeeded", "source": "webhook",
                "platform": "node", "flow": "stripe_webhook"})
            self.assertNotIn("user", hook)

            api = events["stripe_api"]
            fan = hmac.new(SALT.encode(), b"fan_42", hashlib.sha256).hexdigest()
            self.assertEqual(api["tags"], {
                "businessEvent": "payment_processing", "component": "stripe_api",
                "feature": "stripe_integration", "endpoint": "/v1/payment_intents",
                "method": "POST", "status": "500", "errorCode": "api_error",
                "errorType": "api_error", "currency": "USD", "amountBand": "10-50",
                "source": "api", "platform": "node", "flow": "stripe_api"})
            self.assertEqual(api["contexts"]["business"]["attempts"], 3)
            self.assertEqual(api["user"], {"id": fan})
            self.assertEqual(api["fingerprint"], ["bizprobe", "stripe_api",
                                                  "/v1/payment_intents", "500", "api_error"])

            # No secret, raw id or body anywhere but the key in its own header.
            for r in reqs:
                blob = r["path"].encode() + r["body"] + json.dumps(
                    {k: v for k, v in r["headers"].items() if k != "x-sentry-auth"}).encode()
                for s in (b"bizkey", b"publickey", b"sk_test_", b"user-raw-123", b"fan_42",
                          b"fan_43", b"fan@example.com", b"evt_1SxForged", b"pi_3Sx",
                          b'"plan"', b"Stripe-Signature", b"v1=000", b"Idempotency"):
                    self.assertNotIn(s, blob)
            got = scrape(run.port)
            self.assertEqual(got[key("bizprobe_sentry_reports_sent_total")], 3)
            for (name, labels), v in got.items():
                if name == "bizprobe_sentry_reports_dropped_total":
                    self.assertEqual(v, 0, labels)
            # bizprobe's own envelopes are not the app's.
            self.assertEqual(sum(v for (n, _), v in got.items() if n in (
                "sentry_errors_total", "bizprobe_sentry_rejected_total")), 0)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())
            biz_sentry.shutdown()
            biz_sentry.server_close()

    def test_sentry_429_honoured_and_counted(self):
        biz_sentry = Standin(SentryHandler)
        biz_sentry.answer = (429, {"Retry-After": "30"})
        run = self.reporter_run(biz_sentry)
        try:
            post(self.app.port, "/api/checkout", b"{}")
            deadline = time.time() + 20 * SLOW
            while not biz_sentry.recorded() and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(len(biz_sentry.recorded()), 1)
            self.assertEqual(run.wait_metrics(
                {key("bizprobe_sentry_reports_dropped_total", reason="sentry_rate_limited"): 1}
            )[key("bizprobe_sentry_reports_dropped_total", reason="sentry_rate_limited")], 1)
            t_429 = biz_sentry.recorded()[0]["t"]
            # Within Retry-After: each failure is dropped at once, Sentry is not asked again.
            biz_sentry.answer = (200, {})
            for _ in range(3):
                self.assertEqual(post(self.app.port, "/api/checkout", b"{}")[0], 500)
            got = run.wait_metrics(
                {key("bizprobe_sentry_reports_dropped_total", reason="sentry_rate_limited"): 4})
            self.assertEqual(
                got[key("bizprobe_sentry_reports_dropped_total", reason="sentry_rate_limited")], 4)
            self.assertEqual(got[key("bizprobe_sentry_reports_sent_total")], 0)
            time.sleep(1)
            self.assertEqual(len(biz_sentry.recorded()), 1)
            self.assertLess(time.monotonic() - t_429, 30)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())
            biz_sentry.shutdown()
            biz_sentry.server_close()


if __name__ == "__main__":
    sys.exit(main("test_sentry"))

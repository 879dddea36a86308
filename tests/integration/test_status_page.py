"""The live status page (GET / on the metrics listener), in a real browser: Debian's chromium,
headless, driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no port, no
extra Python package).

`bizprobe run` traces two real processes: the Python shop (signups and product views, through a
rules file as in test_state_run) and a small Python "payments app" that calls a Stripe stand-in
run here over plain HTTP (--stripe-host 127.0.0.1): three payments succeed, one card is declined,
one monthly subscription starts. Then, as a person would, the browser opens /, sees the login
form and no figure, is refused with a wrong token (401, no cookie), signs in through the form
with ADMIN_API_TOKEN, and the page's figures (read from the DOM) equal /metrics and the admin
API exactly; the charts hold the payments; the recent events are the test's own, with their
labels and without any user pseudonym, id or e-mail. A screenshot is kept in
build/status-page.png. The token never shows in the page, its URL or bizprobe's stderr, and the
session cookie is HttpOnly, SameSite=Strict and is not the token. Without ADMIN_API_TOKEN the
page says it is off."""
import base64
import collections
import http.server
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import parse  # noqa: E402
from harness import (  # noqa: E402
    BIZPROBE, PYTHON, ROOT, SHOP_APP, SHOP_PLANS, SHOP_RULES, SLOW, free_port, main,
    wait_attached, wait_port)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(ROOT, "build", "status-page.png")
TOKEN = "status-admin-" + os.urandom(12).hex()
SALT = "status-test-" + os.urandom(8).hex()
APP_USERS = ["app-user-5d1e", "app-user-c07b"]
# (amount in cents, outcome) of the payments app's payment intents, all USD.
PAYMENTS = [(2500, "succeeded"), (1000, "succeeded"), (1999, "declined"), (499, "succeeded")]
MRR_CENTS = 999

# The traced payments app: one Stripe call per line of its stdin, the status on its stdout.
PAY_APP = r"""
import http.client, json, sys, urllib.parse, uuid
port = int(sys.argv[1])
for line in sys.stdin:
    path, form = json.loads(line)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, urllib.parse.urlencode(form),
              {"Authorization": "Bearer sk_test_standin", "Idempotency-Key": str(uuid.uuid4()),
               "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    c.close()
    print(r.status, flush=True)
"""


class StripeStandin(http.server.BaseHTTPRequestHandler):
    """Just enough of Stripe's API for the payments app: payment intents confirmed at creation
    (pm_card_visa succeeds, pm_card_chargeDeclined is a 402 card_error) and subscriptions."""
    protocol_version = "HTTP/1.1"
    n = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        StripeStandin.n += 1
        n = StripeStandin.n
        if self.path == "/v1/payment_intents":
            amount = int(form["amount"][0])
            pi = {"id": "pi_st%04d" % n, "object": "payment_intent", "amount": amount,
                  "currency": "usd", "latest_charge": "ch_st%04d" % n, "metadata": {}}
            if form["payment_method"][0] == "pm_card_visa":
                status, out = 200, dict(pi, status="succeeded", amount_received=amount)
            else:
                err = {"type": "card_error", "code": "card_declined",
                       "decline_code": "generic_decline", "charge": "ch_st%04d" % n,
                       "message": "Your card was declined."}
                status, out = 402, {"error": dict(err, payment_intent=dict(
                    pi, status="requires_payment_method", last_payment_error=err))}
        else:
            status, out = 200, {
                "id": "sub_st%04d" % n, "object": "subscription", "status": "active",
                "currency": "usd", "customer": "cus_st1", "metadata": {},
                "items": {"object": "list", "data": [{
                    "id": "si_st1", "object": "subscription_item", "quantity": 1,
                    "price": {"id": "price_st1", "object": "price", "currency": "usd",
                              "unit_amount": int(form["unit_amount"][0]),
                              "recurring": {"interval": "month", "interval_count": 1}}}]}}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def request(port, method, path, body=None, headers=None):
    """(status, headers, body) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=dict(headers or {}), method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class Browser:
    """chromium --headless=new with the DevTools protocol on fds 3 (commands in) and 4 (replies
    out), NUL-terminated JSON; one page target in flat session mode."""

    def __init__(self, tmp):
        self.profile = tempfile.mkdtemp(dir=tmp, prefix="chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--window-size=1280,1700", "about:blank"]
        # The shell puts the pipes where chromium expects them, whatever numbers they have here:
        # bash, because dash takes single-digit descriptors only ("Bad fd number" once the test
        # holds ten files open).
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d' % (to_browser_r, from_browser_w)] +
            argv, pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.replies = {}
        self.cond = threading.Condition()
        self.next_id = 0
        self.session = None
        threading.Thread(target=self._read, daemon=True).start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"],
                                 flatten=True, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=1700,
                  deviceScaleFactor=1, mobile=False)

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.from_browser, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.replies[None] = "closed"
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()

    def call(self, method, timeout=30, session=True, **params):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout * SLOW
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.time()
                if left <= 0 or None in self.replies:
                    raise RuntimeError("chromium did not answer %s" % method)
                self.cond.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError("%s: %s" % (method, reply["error"]))
        return reply["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout=20):
        """Until expr is true in a fully loaded document (its stylesheet applied: a click aims
        at where things are drawn)."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            try:
                v = self.eval("document.readyState === 'complete' && (%s)" % expr)
            except RuntimeError:
                v = None  # between two documents
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("the page never got to: " + expr)

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def click(self, element_id):
        """A real mouse click in the middle of the element."""
        box = self.eval("(() => { const r = document.getElementById(%s).getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                        % json.dumps(element_id))
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def type_into(self, element_id, text):
        self.click(element_id)
        self.call("Input.insertText", text=text)

    def cookies(self):
        return self.call("Network.getCookies")["cookies"]

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", timeout=5, session=False)
                self.proc.wait(10)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass


# What the test reads of the page: every figure's text and data-value, the money lists, the
# event rows and the chart bars.
READ_DOM = r"""(() => {
  const fig = {};
  document.querySelectorAll('[data-value][id]').forEach((el) => {
    fig[el.id] = [el.textContent, el.dataset.value];
  });
  const money = (id) => [...document.querySelectorAll('#' + id + ' li[data-currency]')]
    .map((li) => [li.dataset.currency, li.dataset.value, li.textContent]);
  const events = [...document.querySelectorAll('#events tr.event')].map((tr) => ({
    name: tr.querySelector('td.name').textContent,
    labels: Object.fromEntries([...tr.querySelectorAll('td.labels span')]
      .map((s) => [s.dataset.label, s.dataset.value])),
  }));
  const bars = (id, cls) => [...document.querySelectorAll('#' + id + ' rect.' + cls)]
    .reduce((n, r) => n + Number(r.querySelector('title').textContent), 0);
  return {fig, revenue: money('revenue'), mrr: money('mrr'), events,
          chart: {ok: bars('chart-payments', 'ok'), bad: bars('chart-payments', 'bad'),
                  events: bars('chart-events', 'ev')}};
})()"""


class Run:
    def __init__(self, pids, tmp, stripe_port, env_extra):
        self.port = free_port()
        self.err_path = os.path.join(tmp, "run-%d.stderr" % self.port)
        rules = os.path.join(tmp, "rules.yaml")
        with open(rules, "w") as f:
            f.write(SHOP_RULES)
        env = dict(os.environ, USER_TRACKING_SALT=SALT, **env_extra)
        if "ADMIN_API_TOKEN" not in env_extra:
            env.pop("ADMIN_API_TOKEN", None)
        argv = [BIZPROBE, "run", "--listen", "127.0.0.1:%d" % self.port, "--rules", rules,
                "--state-dir", tempfile.mkdtemp(dir=tmp, prefix="state-"),
                "--stripe-host", "127.0.0.1"]
        for pid in pids:
            argv += ["--pid", str(pid)]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err_path, "w"))
        wait_attached(self.proc, self.err_path)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def metrics(self):
        status, _, text = request(self.port, "GET", "/metrics")
        assert status == 200, status
        return parse(text)

    def summary(self):
        status, _, body = request(self.port, "GET", "/api/admin/metrics?range=30d",
                                  headers={"Authorization": "Bearer " + TOKEN})
        assert status == 200, (status, body)
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def total(m, name):
    """Sum of a family's series (labels of any value)."""
    return sum(v for (n, _), v in m.items() if n == name)


class StatusPage(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bizprobe-status-")
        self.procs, self.runs, self.browser = [], [], None
        self.stripe = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StripeStandin)
        self.stripe.daemon_threads = True
        threading.Thread(target=self.stripe.serve_forever, daemon=True).start()
        self.shop_port = free_port()
        self.shop = self.spawn([PYTHON, SHOP_APP, str(self.shop_port)])
        wait_port(self.shop_port)
        self.pay = self.spawn([PYTHON, "-c", PAY_APP, str(self.stripe.server_address[1])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def spawn(self, argv, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        p = subprocess.Popen(argv, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def tearDown(self):
        if self.browser:
            self.browser.close()
        for r in self.runs:
            r.stop()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        self.stripe.shutdown()
        self.stripe.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **env):
        run = Run([self.shop.pid, self.pay.pid], self.tmp, self.stripe.server_address[1], env)
        self.runs.append(run)
        return run

    def stripe_call(self, path, form):
        self.pay.stdin.write(json.dumps([path, form]) + "\n")
        self.pay.stdin.flush()
        return int(self.pay.stdout.readline())

    def traffic(self):
        """5 signups, 12 product views by 7 users; 3 payments succeed, 1 is declined; one
        subscription of 9.99 a month."""
        self.secrets = []
        ids = []
        for i, plan in enumerate(SHOP_PLANS):
            email = "status.%s.%d@example.com" % (os.urandom(3).hex(), i)
            status, _, body = request(self.shop_port, "POST", "/signup?ref=t",
                                      ("email=%s&plan=%s" % (email, plan)).encode(),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(status, 201, body)
            ids.append(json.loads(body)["user_id"])
            self.secrets.append(email)
        for u in ids[:3]:
            for _ in range(2):
                self.assertEqual(request(self.shop_port, "GET", "/products/bk-101",
                                         headers={"X-User-Id": u})[0], 200)
        for u in APP_USERS:
            for _ in range(3):
                self.assertEqual(request(self.shop_port, "GET", "/products/bk-101",
                                         headers={"X-User-Id": u})[0], 200)
        self.secrets += ids + APP_USERS
        for cents, outcome in PAYMENTS:
            pm = "pm_card_visa" if outcome == "succeeded" else "pm_card_chargeDeclined"
            self.assertEqual(self.stripe_call("/v1/payment_intents", {
                "amount": cents, "currency": "usd", "payment_method": pm, "confirm": "true"}),
                200 if outcome == "succeeded" else 402)
        self.assertEqual(self.stripe_call("/v1/subscriptions", {
            "customer": "cus_st1", "unit_amount": MRR_CENTS}), 200)

    def settled(self, run):
        """/metrics once every figure the traffic makes is in, twice the same (the KPIs are
        published every 5 s)."""
        want = {
            key("business_events_total", event="registration"): 5,
            key("business_events_total", event="product_view"): 12,
            key("business_events_total", event="payment_succeeded"): 3,
            key("business_events_total", event="payment_failed"): 1,
            key("business_events_total", event="subscription_created"): 1,
            key("direct_fan_payment_attempts_total", status="succeeded", currency="USD"): 3,
            key("direct_fan_payment_attempts_total", status="failed", currency="USD"): 1,
            key("direct_fan_subscription_revenue", currency="USD"): MRR_CENTS / 100,
            key("direct_fan_active_users", period="24h", user_type="total"): 7,
        }
        deadline = time.time() + 30 * SLOW
        while True:
            m = run.metrics()
            missing = {k: (m.get(k), v) for k, v in want.items() if m.get(k) != v}
            if not missing:
                break
            self.assertLess(time.time(), deadline, "never reached: %s" % missing)
            time.sleep(0.25)
        return m

    def test_page_in_a_browser_equals_metrics_and_admin_api(self):
        run = self.start(ADMIN_API_TOKEN=TOKEN)
        self.traffic()
        self.settled(run)
        base = "http://127.0.0.1:%d" % run.port

        # Without a session: the login form, no figure, and the API refuses.
        status, headers, body = request(run.port, "GET", "/")
        self.assertEqual(status, 200)
        self.assertIn('id="login-form"', body)
        self.assertNotIn("payments-succeeded", body)
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
        self.assertEqual(request(run.port, "GET", "/api/status")[0], 401)
        # A wrong token: 401, the form again with its message, no cookie.
        status, headers, body = request(run.port, "POST", "/login", b"token=wrong",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 401)
        self.assertIsNone(headers.get("Set-Cookie"))
        self.assertIn('id="login-error"', body)
        self.assertIn('id="login-form"', body)
        # Bounded input: a body past 4 KiB is not read, a forged cookie is no session.
        status, headers, _ = request(run.port, "POST", "/login",
                                     b"token=" + b"x" * 5000,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, headers.get("Set-Cookie")), (413, None))
        self.assertEqual(request(run.port, "GET", "/api/status",
                                 headers={"Cookie": "bizprobe_session=" + "0" * 64})[0], 401)
        self.assertEqual(request(run.port, "GET", "/api/status",
                                 headers={"Cookie": "bizprobe_session=" + TOKEN})[0], 401)

        self.browser = b = Browser(self.tmp)
        b.navigate(base + "/")
        b.wait_for("document.getElementById('login-form') !== null")
        self.assertIsNone(b.eval("document.getElementById('dashboard')"))
        self.assertFalse(b.eval("/\\d/.test(document.body.innerText.replace(/ADMIN_API_TOKEN/, ''))"),
                         "the login page shows a figure")

        # A person mistypes the token: refused, no cookie.
        b.type_into("token", "not-the-token")
        b.click("login-submit")
        b.wait_for("document.getElementById('login-error') !== null")
        self.assertEqual(b.eval("document.getElementById('login-error').textContent"),
                         "Wrong token.")
        self.assertEqual(b.cookies(), [])

        # Then signs in.
        b.type_into("token", TOKEN)
        b.click("login-submit")
        b.wait_for("document.body && document.body.dataset.loaded")
        cookies = b.cookies()
        self.assertEqual([c["name"] for c in cookies], ["bizprobe_session"])
        c = cookies[0]
        self.assertTrue(c["httpOnly"])
        self.assertEqual((c["sameSite"], c["path"], c["secure"]), ("Strict", "/", False))
        self.assertRegex(c["value"], "^[0-9a-f]{64}$")
        self.assertNotIn(TOKEN, c["value"])
        self.assertEqual(b.eval("location.href"), base + "/")
        self.assertEqual(b.eval("document.cookie"), "")  # HttpOnly: no script reads it

        # A fresh poll, between two identical scrapes: the page and Prometheus saw the same.
        m1 = run.metrics()
        summary = run.summary()
        loaded = b.eval("document.body.dataset.loaded")
        b.wait_for("document.body.dataset.loaded !== %s" % json.dumps(loaded), timeout=15)
        dom = b.eval(READ_DOM)
        m = run.metrics()
        shown = ("direct_fan_", "business_events_total", "bizprobe_events_lost_total",
                 "bizprobe_http_", "bizprobe_stripe_", "bizprobe_exchanges_total",
                 "bizprobe_traced_processes")
        for k in m1:
            if k[0].startswith(shown):
                self.assertEqual(m1.get(k), m.get(k), k)
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        b.screenshot(SCREENSHOT)
        self.assertGreater(os.path.getsize(SCREENSHOT), 10000)

        fig = dom["fig"]

        def num(id_):
            return float(fig[id_][1])

        # Payments and success rate.
        ok = m[key("direct_fan_payment_attempts_total", status="succeeded", currency="USD")]
        attempts = total(m, "direct_fan_payment_attempts_total")
        self.assertEqual((ok, attempts), (3, 4))
        self.assertEqual(fig["payments-succeeded"], ["3", "3"])
        self.assertEqual(fig["payments-total"], ["4", "4"])
        self.assertEqual(fig["payments-failed"], ["1", "1"])
        self.assertEqual(num("success-rate"), ok / attempts * 100)
        self.assertEqual(fig["success-rate"][0], "75.0 %")
        # Revenue: the succeeded payments' amounts; MRR.
        revenue = m[key("direct_fan_payment_amounts_sum", currency="USD")]
        self.assertEqual(round(revenue, 2), 39.99)
        self.assertEqual([(cur, text) for cur, _, text in dom["revenue"]], [("USD", "39.99 USD")])
        self.assertEqual(float(dom["revenue"][0][1]), revenue)
        mrr = m[key("direct_fan_subscription_revenue", currency="USD")]
        self.assertEqual(len(dom["mrr"]), 1)
        self.assertEqual((dom["mrr"][0][0], float(dom["mrr"][0][1]), dom["mrr"][0][2]),
                         ("USD", mrr, "9.99 USD"))
        # Users: the KPI gauges and the rule's registrations.
        for period in ("24h", "7d", "30d"):
            v = m[key("direct_fan_active_users", period=period, user_type="total")]
            self.assertEqual(v, 7)
            self.assertEqual(fig["active-" + period], ["7", "7"])
        regs = total(m, "direct_fan_user_registrations_total")
        self.assertEqual(regs, 5)
        self.assertEqual((fig["registrations"][0], num("registrations")), ("5", regs))
        self.assertEqual(num("total-users"),
                         m[key("direct_fan_total_users", user_type="total")])
        # The admin API's 30-day summary, figure by figure.
        s = summary["summary"]
        self.assertEqual((s["totalUsers"], s["newUsers"], s["registrations"]), (7, 5, 5))
        for id_, field in (("sum-total-users", "totalUsers"), ("sum-active-users", "activeUsers"),
                           ("sum-new-users", "newUsers"), ("sum-registrations", "registrations"),
                           ("sum-conversion", "conversionRate"),
                           ("sum-mrr", "monthlyRecurringRevenue")):
            self.assertEqual(num(id_), s[field], id_)
        self.assertEqual(fig["sum-mrr"][0], "9.99 USD")
        # bizprobe's health, from its own metrics.
        for id_, name in (("h-events-lost", "bizprobe_events_lost_total"),
                          ("h-parse-errors", "bizprobe_http_parse_errors_total"),
                          ("h-stripe-parse-errors", "bizprobe_stripe_parse_errors_total"),
                          ("h-dropped", "bizprobe_http_exchanges_dropped_total"),
                          ("h-exchanges", "bizprobe_exchanges_total"),
                          ("h-traced", "bizprobe_traced_processes")):
            self.assertEqual(num(id_), total(m, name), id_)
        self.assertEqual(num("h-traced"), 2)
        self.assertEqual(fig["h-attached"], ["yes", "true"])
        self.assertEqual(num("h-events-lost"), 0)

        # The recent events are exactly the traffic's business events, newest first.
        names = collections.Counter(e["name"] for e in dom["events"])
        self.assertEqual(names, {"registration": 5, "product_view": 12, "payment_succeeded": 3,
                                 "payment_failed": 1, "subscription_created": 1})
        for name, n in names.items():
            self.assertEqual(m[key("business_events_total", event=name)], n, name)
        self.assertEqual(num("events-seen"), 22)
        self.assertEqual(collections.Counter(e["labels"].get("user_type") for e in dom["events"]
                                             if e["name"] == "registration"),
                         {"free": 2, "plus": 2, "pro": 1})
        self.assertEqual([e["labels"] for e in dom["events"] if e["name"] == "payment_failed"],
                         [{"status": "failed", "currency": "USD", "code": "card_declined",
                           "decline_code": "generic_decline"}])
        self.assertEqual(dom["events"][0]["name"], "subscription_created")
        # The charts: the last ten minutes hold every payment and event.
        self.assertEqual(dom["chart"], {"ok": 3, "bad": 1, "events": 22})

        # Nothing that identifies anyone, and never the token: page, URL, stderr.
        html = b.eval("document.documentElement.outerHTML")
        api = b.eval("fetch('/api/status').then((r) => r.text())")
        for text in (html, api):
            self.assertIsNone(re.search("[0-9a-f]{64}", text), "a pseudonym in the page")
            for secret in self.secrets + [TOKEN, SALT, "cus_st1", "pi_st", "ch_st"]:
                self.assertNotIn(secret, text)
        self.assertNotIn(TOKEN, b.eval("location.href"))

        # Signing out ends the browser's session: the login form again.
        b.click("logout")
        b.wait_for("document.getElementById('login-form') !== null")
        self.assertEqual(b.cookies(), [])
        self.assertEqual(run.metrics()[key("bizprobe_status_logins_total", outcome="refused")], 2)
        self.assertEqual(run.metrics()[key("bizprobe_status_logins_total", outcome="ok")], 1)

        self.assertEqual(run.stop(), 0, run.stderr())
        err = run.stderr()
        self.assertIn("status page at %s/" % base, err)
        self.assertNotIn(TOKEN, err)
        for secret in self.secrets:
            self.assertNotIn(secret, err)

    def test_page_is_off_without_admin_token(self):
        run = self.start()
        status, headers, body = request(run.port, "GET", "/")
        self.assertEqual(status, 404)
        self.assertIn("disabled because ADMIN_API_TOKEN is not set", body)
        self.assertEqual(request(run.port, "GET", "/api/status")[0], 404)
        self.assertEqual(request(run.port, "POST", "/login", b"token=x",
                                 {"Content-Type": "application/x-www-form-urlencoded"})[0], 405)
        self.assertEqual(request(run.port, "GET", "/metrics")[0], 200)
        self.assertEqual(run.stop(), 0, run.stderr())
        self.assertIn("status page at http://127.0.0.1:%d/ is off: set ADMIN_API_TOKEN" %
                      run.port, run.stderr())


if __name__ == "__main__":
    sys.exit(main("test_status_page"))

"""The state stage under `bizprobe run`, on a real traced app (the Python shop, plain HTTP):
the KPI gauges and the admin summary equal what the test's own traffic made; counters resume
across a SIGTERM restart (no reset for Prometheus) and across kill -9 up to the last second;
`bizprobe state forget` erases one user through the running process and directly; the store
holds no raw id or e-mail and is readable by root alone."""
import glob
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import parse  # noqa: E402
from harness import (  # noqa: E402
    BIZPROBE, PYTHON, SHOP_APP, SHOP_PLANS, SHOP_RULES, SLOW, free_port, main, wait_attached,
    wait_port)

ADMIN = "admin-" + os.urandom(8).hex()
APP_USERS = ["app-user-7f3a", "app-user-91c2"]  # identified by the gateway, never signed up


def request(port, method, path, body=None, headers=None, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=dict(headers or {}), method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Run:
    def __init__(self, pid, state_dir, rules, salt, tmp):
        self.port = free_port()
        self.err_path = os.path.join(tmp, "run-%d.stderr" % self.port)
        env = dict(os.environ, USER_TRACKING_SALT=salt, ADMIN_API_TOKEN=ADMIN)
        self.proc = subprocess.Popen(
            [BIZPROBE, "run", "--pid", str(pid), "--listen", "127.0.0.1:%d" % self.port,
             "--rules", rules, "--state-dir", state_dir], env=env,
            stdout=subprocess.DEVNULL, stderr=open(self.err_path, "w"))
        wait_attached(self.proc, self.err_path)

    def stderr(self):
        return open(self.err_path).read()

    def metrics(self):
        status, text = request(self.port, "GET", "/metrics")
        assert status == 200, status
        return parse(text)

    def value(self, name, **labels):
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def wait_value(self, want, name, **labels):
        deadline = time.time() + 20 * SLOW
        got = None
        while time.time() < deadline:
            got = self.value(name, **labels)
            if got == want:
                break
            time.sleep(0.25)
        return got

    def summary(self, range_="30d", token=ADMIN):
        return request(self.port, "GET", "/api/admin/metrics?range=" + range_, token=token)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30 * SLOW)


class StateRun(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bizprobe-state-")
        self.state = os.path.join(self.tmp, "state")
        self.rules = os.path.join(self.tmp, "rules.yaml")
        with open(self.rules, "w") as f:
            f.write(SHOP_RULES)
        self.salt = "state-test-" + os.urandom(8).hex()
        self.shop_port = free_port()
        self.shop = subprocess.Popen([PYTHON, SHOP_APP, str(self.shop_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.shop_port)
        self.runs = []

    def tearDown(self):
        for r in self.runs:
            r.stop(signal.SIGKILL)
        self.shop.terminate()
        self.shop.wait(10)

    def start(self):
        run = Run(self.shop.pid, self.state, self.rules, self.salt, self.tmp)
        self.runs.append(run)
        return run

    def signups(self, plans):
        """Signs up one user per plan; returns their user ids (the shop's, raw)."""
        ids = []
        for i, plan in enumerate(plans):
            email = "kpi.%s.%d@example.com" % (os.urandom(3).hex(), i)
            status, body = request(self.shop_port, "POST", "/signup?ref=t",
                                   ("email=%s&plan=%s" % (email, plan)).encode(),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(status, 201, body)
            ids.append(json.loads(body)["user_id"])
            self.emails.append(email)
        return ids

    def view(self, user, n=1):
        for _ in range(n):
            status, _ = request(self.shop_port, "GET", "/products/bk-101?list=home",
                                headers={"X-User-Id": user})
            self.assertEqual(status, 200)

    def traffic(self):
        """5 signups (free x2, plus x2, pro); 3 of them and 2 gateway users view products:
        7 distinct users, 5 registered, 12 views."""
        self.emails = []
        ids = self.signups(SHOP_PLANS)
        for u in ids[:3]:
            self.view(u, 2)
        for u in APP_USERS:
            self.view(u, 3)
        return ids

    def test_kpis_and_summary_equal_the_traffic(self):
        run = self.start()
        ids = self.traffic()
        self.assertEqual(run.wait_value(5, "business_events_total", event="registration"), 5)
        self.assertEqual(run.wait_value(12, "business_events_total", event="product_view"), 12)
        # KPIs are published every 5 s.
        self.assertEqual(run.wait_value(7, "direct_fan_active_users", period="24h",
                                        user_type="total"), 7)
        m = run.metrics()
        for period in ("24h", "7d", "30d"):
            self.assertEqual(m[("direct_fan_active_users",
                                (("period", period), ("user_type", "total")))], 7, period)
        for plan, n in (("free", 2), ("plus", 2), ("pro", 1)):
            self.assertEqual(m[("direct_fan_active_users",
                                (("period", "24h"), ("user_type", plan)))], n, plan)
            self.assertEqual(m[("direct_fan_total_users", (("user_type", plan),))], n, plan)
        self.assertEqual(m[("direct_fan_total_users", (("user_type", "total"),))], 7)
        # Nobody paid: the shop's checkout is not Stripe.
        self.assertEqual(m[("direct_fan_conversion_rate", (("period", "24h"),))], 0)

        status, body = run.summary()
        self.assertEqual(status, 200, body)
        s = json.loads(body)
        self.assertEqual(s["range"], "30d")
        self.assertEqual(s["summary"]["totalUsers"], 7)
        self.assertEqual(s["summary"]["activeUsers"], 7)
        self.assertEqual(s["summary"]["newUsers"], 5)
        self.assertEqual(s["summary"]["registrations"], 5)
        self.assertEqual(s["summary"]["conversionRate"], 0)
        self.assertEqual(s["summary"]["monthlyRecurringRevenue"], 0)
        self.assertEqual(run.summary(token="wrong")[0], 401)
        self.assertEqual(run.summary(range_="1y")[0], 400)

        self.assertEqual(run.stop(), 0, run.stderr())
        # The store: root's alone, and no raw id, e-mail or salt in any of its files.
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        files = [f for f in glob.glob(os.path.join(self.state, "state.db*"))]
        self.assertIn(os.path.join(self.state, "state.db"), files)
        for f in files:
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode) & 0o077, 0, f)
            data = open(f, "rb").read()
            for secret in ids + APP_USERS + self.emails + [self.salt, ADMIN]:
                self.assertNotIn(secret.encode(), data, "%s in %s" % (secret, f))

    def test_counters_resume_after_sigterm_and_kill9(self):
        run = self.start()
        self.traffic()
        self.assertEqual(run.wait_value(12, "direct_fan_product_views_total"), 12)
        self.assertEqual(run.wait_value(7, "direct_fan_active_users", period="24h",
                                        user_type="total"), 7)
        self.assertEqual(run.stop(), 0, run.stderr())

        # A new run on the same store: the first scrape after attaching already has the values
        # (Prometheus sees no reset), before any new traffic.
        run = self.start()
        m = run.metrics()
        self.assertEqual(m[("business_events_total", (("event", "registration"),))], 5)
        self.assertEqual(m[("business_events_total", (("event", "product_view"),))], 12)
        self.assertEqual(m[("direct_fan_active_users",
                            (("period", "24h"), ("user_type", "total")))], 7)
        # The rule's family is registered by its first event, and resumes with it.
        self.view(APP_USERS[0])
        self.assertEqual(run.wait_value(13, "direct_fan_product_views_total"), 13)
        self.assertEqual(run.value("business_events_total", event="product_view"), 13)

        # kill -9 after a quiet second: the last flush holds everything.
        time.sleep(2)
        self.assertEqual(run.stop(signal.SIGKILL), -signal.SIGKILL)
        run = self.start()
        self.assertEqual(run.value("business_events_total", event="product_view"), 13)

        # kill -9 right after traffic: at most the last second is lost, never more, and what
        # was kept is whole (no half-written batch).
        self.view(APP_USERS[1], 4)
        self.assertEqual(run.wait_value(17, "business_events_total", event="product_view"), 17)
        self.assertEqual(run.stop(signal.SIGKILL), -signal.SIGKILL)
        run = self.start()
        kept = run.value("business_events_total", event="product_view")
        self.assertIn(kept, (13, 14, 15, 16, 17))
        self.assertEqual(run.stop(), 0, run.stderr())

    def test_forget_erases_one_user(self):
        run = self.start()
        ids = self.traffic()
        self.assertEqual(run.wait_value(7, "direct_fan_active_users", period="24h",
                                        user_type="total"), 7)
        env = dict(os.environ, USER_TRACKING_SALT=self.salt)
        # Through the running process (it holds the store).
        out = subprocess.run([BIZPROBE, "state", "forget", "--user", ids[0], "--state-dir",
                              self.state], env=env, capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("erased by the running bizprobe", out.stdout)
        self.assertNotIn(ids[0], out.stdout + out.stderr)
        self.assertEqual(run.wait_value(6, "direct_fan_active_users", period="24h",
                                        user_type="total"), 6)
        self.assertEqual(run.value("direct_fan_active_users", period="24h",
                                   user_type="free"), 1)
        status, body = run.summary()
        self.assertEqual(json.loads(body)["summary"]["totalUsers"], 6)
        self.assertEqual(run.stop(), 0, run.stderr())

        # Directly, with no run: a gateway user; then one that was never there.
        out = subprocess.run([BIZPROBE, "state", "forget", "--user", APP_USERS[0],
                              "--state-dir", self.state], env=env, capture_output=True,
                             text=True, timeout=30 * SLOW)
        self.assertEqual((out.returncode, out.stdout.strip()), (0, self.state + ": erased"),
                         out.stderr)
        out = subprocess.run([BIZPROBE, "state", "forget", "--user", "nobody-here",
                              "--state-dir", self.state], env=env, capture_output=True,
                             text=True, timeout=30 * SLOW)
        self.assertEqual((out.returncode, out.stdout.strip()),
                         (0, self.state + ": no such user"), out.stderr)
        run = self.start()
        self.assertEqual(run.value("direct_fan_active_users", period="24h",
                                   user_type="total"), 5)
        self.assertEqual(run.stop(), 0, run.stderr())

    def test_a_second_run_on_the_store_is_refused(self):
        run = self.start()
        port = free_port()
        other = subprocess.run(
            [BIZPROBE, "run", "--pid", str(self.shop.pid), "--listen", "127.0.0.1:%d" % port,
             "--state-dir", self.state], env=dict(os.environ, USER_TRACKING_SALT=self.salt),
            capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(other.returncode, 2)
        self.assertIn("another bizprobe run uses this state directory", other.stderr)
        self.assertEqual(run.stop(), 0, run.stderr())


if __name__ == "__main__":
    sys.exit(main("test_state_run"))

"""`bizprobe run --rules` on a second app in another runtime: the Python shop
(examples/python-shop, CPython's standard library, plain HTTP) with its own rules file. Its
metrics must equal the ground truth its traffic script writes, exactly; a SIGHUP reloads the
rules, a bad file on reload is counted and the rules in force stay; so does an update of a
mounted ConfigMap (the kubelet's ..data symlink swap), noticed without a signal; a bad file at
start is refused with FILE:LINE:COL diagnostics."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import compare, parse  # noqa: E402
from harness import (  # noqa: E402
    BIZPROBE, PYTHON, ROOT, SLOW, free_port, main, wait_attached, wait_port)

SHOP = os.path.join(ROOT, "examples", "python-shop")
RULES = os.path.join(SHOP, "rules.yaml")


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return parse(r.read().decode())


def post(port, path, body=b"", headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Shop:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([PYTHON, os.path.join(SHOP, "shop.py"), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Run:
    """bizprobe run on one process, with a rules file; its stderr kept."""

    def __init__(self, pid, rules, tmp, *extra):
        self.port = free_port()
        self.err_path = os.path.join(tmp, "run-%d.stderr" % self.port)
        env = dict(os.environ, USER_TRACKING_SALT="test-salt-" + os.urandom(4).hex())
        self.proc = subprocess.Popen(
            [BIZPROBE, "run", "--pid", str(pid), "--listen", "127.0.0.1:%d" % self.port,
             "--rules", rules, "--namespace", "shop",
             "--state-dir", tempfile.mkdtemp(dir=tmp, prefix="state-")] + list(extra),
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.err_path, "w"))

    def stderr(self):
        return open(self.err_path).read()

    def wait_attached(self):
        wait_attached(self.proc, self.err_path)

    def wait_value(self, name, labels, value, timeout=20):
        """Scrapes until the series has the value (or the timeout); returns the last value."""
        key = (name, tuple(sorted(labels.items())))
        deadline = time.time() + timeout * SLOW
        got = None
        while time.time() < deadline:
            got = scrape(self.port).get(key)
            if got == value:
                break
            time.sleep(0.2)
        return got

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30 * SLOW)


class RulesRun(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bizprobe-rules-")

    def setUp(self):
        self.shop = Shop()

    def tearDown(self):
        self.shop.stop()

    def test_python_shop_metrics_equal_ground_truth(self):
        run = Run(self.shop.proc.pid, RULES, self.tmp)
        try:
            run.wait_attached()
            expect = os.path.join(self.tmp, "shop-expect.json")
            subprocess.run([PYTHON, os.path.join(SHOP, "traffic.py"), "--app",
                            "http://127.0.0.1:%d" % self.shop.port, "--expect", expect],
                           check=True, timeout=120 * SLOW, stdout=subprocess.DEVNULL)
            truth = json.load(open(expect))
            self.assertTrue(truth["final"])
            families = sorted({s["name"].rsplit("_bucket", 1)[0].rsplit("_sum", 1)[0]
                              .rsplit("_count", 1)[0] for s in truth["samples"]})
            deadline = time.time() + 30 * SLOW
            while True:
                passed, failed = compare(truth, scrape(run.port), families, quiet=True)
                if failed == 0 or time.time() > deadline:
                    break
                time.sleep(0.5)
            passed, failed = compare(truth, scrape(run.port), families)
            self.assertEqual(failed, 0)
            self.assertEqual(passed, len(truth["samples"]))
            # The shop's own families, not the demo's: the rules are not shaped to one app.
            self.assertIn("shop_signups_total", families)
            self.assertIn("shop_checkout_amount", families)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())

    def test_bodies_kept_for_rules_routes_only(self):
        """The HTTP stage keeps a body only when a rule that matches its exchange reads one: a
        large signup form still gives its plan label; large cart posts, whose rule reads the
        path, and large posts to a route no rule names are counted, their bodies (request and
        answer) skipped, exactly."""
        run = Run(self.shop.proc.pid, RULES, self.tmp)
        try:
            run.wait_attached()
            pad = "x" * 4000
            tag = os.urandom(4).hex()
            uid = None
            for i in range(3):
                form = urllib.parse.urlencode(
                    {"email": "big%d-%s@shop.example" % (i, tag), "plan": "pro", "pad": pad})
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/signup" % self.shop.port, data=form.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Cookie": "lang=de"}, method="POST")
                with urllib.request.urlopen(req, timeout=10) as r:
                    self.assertEqual(r.status, 201)
                    uid = json.loads(r.read())["user_id"]
            # The cart rule reads the path and the X-User-Id header, no body: the event counts,
            # the 3 KB bodies (and the answers) are skipped.
            for _ in range(2):
                self.assertEqual(post(self.shop.port, "/cart/bk-101",
                                      json.dumps({"qty": 1, "pad": "z" * 3000}).encode(),
                                      {"X-User-Id": uid}), 200)
            for _ in range(5):
                self.assertEqual(post(self.shop.port, "/feedback", b"y" * 5000), 404)
            labels = {"plan": "pro", "lang": "de"}
            self.assertEqual(run.wait_value("shop_signups_total", labels, 3), 3)
            self.assertEqual(run.wait_value("shop_cart_adds_total", {"sku": "bk-101"}, 2), 2)
            self.assertEqual(run.wait_value("bizprobe_exchanges_total", {"role": "server"}, 10),
                             10)
            self.assertEqual(run.wait_value("bizprobe_http_bodies_skipped_total", {}, 14), 14)
            m = scrape(run.port)
            self.assertEqual(m.get(("bizprobe_rules_body_errors_total", ())) or 0, 0)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())

    def test_sighup_reloads_and_a_bad_reload_keeps_the_rules(self):
        rules = os.path.join(self.tmp, "reload.yaml")
        one = ("version: 1\nevents:\n  - name: checkout_try\n    metric: checkout_tries_total\n"
               "    when: {method: POST, route: /checkout}\n")
        two = one + ("  - name: cart_try\n    metric: cart_tries_total\n"
                     "    when: {method: POST, route: \"/cart/{sku}\"}\n")
        with open(rules, "w") as f:
            f.write(one)
        run = Run(self.shop.proc.pid, rules, self.tmp)
        try:
            run.wait_attached()
            for _ in range(3):
                post(self.shop.port, "/checkout")  # 401 without a user: matched all the same
            self.assertEqual(run.wait_value("shop_checkout_tries_total", {}, 3), 3)
            self.assertIsNone(scrape(run.port).get(("shop_cart_tries_total", ())))

            with open(rules, "w") as f:
                f.write(two)
            run.proc.send_signal(signal.SIGHUP)
            self.assertEqual(run.wait_value("bizprobe_rules_reloads_total",
                                            {"outcome": "ok"}, 1), 1)
            self.assertEqual(run.wait_value("bizprobe_rules_loaded_events", {}, 2), 2)
            for _ in range(2):
                post(self.shop.port, "/cart/bk-101", b'{"qty": 1}')
            post(self.shop.port, "/checkout")
            self.assertEqual(run.wait_value("shop_cart_tries_total", {}, 2), 2)
            self.assertEqual(run.wait_value("shop_checkout_tries_total", {}, 4), 4)

            with open(rules, "w") as f:
                f.write(two + "    bogus: key\n")
            run.proc.send_signal(signal.SIGHUP)
            self.assertEqual(run.wait_value("bizprobe_rules_reloads_total",
                                            {"outcome": "failed"}, 1), 1)
            post(self.shop.port, "/cart/bk-101", b'{"qty": 1}')
            self.assertEqual(run.wait_value("shop_cart_tries_total", {}, 3), 3)
            m = scrape(run.port)
            self.assertEqual(m[("bizprobe_rules_reloads_total", (("outcome", "ok"),))], 1)
            self.assertEqual(m[("bizprobe_rules_loaded_events", ())], 2)
            self.assertEqual(m[("business_events_total", (("event", "cart_try"),))], 3)
            self.assertIn("%s:9:5: unknown key 'bogus'" % rules, run.stderr())
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())

    def test_configmap_update_reloads_without_a_signal(self):
        """The layout the kubelet's atomic writer gives a mounted ConfigMap: each version in a
        ..<timestamp> directory, ..data a symlink to the current one, the key a symlink to
        ..data/<key>. An update writes a new version and renames a new ..data over the old."""
        cm = tempfile.mkdtemp(dir=self.tmp, prefix="configmap-")
        versions = iter(range(1, 10))

        def publish(text):
            v = "..2026_12_03_07_00_0%d.00000000%d" % (next(versions), os.getpid() % 10)
            os.mkdir(os.path.join(cm, v))
            with open(os.path.join(cm, v, "rules.yml"), "w") as f:
                f.write(text)
            old = os.path.realpath(os.path.join(cm, "..data")) \
                if os.path.islink(os.path.join(cm, "..data")) else None
            os.symlink(v, os.path.join(cm, "..data_tmp"))
            os.rename(os.path.join(cm, "..data_tmp"), os.path.join(cm, "..data"))
            if not os.path.lexists(os.path.join(cm, "rules.yml")):
                os.symlink("..data/rules.yml", os.path.join(cm, "rules.yml"))
            if old:  # the kubelet removes the version it replaced
                os.remove(os.path.join(old, "rules.yml"))
                os.rmdir(old)

        one = ("version: 1\nevents:\n  - name: checkout_try\n    metric: checkout_tries_total\n"
               "    when: {method: POST, route: /checkout}\n")
        two = one + ("  - name: cart_try\n    metric: cart_tries_total\n"
                     "    when: {method: POST, route: \"/cart/{sku}\"}\n")
        publish(one)
        rules = os.path.join(cm, "rules.yml")
        run = Run(self.shop.proc.pid, rules, self.tmp)
        try:
            run.wait_attached()
            for _ in range(2):
                post(self.shop.port, "/checkout")
            self.assertEqual(run.wait_value("shop_checkout_tries_total", {}, 2), 2)

            publish(two)
            self.assertEqual(run.wait_value("bizprobe_rules_reloads_total",
                                            {"outcome": "ok"}, 1), 1)
            self.assertEqual(run.wait_value("bizprobe_rules_loaded_events", {}, 2), 2)
            for _ in range(3):
                post(self.shop.port, "/cart/bk-101", b'{"qty": 1}')
            post(self.shop.port, "/checkout")
            self.assertEqual(run.wait_value("shop_cart_tries_total", {}, 3), 3)
            self.assertEqual(run.wait_value("shop_checkout_tries_total", {}, 3), 3)

            # A broken version: counted once, the rules in force stay.
            publish(two + "    bogus: key\n")
            self.assertEqual(run.wait_value("bizprobe_rules_reloads_total",
                                            {"outcome": "failed"}, 1), 1)
            post(self.shop.port, "/cart/bk-101", b'{"qty": 1}')
            self.assertEqual(run.wait_value("shop_cart_tries_total", {}, 4), 4)
            time.sleep(5)  # two more looks at the file: the bad version is not tried again
            m = scrape(run.port)
            self.assertEqual(m[("bizprobe_rules_reloads_total", (("outcome", "failed"),))], 1)
            self.assertEqual(m[("bizprobe_rules_reloads_total", (("outcome", "ok"),))], 1)
            self.assertEqual(m[("bizprobe_rules_loaded_events", ())], 2)
            self.assertEqual(m[("business_events_total", (("event", "cart_try"),))], 4)
            self.assertEqual(m[("business_events_total", (("event", "checkout_try"),))], 3)
            self.assertIn("%s:9:5: unknown key 'bogus'" % rules, run.stderr())
            self.assertEqual(run.stderr().count("%s: changed on disk, reloading" % rules), 2)
        finally:
            self.assertEqual(run.stop(), 0, run.stderr())

    def test_bad_rules_file_refused_at_start(self):
        rules = os.path.join(self.tmp, "bad.yaml")
        with open(rules, "w") as f:
            f.write("version: 1\nevents:\n  - name: x\n    when: {route: \"/a/{b\"}\n")
        run = Run(self.shop.proc.pid, rules, self.tmp)
        self.assertEqual(run.proc.wait(30 * SLOW), 2)
        self.assertRegex(run.stderr(), r"(?m)^%s:4:\d+: bad route template" % re.escape(rules))
        self.assertNotIn("attached:", run.stderr())
        check = subprocess.run([BIZPROBE, "rules", "check", rules], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 2)
        self.assertEqual(check.stderr, run.stderr().split("bizprobe run:")[0])


if __name__ == "__main__":
    sys.exit(main("test_rules_run"))

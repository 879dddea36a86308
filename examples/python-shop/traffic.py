#!/usr/bin/env python3
"""Scripted traffic for the Python shop (shop.py), with the exact metrics bizprobe must export
for it with examples/python-shop/rules.yaml and `--namespace shop`.

usage: traffic.py [--app URL] [--expect FILE] [--rounds N]

  --app URL     the shop (http://127.0.0.1:8080)
  --expect FILE write the ground truth JSON there (default: stdout)
  --rounds N    run the fixed traffic N times, each round with new users (1)

Clients behave as the shop's real ones do: a browser keeps its connection open and carries the
session cookie `sid` (and the language picker's `lang`); the mobile apps come through the
gateway, which sets X-User-Id. Every client sends X-Client. Signups always carry ?ref= and a
lang cookie, so every label has a value.

Users: `users.registered` counts signups by plan; `users.identified` counts the distinct
identities the shop's requests carried (a browser's sid, an app's X-User-Id), one per user here.
A browser's identity is its session, not its account id: its pseudonym differs from the user of
its signup event (response_json user_id), an app user's is the same.

Ground truth: the same format as examples/traffic/mix.js (bizprobe-ground-truth/1): counters are
what this run adds, the histogram as _bucket (le as the exporter writes integral bounds), _sum
and _count; families in `complete` have every non-zero series listed. Every answer is checked
(status and body); anything unexpected exits 1 with the ground truth written with final false.
"""
import argparse
import http.client
import json
import os
import secrets
import sys
import time
import urllib.parse

NS = "shop"
# The shop's catalogue as its product pages must show it: sku -> (category, price in cents).
CATALOGUE = {"bk-101": ("books", 2475), "bk-102": ("books", 1250), "gm-201": ("games", 5925),
             "gm-202": ("games", 2000), "mu-301": ("music", 2150), "mu-302": ("music", 825)}
CHECKOUT_BUCKETS = [10, 25, 50, 100, 250, 500]


class Mismatch(Exception):
    pass


class Truth:
    def __init__(self):
        self.samples = {}
        self.actions = {}
        self.registered = {}
        self.identified = set()

    def add(self, name, labels, v=1, prefix=True):
        full = "%s_%s" % (NS, name) if prefix else name
        key = (full, tuple(sorted(labels.items())))
        self.samples[key] = self.samples.get(key, 0) + v

    def event(self, name):
        self.add("business_events_total", {"event": name}, prefix=False)

    def count(self, what):
        self.actions[what] = self.actions.get(what, 0) + 1

    def doc(self, final, started, problems=None):
        out = [{"name": n, "labels": dict(l), "value": round(v, 6)}
               for (n, l), v in sorted(self.samples.items())]
        complete = ["%s_%s" % (NS, f) for f in ("signups_total", "product_views_total",
                                                  "cart_adds_total", "checkout_amount",
                                                  "funnel_steps_total")]
        return {"format": "bizprobe-ground-truth/1", "namespace": NS, "mode": "fixed",
                "app": "python-shop", "rules": "examples/python-shop/rules.yaml", "final": final,
                "started_at": started,
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "semantics": "counters: increase caused by this run; histogram as _bucket/_sum/"
                             "_count; bizprobe run with --namespace shop",
                "complete": complete + ["business_events_total"], "samples": out,
                "actions": self.actions,
                "users": {"registered": dict(sorted(self.registered.items())),
                          "identified": len(self.identified)},
                "checks": {"ok": not problems, "problems": problems or []} if final else None}


class Client:
    """One browser or app install: its own keep-alive connection, cookies and headers."""

    def __init__(self, base, kind, lang, truth):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.kind, self.lang, self.truth = kind, lang, truth
        self.sid = None
        self.user_id = None  # known after signup
        self.gateway = kind in ("ios", "android")  # identified by X-User-Id after signup
        self.cart = {}  # what the shop's cart for this user must hold: sku -> qty

    def request(self, method, path, body=None, ctype=None):
        headers = {"X-Client": self.kind, "User-Agent": "shop-traffic/%s" % self.kind}
        cookies = ["lang=%s" % self.lang]
        if self.sid:
            cookies.insert(0, "sid=%s" % self.sid)
        headers["Cookie"] = "; ".join(cookies)
        if self.gateway and self.user_id:
            headers["X-User-Id"] = self.user_id
        if self.user_id and (self.sid or self.gateway):
            self.truth.identified.add(self.user_id)
        if body is not None:
            headers["Content-Type"] = ctype
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:  # the server closed an idle keep-alive connection: reconnect once
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        cookie = r.getheader("Set-Cookie") or ""
        if cookie.startswith("sid=") and not self.gateway:
            self.sid = cookie[4:].split(";", 1)[0]
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return r.status, doc

    def expect(self, what, got, status):
        if got[0] != status:
            raise Mismatch("%s: expected HTTP %d, got %d %r" % (what, status, got[0], got[1]))
        return got[1]

    # ---------------------------------------------------------------- actions
    def signup(self, email, plan, ref, status=201):
        form = urllib.parse.urlencode({"email": email, "plan": plan})
        doc = self.expect("signup", self.request("POST", "/signup?ref=" + urllib.parse.quote(ref),
                                                  form, "application/x-www-form-urlencoded"),
                          status)
        t = self.truth
        if status != 201:
            t.count("signups_rejected")
            return
        if not doc or doc.get("plan") != plan or not str(doc.get("user_id", "")).startswith("u_"):
            raise Mismatch("signup: answer %r" % doc)
        if not self.gateway and not self.sid:
            raise Mismatch("signup: no sid cookie")
        self.user_id = doc["user_id"]
        t.add("signups_total", {"plan": plan, "lang": self.lang})
        t.event("signup")
        t.add("funnel_steps_total", {"funnel": "purchase", "step": "signed_up"})
        t.event("funnel_signed_up")
        t.registered[plan] = t.registered.get(plan, 0) + 1
        t.count("signups")

    def view(self, sku, lst):
        known = sku in CATALOGUE
        doc = self.expect("view %s" % sku,
                          self.request("GET", "/products/%s?list=%s" % (sku, lst)),
                          200 if known else 404)
        if not known:
            self.truth.count("product_views_404")
            return
        category, cents = CATALOGUE[sku]
        if doc.get("category") != category or doc.get("price") != cents / 100:
            raise Mismatch("view %s: answer %r" % (sku, doc))
        self.truth.add("product_views_total", {"category": category, "list": lst})
        self.truth.event("product_view")
        self.truth.count("product_views")

    def cart_add(self, sku, qty, status=200):
        doc = self.expect("cart %s %r" % (sku, qty),
                          self.request("POST", "/cart/%s" % sku, json.dumps({"qty": qty}),
                                       "application/json"), status)
        if status != 200:
            self.truth.count("cart_adds_rejected")
            return
        if doc.get("sku") != sku or doc.get("qty") != qty:
            raise Mismatch("cart %s: answer %r" % (sku, doc))
        self.cart[sku] = self.cart.get(sku, 0) + qty
        self.truth.add("cart_adds_total", {"sku": sku})
        self.truth.event("cart_add")
        self.truth.add("funnel_steps_total", {"funnel": "purchase", "step": "added_to_cart"})
        self.truth.event("funnel_added_to_cart")
        self.truth.count("cart_adds")

    def checkout(self, status=200):
        doc = self.expect("checkout", self.request("POST", "/checkout", b"", "application/json"),
                          status)
        if status != 200:
            self.truth.count("checkouts_rejected")
            return
        cents = sum(CATALOGUE[s][1] * q for s, q in self.cart.items())
        total = cents / 100
        if doc.get("total") != total or doc.get("currency") != "EUR":
            raise Mismatch("checkout: answer %r, expected total %s" % (doc, total))
        self.cart = {}
        t = self.truth
        t.add("checkout_amount_sum", {"client": self.kind}, total)
        t.add("checkout_amount_count", {"client": self.kind})
        for le in CHECKOUT_BUCKETS:
            t.add("checkout_amount_bucket", {"client": self.kind, "le": str(le)},
                  1 if total <= le else 0)
        t.add("checkout_amount_bucket", {"client": self.kind, "le": "+Inf"})
        t.event("checkout")
        t.add("funnel_steps_total", {"funnel": "purchase", "step": "checked_out"})
        t.event("funnel_checked_out")
        t.count("checkouts")


def round_(base, truth, nonce, n):
    def client(kind, lang):
        return Client(base, kind, lang, truth)

    mail = lambda i: "shopper%d.%s.%d@example.test" % (i, nonce, n)  # noqa: E731
    web1, web2, ios1 = client("web", "en"), client("web", "de"), client("ios", "fr")
    and1, web3, ios2 = client("android", "en"), client("web", "es"), client("ios", "de")
    anon = client("web", "en")

    # Browsing before signing up (anonymous), and an unknown product.
    anon.view("bk-101", "home")
    anon.view("gm-201", "search")
    anon.view("zz-999", "search")
    anon.cart_add("bk-101", 1, status=401)          # must sign in first
    anon.checkout(status=401)

    web1.signup(mail(1), "free", "newsletter")
    web2.signup(mail(2), "plus", "search_ad")
    ios1.signup(mail(3), "pro", "newsletter")
    and1.signup(mail(4), "free", "friend")
    web3.signup(mail(5), "free", "friend")
    ios2.signup(mail(6), "plus", "podcast")
    client("web", "fr").signup(mail(1), "pro", "newsletter", status=409)   # e-mail taken
    client("web", "en").signup(mail(7), "gold", "newsletter", status=400)  # no such plan

    web1.view("bk-101", "home")
    web1.view("bk-102", "recommendations")
    web1.cart_add("bk-101", 1)
    web1.cart_add("bk-102", 2)
    web1.checkout()                                 # 49.75
    web2.view("gm-201", "search")
    web2.cart_add("gm-201", 1)
    web2.cart_add("mu-302", 3)
    web2.cart_add("gm-202", 0, status=400)          # qty 0
    web2.cart_add("xx-000", 1, status=404)          # unknown sku
    web2.checkout()                                 # 84.00
    ios1.view("mu-301", "recommendations")
    ios1.view("mu-302", "recommendations")
    ios1.cart_add("mu-301", 10)
    ios1.cart_add("gm-201", 4)
    ios1.checkout()                                 # 452.00
    and1.view("gm-202", "home")
    and1.cart_add("gm-202", 1)
    and1.checkout()                                 # 20.00, on a bucket bound
    web3.view("mu-302", "search")
    web3.checkout(status=409)                       # empty cart
    ios2.cart_add("bk-102", 1)
    ios2.cart_add("bk-101", 1)
    ios2.checkout()                                 # 37.25
    web1.cart_add("gm-201", 10)
    web1.cart_add("mu-301", 10)
    web1.checkout()                                 # 807.50, above the last bucket
    for c in (web1, web2, ios1, and1, web3, ios2, anon):
        c.conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--app", default="http://127.0.0.1:8080")
    ap.add_argument("--expect")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    truth = Truth()

    def write(doc):
        text = json.dumps(doc, indent=2) + "\n"
        if not a.expect:
            sys.stdout.write(text)
            return
        tmp = os.path.join(os.path.dirname(os.path.abspath(a.expect)),
                           ".%s.%d.tmp" % (os.path.basename(a.expect), os.getpid()))
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.expect)

    try:
        status, _ = Client(a.app, "web", "en", Truth()).request("GET", "/healthz")
        if status != 200:
            raise Mismatch("healthz answered %d" % status)
    except OSError as e:
        sys.stderr.write("traffic: shop not reachable at %s (%s)\n" % (a.app, e))
        return 1
    nonce = secrets.token_hex(4)  # e-mails stay unique when the traffic runs again
    try:
        for n in range(a.rounds):
            round_(a.app, truth, nonce, n)
    except Mismatch as e:
        sys.stderr.write("traffic: %s\n" % e)
        write(truth.doc(False, started))
        return 1
    write(truth.doc(True, started))
    acts = truth.actions
    sys.stderr.write("traffic: ok: %d signups, %d product views, %d cart adds, %d checkouts\n" % (
        acts.get("signups", 0), acts.get("product_views", 0), acts.get("cart_adds", 0),
        acts.get("checkouts", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

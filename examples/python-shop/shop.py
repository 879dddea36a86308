#!/usr/bin/env python3
"""A small web shop, the second app bizprobe traces: another runtime (CPython, standard library
only), another framework (http.server), other routes, other body formats, other identities than
the fan platform. No metrics code: examples/python-shop/rules.yaml says what its traffic means.

usage: shop.py PORT            plain HTTP on 127.0.0.1:PORT (HTTP/1.1, keep-alive)

Routes
  POST /signup[?ref=CAMPAIGN]  form-encoded email, plan (free|plus|pro) -> 201
                               {"user_id", "plan"} and Set-Cookie: sid=<session>; 400 bad form,
                               409 e-mail already registered
  GET  /products/<sku>[?list=search|home|recommendations]
                               -> 200 {"sku", "name", "category", "price"}; 404 unknown sku
  POST /cart/<sku>             JSON {"qty": 1..10} -> 200 {"sku", "qty", "cart_items"};
                               400 bad qty, 404 unknown sku, 401 no user
  POST /checkout               -> 200 {"order_id", "total", "currency", "items"} (the cart is
                               emptied); 409 empty cart, 401 no user
  GET  /healthz                -> 200 {"ok": true}

Who is asking: the session cookie `sid` that /signup sets (browsers), or `X-User-Id`, which the
shop's API gateway sets for the mobile apps (trusted as is; an unknown id is a 401). Product pages
are public. Clients say what they are in `X-Client` (web, ios, android); the shop only logs it.

Prices are in euros, multiples of 0.25, so totals are exact in floating point. Logs one JSON line
per request on stderr: method, path (no query), status, client. Never e-mails, session ids or
user ids.
"""
import hashlib
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.parse

PRODUCTS = {
    "bk-101": ("The Pragmatic Tracer", "books", 2475),
    "bk-102": ("Kernel Poems", "books", 1250),
    "gm-201": ("Packet Quest", "games", 5925),
    "gm-202": ("Ring Buffer Racer", "games", 2000),
    "mu-301": ("Syscall Symphony (LP)", "music", 2150),
    "mu-302": ("uprobe Blues", "music", 825),
}
PLANS = ("free", "plus", "pro")

lock = threading.Lock()
users = {}       # user_id -> {"email_hash", "plan", "ref"}
emails = set()   # sha256 of e-mails already registered
sessions = {}    # sid -> user_id
carts = {}       # user_id -> {sku: qty}


def log(**kv):
    sys.stderr.write(json.dumps(dict(ts=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **kv))
                     + "\n")


class Shop(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "py-shop/1"

    def log_message(self, fmt, *args):  # http.server's own access log: replaced by log()
        pass

    # ------------------------------------------------------------ plumbing
    def reply(self, status, obj=None, headers=()):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        log(kind="http", method=self.command, path=urllib.parse.urlsplit(self.path).path,
            status=status, client=self.headers.get("X-Client", "-")[:16])

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def user(self):
        """The user behind the request, or None."""
        uid = self.headers.get("X-User-Id")
        if uid is not None:
            return uid if uid in users else None
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k:
                cookies[k] = v
        return sessions.get(cookies.get("sid", ""))

    # ------------------------------------------------------------ routes
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/healthz":
            return self.reply(200, {"ok": True})
        if len(parts) == 2 and parts[0] == "products":
            p = PRODUCTS.get(parts[1])
            if not p:
                return self.reply(404, {"error": "no such product"})
            name, category, cents = p
            return self.reply(200, {"sku": parts[1], "name": name, "category": category,
                                    "price": cents / 100})
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        raw = self.body()
        if url.path == "/signup":
            return self.signup(raw, urllib.parse.parse_qs(url.query))
        if len(parts) == 2 and parts[0] == "cart":
            return self.cart_add(parts[1], raw)
        if url.path == "/checkout":
            return self.checkout()
        return self.reply(404, {"error": "not found"})

    def signup(self, raw, query):
        if not (self.headers.get("Content-Type") or "").startswith(
                "application/x-www-form-urlencoded"):
            return self.reply(415, {"error": "form-encoded body expected"})
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
        email = (form.get("email") or [""])[0]
        plan = (form.get("plan") or [""])[0]
        if "@" not in email or plan not in PLANS:
            return self.reply(400, {"error": "email and plan (free, plus or pro) required"})
        h = hashlib.sha256(email.lower().encode()).hexdigest()
        with lock:
            if h in emails:
                return self.reply(409, {"error": "already registered"})
            emails.add(h)
            uid = "u_" + secrets.token_hex(6)
            users[uid] = {"email_hash": h, "plan": plan, "ref": (query.get("ref") or [None])[0]}
            sid = secrets.token_urlsafe(18)
            sessions[sid] = uid
        return self.reply(201, {"user_id": uid, "plan": plan},
                          [("Set-Cookie", "sid=%s; Path=/; HttpOnly; SameSite=Lax" % sid)])

    def cart_add(self, sku, raw):
        uid = self.user()
        if uid is None:
            return self.reply(401, {"error": "sign in first"})
        if sku not in PRODUCTS:
            return self.reply(404, {"error": "no such product"})
        try:
            qty = json.loads(raw or b"{}").get("qty")
        except (ValueError, AttributeError):
            qty = None
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 10:
            return self.reply(400, {"error": "qty must be 1..10"})
        with lock:
            cart = carts.setdefault(uid, {})
            cart[sku] = cart.get(sku, 0) + qty
            items = sum(cart.values())
        return self.reply(200, {"sku": sku, "qty": qty, "cart_items": items})

    def checkout(self):
        uid = self.user()
        if uid is None:
            return self.reply(401, {"error": "sign in first"})
        with lock:
            cart = carts.pop(uid, {})
        if not cart:
            return self.reply(409, {"error": "cart is empty"})
        cents = sum(PRODUCTS[s][2] * q for s, q in cart.items())
        return self.reply(200, {"order_id": "o_" + secrets.token_hex(6), "total": cents / 100,
                                "currency": "EUR", "items": sum(cart.values())})


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: shop.py PORT\n")
        return 2
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Shop)
    srv.daemon_threads = True
    log(kind="listening", addr="127.0.0.1:%d" % srv.server_address[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the fuzz harnesses' seed corpora, tests/fuzz/corpus/<harness>/, from the unit tests'
fixtures and hand-made inputs in each harness's input format (see tests/fuzz/fuzz_*.c). The
seeds are committed; run this again after changing a harness's format. Standard library only."""
import gzip
import hashlib
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "unit", "fixtures")


def fixture(*parts):
    with open(os.path.join(FIX, *parts), "rb") as f:
        return f.read()


def u16(n):
    return struct.pack("<H", n)


def u32(n):
    return struct.pack("<I", n)


def blob(b):
    return u16(len(b)) + b


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.unlink(os.path.join(d, old))
    for s in seeds:
        name = hashlib.sha1(s).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(s)


# ---- fuzz_http_tracker: mode byte, then ops: bit 0 direction (1: ingress), bits 1-2 kind (0, 1:
# data; 2: data + gap; 3: close, or forget the pid with bit 7), bit 3 pid, bits 4-6 connection.
def op(kind, conn=0, ingress=False, pid_bit=0, high=0):
    return bytes([(1 if ingress else 0) | kind << 1 | pid_bit << 3 | conn << 4 | high << 7])


def data(b, conn=0, ingress=False):
    return op(0, conn, ingress) + blob(b)


REQ = b"POST /v1/x?a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine"
gz = gzip.compress(b"z" * 100000, mtime=0)
chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
# Three ingress gaps of 4 GiB - 1 each on connection 0, no data (bit 7 lets them through whole).
THREE_HOLES = (op(2, 0, True, high=1) + blob(b"") + u32(0xffffffff)) * 3
tracker = [
    b"\0" + data(REQ) + data(RESP, ingress=True),
    b"\0" + data(REQ + REQ + REQ) + data(RESP + RESP, ingress=True) + data(RESP, ingress=True),
    b"\0" + data(b"GET / HTTP/1.1\r\n\r\n") + data(chunked, ingress=True),
    b"\0" + data(b"GET /g HTTP/1.1\r\n\r\n") + data(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(gz)
        + gz[:4000], ingress=True),
    b"\0" + data(b"GET / HTTP/1.1\r\n\r\n") +
    op(2, 0, True) + blob(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab") + u32(50) +
    data(b"x" * 48, ingress=True),
    b"\0" + data(b"GET /up HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") +
    data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello", ingress=True),
    b"\0" + data(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04") + data(REQ) +
    data(RESP, ingress=True),
    b"\0" + data(b"POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") +
    data(b"HTTP/1.1 100 Continue\r\n\r\n", ingress=True) + data(b"ok") +
    data(RESP, ingress=True) + op(3),
    b"\0" + data(b"GET / HTTP/1.1\r\n\r\n", conn=1) + data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nab",
        conn=1, ingress=True) + op(3, 1, high=1),
    b"\x0b" + u16(100) + u16(200) + u16(10) + (data(REQ, conn=2) + data(RESP, conn=3)) * 3,
    # Holes of 4 GiB inside bodies: a close-delimited one, then one with a length to match.
    # These once ran the parser over every placeholder byte (over a minute here).
    b"\0" + data(b"GET / HTTP/1.1\r\n\r\n") + data(b"HTTP/1.1 200 OK\r\n\r\n", ingress=True) +
    THREE_HOLES + op(3),
    b"\0" + data(b"GET / HTTP/1.1\r\n\r\n") +
    data(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (3 * 0xffffffff + 2), ingress=True) +
    THREE_HOLES + data(b"ok", ingress=True) + data(REQ) + data(RESP, ingress=True),
]
write("fuzz_http_tracker", tracker)

# ---- fuzz_http_body: mode byte (bits 0-1 coding gzip/deflate/identity/x-gzip, bits 2-3
# framing chunked/Content-Length/to the end), then the body.
def chunk(b, size=None):
    return (b"%x\r\n" % (len(b) if size is None else size)) + b + b"\r\n"


deflate = zlib.compress(b"hello deflate " * 50)
raw = zlib.compressobj(9, zlib.DEFLATED, -15)
rawd = raw.compress(b"raw deflate body") + raw.flush()
bomb = gzip.compress(b"\0" * (1 << 20), 9, mtime=0)
write("fuzz_http_body", [
    bytes([0 | 0 << 2]) + chunk(gz[:3000]) + chunk(gz[3000:]) + b"0\r\n\r\n",
    bytes([1 | 1 << 2]) + deflate,
    bytes([1 | 1 << 2]) + rawd,
    bytes([0 | 1 << 2]) + bomb,
    bytes([2 | 0 << 2]) + b"ffffffffffffffffffffffff\r\nabc",
    bytes([2 | 0 << 2]) + chunk(b"abc") + b"0;ext=1\r\nTrailer: x\r\n\r\n",
    bytes([0 | 2 << 2]) + gzip.compress(b"one", mtime=0) + gzip.compress(b"two", mtime=0),
    bytes([3 | 2 << 2]) + b"\x1f\x8b\x08\x00garbage",
])

# ---- fuzz_json_view and fuzz_stripe's bodies: Stripe's own shapes.
stripe_json = [fixture("stripe", f) for f in sorted(os.listdir(os.path.join(FIX, "stripe")))]
write("fuzz_json_view", stripe_json + [
    b'{"a":"\\u00e9\\ud83d\\ude00\\n","b":[1,-2,3.5e3,true,false,null],"c":{"d":{}}}',
    b'{"a":"\\ud800"}', b'{"deep":' * 40 + b'1' + b'}' * 40, b'{"a":1,"a":2}',
])

# fuzz_stripe: ops: op byte (bit 0 server/webhook, 1 POST, 2 DELETE, 3 path from input, 4-6
# path index, 7 status +2), status byte, request body, response body.
def stripe_op(opb, status_b, req, resp, path=None):
    out = bytes([opb])
    if path is not None:
        out += blob(path)
    return out + bytes([status_b]) + blob(req) + blob(resp)


def fx(name):
    return fixture("stripe", name)


write("fuzz_stripe", [
    stripe_op(0x02, 0, b"amount=2500&currency=usd", fx("pi_succeeded.json")),
    stripe_op(0x12, 2, b"payment_method=pm_x", fx("error_card_declined.json")),
    stripe_op(0x03 | 7 << 4, 0, fx("evt_pi_succeeded.json"), b"") +
    stripe_op(0x03 | 7 << 4, 0, fx("evt_pi_succeeded.json"), b""),
    stripe_op(0x22, 0, b"customer=cus_1", fx("sub_yearly_active.json")) +
    stripe_op(0x03 | 7 << 4, 0, fx("evt_sub_deleted.json"), b""),
    stripe_op(0x42, 0, b"", fx("refund_usd.json")) +
    stripe_op(0x03 | 7 << 4, 0, fx("evt_dispute_created.json"), b""),
    stripe_op(0x02, 0, b"", fx("pi_requires_action.json")) +
    stripe_op(0x40, 0, b"", fx("pi_3ds_succeeded.json")),
    stripe_op(0x0a, 0, b"", fx("pi_jpy_succeeded.json"), path=b"/v1/payment_intents/pi_1"),
])

# ---- fuzz_webhook_sig: mode, time byte, body, header tail (after a valid t=,v1= when mode&1).
body = fx("evt_pi_succeeded.json")[:4000]
write("fuzz_webhook_sig", [
    b"\x03\x00" + blob(body) + blob(b""),
    b"\x03\x05" + blob(body) + blob(b",v1=00,v0=ff"),
    b"\x02\x00" + blob(body) + blob(b"t=1764300000,v1=" + b"0" * 64),
    b"\x00\x00" + blob(b"") + blob(b"t=,v1=,,=,t=99999999999999999999"),
])

# ---- fuzz_redact: the whole input is redacted, then read as path, query, host, six headers
# (name, value) and a body.
def redact_seed(path, query, host, headers, body):
    out = blob(path) + blob(query) + blob(host)
    for i in range(6):
        n, v = headers[i] if i < len(headers) else (b"", b"")
        out += blob(n) + blob(v)
    return out + blob(body)


write("fuzz_redact", [
    b"card 4242 4242 4242 4242 mail fan%40example.com Bearer abc.def sk_live_abcdefghij",
    redact_seed(b"/users/alice@example.com/orders/1234", b"email=a%40b.io&password=x",
                b"api.example.com", [(b"Authorization", b"Bearer t0k"), (b"X-User-Id", b"u1"),
                                     (b"Referer", b"https://x/?card=4242+4242+4242+4242")],
                b'{"password":"p\\"w","cvc":"123","client_secret":"pi_1abc_secret_def12345",'
                b'"jwt":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}'),
    redact_seed(b"/\xff\xfe/caf\xc3\xa9", b"a=%zz&=&&", b"h", [(b"Forwarded",
                b'for="[2001:db8::1]:4711";by=_hidden'), (b"X-Forwarded-For", b"1.2.3.4, x")],
                b"card%5Bcvc%5D=314&number=4242%204242%204242%204242"),
])

# ---- fuzz_prom: help text, then ops (op byte, two label values, a 16-bit number).
def prom_op(kind, a, b, x):
    return bytes([kind]) + blob(a) + blob(b) + u16(x & 0xffff)


write("fuzz_prom", [
    blob(b"help with \\ and \n newline") + prom_op(0, b"a\"b", b"c\\d\n", 8) +
    prom_op(1, b"caf\xc3\xa9", b"", 0xfff0) + prom_op(2, b"x", b"y", 12),
    blob(b"\xff bad utf-8 help") + prom_op(0, b"\xc3(", b"\xed\xa0\x80", 1) +
    b"".join(prom_op(i % 3, b"v%d" % i, b"w", i) for i in range(12)),
])

# ---- fuzz_rules_load: the rules text, then an exchange's path, query, a header value, the
# request and response bodies, a method bit and a status byte.
def rules_seed(text, path=b"/api/register", query=b"utm_source=news", hv=b"u-1",
               req=b'{"role":"fan","method":"email"}', resp=b'{"id":"u-1"}'):
    return blob(text) + blob(path) + blob(query) + blob(hv) + blob(req) + blob(resp) + b"\0\1"


rules = [os.path.join(ROOT, "examples", "rules", f)
         for f in sorted(os.listdir(os.path.join(ROOT, "examples", "rules")))]
rules += [os.path.join(FIX, "rules", f) for f in sorted(os.listdir(os.path.join(FIX, "rules")))]
seeds = []
for p in rules:
    with open(p, "rb") as f:
        seeds.append(rules_seed(f.read()[:16384]))
seeds.append(rules_seed(b"version: 1\nevents:\n  - " + b"[" * 200 + b"\n"))
write("fuzz_rules_load", seeds)

# ---- fuzz_sentry_envelope: a mode byte (bit 0 truncated, bit 1 store endpoint), the body.
sentry = []
for f in sorted(os.listdir(os.path.join(FIX, "sentry"))):
    b = fixture("sentry", f)
    if f.endswith(".gz"):
        b = gzip.decompress(b)
    sentry.append(b"\0" + b[:20000])
    sentry.append(b"\1" + b[:len(b) // 2])
sentry.append(b"\2" + json.dumps({"event_id": "e" * 32, "level": "error",
                                  "message": "boom"}).encode())
sentry.append(b"\2" + __import__("base64").b64encode(zlib.compress(b'{"level":"fatal"}')))
write("fuzz_sentry_envelope", sentry)

# ---- fuzz_node_inputs: a mode byte (0 a cgroup file, 1 pod JSON: list then events, 2 a login
# body and a Cookie header, then a time byte), the bytes of that mode.
uid = b"1c2d3e4f-0a1b-4c2d-8e3f-405162738495"
cid = b"ab" * 32
node = [b"\0" + b"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
        uid.replace(b"-", b"_") + b".slice/cri-containerd-" + cid + b".scope\n",
        b"\0" + b"12:memory:/kubepods/besteffort/pod" + uid + b"/" + cid + b"\n0::/\n",
        b"\0" + b"0::/../../kubepods-pod" + uid.replace(b"-", b"_") + b".slice/crio-" + cid +
        b".scope\n"]
pod = {"metadata": {"uid": uid.decode(), "namespace": "shop", "name": "web-7d9f-abcde",
                    "labels": {"app": "web", "pod-template-hash": "7d9f"},
                    "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f",
                                         "controller": True}]},
       "spec": {"nodeName": "node-a"},
       "status": {"containerStatuses": [{"containerID": "containerd://" + cid.decode()}]}}
pod_list = json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "10"},
                       "items": [pod]}).encode()
event = json.dumps({"type": "DELETED", "object": pod}).encode()
node.append(b"\1" + blob(pod_list) + blob(event))
node.append(b"\1" + blob(b'{"items":[]}') + blob(b'{"type":"ERROR","object":{"code":410}}'))
node.append(b"\2" + blob(b"token=fuzz-admin-token") + blob(b"bizprobe_session=00") + b"\1")
node.append(b"\2" + blob(b"token=%66uzz-admin-token&x=1") + blob(b"a=b; bizprobe_session=") +
            b"\2")
write("fuzz_node_inputs", node)

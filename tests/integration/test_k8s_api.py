"""The kube API pod cache (src/k8s/k8s_pods.c) against the test's own HTTPS API server: a list
restricted to this node's pods, then a watch from the list's resourceVersion, with pod objects
shaped as the API sends them. Checks exact namespaces, names, labels and workloads (a Deployment
behind its ReplicaSet, a CronJob behind its Job, a StatefulSet, a bare pod), ADDED / MODIFIED /
DELETED applied in order, 410 Gone answered by a new list, the pod and label bounds with exact
drop counts, and refusals (wrong token, a CA that did not sign the server). Driven through
build/tests/k8s_pods_tool; no root, no BPF."""
import http.server
import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from harness import ROOT, SLOW, main  # noqa: E402

TOOL = os.path.join(ROOT, "build", "tests", "k8s_pods_tool")
NODE = "node-a"
TOKEN = "sa-token-" + os.urandom(8).hex()
CID = "%064x"


def make_cert(d, name):
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=kubernetes",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc"],
                   check=True, capture_output=True)
    return cert, key


def pod(name, uid, ns="shop", labels=None, owner=None, cids=(), rv="1", node=NODE):
    """A pod as GET /api/v1/pods returns it (the fields bizprobe reads among the usual ones)."""
    meta = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv,
            "creationTimestamp": "2026-12-02T20:00:00Z", "labels": labels or {},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-02T19:59:00Z"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "0000-owner", "controller": True,
                                    "blockOwnerDeletion": True}]
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta,
        "spec": {"nodeName": node, "serviceAccountName": "default",
                 "containers": [{"name": "c%d" % i, "image": "app:1"} for i in range(len(cids))]},
        "status": {"phase": "Running", "podIP": "10.0.0.5",
                   "containerStatuses": [{"name": "c%d" % i, "ready": True, "restartCount": 0,
                                          "image": "app:1", "imageID": "sha256:ab",
                                          "containerID": "containerd://" + CID % c,
                                          "state": {"running": {}}}
                                         for i, c in enumerate(cids)]},
    }


WEB = pod("web-7d9f8b6c5d-x2k4p", "11111111-1111-4111-8111-111111111111",
          labels={"app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "frontend"},
          owner=("ReplicaSet", "web-7d9f8b6c5d"), cids=(1, 2))
DB = pod("db-0", "22222222-2222-4222-8222-222222222222", ns="data",
         labels={"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"},
         owner=("StatefulSet", "db"), cids=(3,))
BARE = pod("debug", "33333333-3333-4333-8333-333333333333", ns="default", labels={}, cids=(4,))
CRON = pod("report-29012345-abcde", "44444444-4444-4444-8444-444444444444",
           labels={"job-name": "report-29012345"}, owner=("Job", "report-29012345"), cids=(5,))
# A hand-made ReplicaSet whose name has a dash: not a Deployment's (no pod-template-hash).
HANDRS = pod("legacy-rs-abc12", "55555555-5555-4555-8555-555555555555",
             labels={"app": "legacy"}, owner=("ReplicaSet", "legacy-rs"), cids=(6,))


class FakeAPI(http.server.ThreadingHTTPServer):
    """GET /api/v1/pods: the list (self.pods, resourceVersion self.rv), or with watch=1 a stream
    of the events the test sends (to the newest watch; None ends it)."""
    daemon_threads = True

    def __init__(self, cert, key):
        self.pods = []
        self.rv = "100"
        self.queues = []  # one per watch: events go to the newest
        self.requests = []
        self.lock = threading.Lock()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                ok = self.headers.get("Authorization") == "Bearer " + TOKEN
                evq = queue.Queue()
                with srv.lock:
                    srv.requests.append((u.path, q, ok))
                    if ok and q.get("watch") == "1":
                        srv.queues.append(evq)
                if not ok:
                    return self.reply(401, {"kind": "Status", "code": 401,
                                            "reason": "Unauthorized"})
                if u.path != "/api/v1/pods":
                    return self.reply(404, {"kind": "Status", "code": 404})
                if q.get("watch") == "1":
                    return self.watch(evq)
                with srv.lock:
                    body = {"kind": "PodList", "apiVersion": "v1",
                            "metadata": {"resourceVersion": srv.rv},
                            "items": [p for p in srv.pods
                                      if "spec.nodeName=%s" % p["spec"]["nodeName"]
                                      == q.get("fieldSelector")]}
                self.reply(200, body)

            def reply(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def watch(self, evq):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    ev = evq.get()
                    if ev is None:
                        break
                    data = (json.dumps(ev) + "\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def send(self, ev):
        with self.lock:
            self.queues[-1].put(ev)

    def end_all(self):
        with self.lock:
            for q in self.queues:
                q.put(None)

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-watch (the tool quitting) is no error

    def lists(self):
        with self.lock:
            return [q for p, q, ok in self.requests if ok and "watch" not in q]

    def watches(self):
        with self.lock:
            return [q for p, q, ok in self.requests if ok and q.get("watch") == "1"]


class Tool:
    def __init__(self, api, ca, token_file, *extra):
        self.proc = subprocess.Popen(
            [TOOL, "--api-url", api.url, "--token-file", token_file, "--ca-file", ca,
             "--node", NODE] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def wait_for(self, pred, what, timeout=15):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            d = self.ask("dump")
            if pred(d):
                return d
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; last %s" % (what, d))

    def close(self):
        if self.proc.stderr.closed:
            return ""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10 * SLOW)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stdin.close()
        self.proc.stderr.close()
        return err


def by_name(d):
    return {p["name"]: p for p in d["pods"]}


class K8sApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(TOOL, os.X_OK):
            raise RuntimeError("%s missing: make unit-tests" % TOOL)
        cls.dir = tempfile.mkdtemp(prefix="bizprobe-k8s-api-")
        cls.cert, cls.key = make_cert(cls.dir, "apiserver")
        cls.other_ca, _ = make_cert(cls.dir, "other")
        cls.token = os.path.join(cls.dir, "token")
        with open(cls.token, "w") as f:
            f.write(TOKEN + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.api = FakeAPI(self.cert, self.key)
        self.tools = []

    def tearDown(self):
        for t in self.tools:
            t.close()
        # End any watch still streaming, then the server.
        self.api.end_all()
        self.api.shutdown()
        self.api.server_close()

    def tool(self, *extra, ca=None, token=None):
        t = Tool(self.api, ca or self.cert, token or self.token, *extra)
        self.tools.append(t)
        return t

    def test_list_then_watch(self):
        other = pod("elsewhere", "66666666-6666-4666-8666-666666666666", node="node-b")
        self.api.pods = [WEB, DB, BARE, CRON, HANDRS, other]
        t = self.tool()
        d = t.wait_for(lambda d: d["stats"]["synced"], "the list")
        # The list asked for this node's pods only; the other node's pod is not there.
        self.assertEqual(self.api.lists()[0], {"fieldSelector": "spec.nodeName=" + NODE})
        pods = by_name(d)
        self.assertEqual(sorted(pods), sorted(["web-7d9f8b6c5d-x2k4p", "db-0", "debug",
                                               "report-29012345-abcde", "legacy-rs-abc12"]))
        self.assertEqual(pods["web-7d9f8b6c5d-x2k4p"], {
            "uid": "11111111-1111-4111-8111-111111111111", "namespace": "shop",
            "name": "web-7d9f8b6c5d-x2k4p", "workload_kind": "Deployment",
            "workload_name": "web",
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "frontend"}})
        self.assertEqual((pods["db-0"]["namespace"], pods["db-0"]["workload_kind"],
                          pods["db-0"]["workload_name"]), ("data", "StatefulSet", "db"))
        self.assertEqual((pods["debug"]["workload_kind"], pods["debug"]["workload_name"]),
                         ("Pod", "debug"))
        self.assertEqual((pods["report-29012345-abcde"]["workload_kind"],
                          pods["report-29012345-abcde"]["workload_name"]), ("CronJob", "report"))
        self.assertEqual((pods["legacy-rs-abc12"]["workload_kind"],
                          pods["legacy-rs-abc12"]["workload_name"]), ("ReplicaSet", "legacy-rs"))
        labels = sum(len(k) + len(v) + 2 for p in pods.values() for k, v in p["labels"].items())
        self.assertEqual(d["stats"]["label_bytes"], labels)
        self.assertEqual((d["stats"]["lists"], d["stats"]["pods"], d["stats"]["errors"]),
                         (1, 5, 0))
        # A container id from the cgroup path finds its pod.
        self.assertEqual(t.ask("container " + CID % 2)["name"], "web-7d9f8b6c5d-x2k4p")
        self.assertEqual(t.ask("container " + CID % 99), {"error": "ENOENT"})

        # The watch starts from the list's resourceVersion, restricted to this node.
        t.wait_for(lambda d: self.api.watches(), "the watch")
        w = self.api.watches()[0]
        self.assertEqual((w["resourceVersion"], w["fieldSelector"], w["allowWatchBookmarks"]),
                         ("100", "spec.nodeName=" + NODE, "true"))
        api_new = pod("api-5f6d7c8b9a-qq1zz", "77777777-7777-4777-8777-777777777777",
                      labels={"app": "api", "pod-template-hash": "5f6d7c8b9a"},
                      owner=("ReplicaSet", "api-5f6d7c8b9a"), cids=(7,), rv="101")
        relabeled = json.loads(json.dumps(DB))
        relabeled["metadata"]["labels"]["version"] = "2"
        relabeled["metadata"]["resourceVersion"] = "102"
        for ev in ({"type": "ADDED", "object": api_new},
                   {"type": "MODIFIED", "object": relabeled},
                   {"type": "DELETED", "object": BARE},
                   {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                   "metadata": {"resourceVersion": "150"}}}):
            self.api.send(ev)
        d = t.wait_for(lambda d: d["stats"]["watch_events"] == 4, "4 watch events")
        pods = by_name(d)
        self.assertNotIn("debug", pods)
        self.assertEqual(pods["db-0"]["labels"]["version"], "2")
        self.assertEqual((pods["api-5f6d7c8b9a-qq1zz"]["workload_kind"],
                          pods["api-5f6d7c8b9a-qq1zz"]["workload_name"]), ("Deployment", "api"))
        self.assertEqual(d["stats"]["pods"], 5)
        # The server ends the watch (its timeout): the next one resumes at the bookmark.
        self.api.send(None)
        t.wait_for(lambda d: len(self.api.watches()) >= 2, "a second watch")
        self.assertEqual(self.api.watches()[1]["resourceVersion"], "150")
        self.assertEqual(len(self.api.lists()), 1)

    def test_gone_lists_again(self):
        self.api.pods = [WEB, DB]
        t = self.tool()
        t.wait_for(lambda d: d["stats"]["synced"] and self.api.watches(), "list and watch")
        # The history was compacted: the cache lists again and replaces its pods.
        self.api.pods = [BARE]
        self.api.rv = "900"
        self.api.send({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "too old resource version: 100 (850)", "reason": "Expired", "code": 410}})
        d = t.wait_for(lambda d: d["stats"]["lists"] == 2, "a second list")
        self.assertEqual(sorted(by_name(d)), ["debug"])
        t.wait_for(lambda d: len(self.api.watches()) >= 2, "a watch after the list")
        self.assertEqual(self.api.watches()[1]["resourceVersion"], "900")
        # A garbage event is counted and skipped; the watch goes on.
        self.api.send("not an event")
        self.api.send({"type": "ADDED", "object": DB})
        d = t.wait_for(lambda d: d["stats"]["watch_events"] == 1, "the event after garbage")
        self.assertEqual(sorted(by_name(d)), ["db-0", "debug"])
        self.assertEqual(d["stats"]["errors"], 1)

    def test_bounds(self):
        # 5 pods into 3 slots; labels within 40 bytes in all.
        self.api.pods = [WEB, DB, BARE, CRON, HANDRS]
        t = self.tool("--max-pods", "3", "--max-label-bytes", "40")
        d = t.wait_for(lambda d: d["stats"]["synced"], "the list")
        self.assertEqual((d["stats"]["pods"], d["stats"]["pods_dropped"]), (3, 2))
        # WEB first: app=web (8), pod-template-hash=7d9f8b6c5d (29) fit in 40; tier=frontend
        # (14) does not. DB's two and BARE's none: 3 labels dropped in all.
        pods = by_name(d)
        self.assertEqual(pods["web-7d9f8b6c5d-x2k4p"]["labels"],
                         {"app": "web", "pod-template-hash": "7d9f8b6c5d"})
        self.assertEqual(pods["db-0"]["labels"], {})
        self.assertEqual(d["stats"]["labels_dropped"], 3)
        self.assertEqual(d["stats"]["label_bytes"], 37)
        # The workload still comes from the owner (the hash label was kept here).
        self.assertEqual(pods["web-7d9f8b6c5d-x2k4p"]["workload_name"], "web")
        # A pod added to a full cache is dropped and counted; one deleted makes room.
        t.wait_for(lambda d: self.api.watches(), "the watch")
        extra = pod("extra", "88888888-8888-4888-8888-888888888888", cids=(8,))
        self.api.send({"type": "ADDED", "object": extra})
        d = t.wait_for(lambda d: d["stats"]["watch_events"] == 1, "ADDED")
        self.assertEqual((d["stats"]["pods"], d["stats"]["pods_dropped"]), (3, 3))
        self.api.send({"type": "DELETED", "object": BARE})
        self.api.send({"type": "ADDED", "object": extra})
        d = t.wait_for(lambda d: d["stats"]["watch_events"] == 3, "DELETED and ADDED")
        self.assertIn("extra", by_name(d))
        self.assertEqual((d["stats"]["pods"], d["stats"]["pods_dropped"]), (3, 3))

    def test_refusals(self):
        self.api.pods = [WEB]
        bad = os.path.join(self.dir, "bad-token")
        with open(bad, "w") as f:
            f.write("wrong\n")
        t = self.tool(token=bad)
        d = t.wait_for(lambda d: d["stats"]["errors"] >= 1, "a refused list")
        self.assertEqual((d["stats"]["synced"], d["stats"]["pods"]), (False, 0))
        err = t.close()
        self.assertIn("HTTP 401", err)
        self.assertNotIn("wrong", err)  # the token itself is never printed
        # A CA that did not sign the server's certificate: no request gets through.
        n = len(self.api.requests)
        t = self.tool(ca=self.other_ca)
        d = t.wait_for(lambda d: d["stats"]["errors"] >= 1, "a refused certificate")
        self.assertEqual((d["stats"]["synced"], len(self.api.requests)), (False, n))
        # Missing files and a plain-http URL are refused at start, with the reason.
        r = subprocess.run([TOOL, "--api-url", self.api.url, "--token-file",
                            os.path.join(self.dir, "nope"), "--ca-file", self.cert,
                            "--node", NODE], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("service account token", r.stderr)
        r = subprocess.run([TOOL, "--api-url", "http://127.0.0.1:1", "--token-file", self.token,
                            "--ca-file", self.cert, "--node", NODE], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not https://", r.stderr)

    def test_in_cluster_defaults(self):
        """KUBERNETES_SERVICE_HOST/PORT and NODE_NAME, as a pod gets them."""
        self.api.pods = [WEB]
        port = self.api.server_address[1]
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(port), NODE_NAME=NODE)
        p = subprocess.Popen([TOOL, "--token-file", self.token, "--ca-file", self.cert],
                             env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        t = Tool.__new__(Tool)
        t.proc = p
        self.tools.append(t)
        d = t.wait_for(lambda d: d["stats"]["synced"], "the list")
        self.assertEqual([x["name"] for x in d["pods"]], ["web-7d9f8b6c5d-x2k4p"])
        env.pop("NODE_NAME")
        r = subprocess.run([TOOL, "--token-file", self.token, "--ca-file", self.cert], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NODE_NAME", r.stderr)


if __name__ == "__main__":
    sys.exit(main("test_k8s_api"))

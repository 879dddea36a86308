"""`bizprobe run --node`: the node agent's selection on real processes placed in cgroups laid out
as a kubelet lays them out (systemd driver, containerd: kubepods.slice/.../cri-containerd-<id>
.scope under this machine's v2 hierarchy), with the pods they belong to served by the test's
own kube API (HTTPS, list by spec.nodeName, then watch). Selected: Python processes of pods in
namespace shop. The exchanges counted are exactly those of the selected servers; a server in a
pod of another namespace and one in no pod are never traced; a server restarted in its
container is traced again; a pod that appears later (a watch event) has its process traced
from its exec.

With --k8s-labels namespace,workload (NodeLabels): the Python shop runs in three traced pods (a
Deployment's, a StatefulSet's, a bare pod's) under the harness's shop rules; every business
series and the per-target self-metrics carry exactly the namespace and workload of the pod whose
traffic made them. A watch event removing the selected label from one pod drops its process:
its later exchanges count nowhere, and the drop counter reads exactly 1."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import json
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import parse  # noqa: E402
from harness import (  # noqa: E402
    BIZPROBE, PYTHON, SHOP_APP, SHOP_RULES, SLOW, attached_programs, free_port, main,
    wait_attached, wait_port)
from test_k8s_api import CID, DB, TOKEN, WEB, FakeAPI, make_cert, pod  # noqa: E402
from test_privileges import OPTIONAL, REQUIRED, run_with_caps  # noqa: E402

UNIFIED = "/sys/fs/cgroup/unified"
KUBEPODS = os.path.join(UNIFIED, "kubepods.slice")
LATE = pod("shop-worker-0", "77777777-7777-4777-8777-777777777777",
           labels={"app": "worker"}, owner=("StatefulSet", "shop-worker"), cids=(7,))
COMM = os.path.basename(PYTHON)[:15]  # /proc/PID/comm: the file exec'd (python3.11)


def container_cgroup(p, index=0):
    """The container's cgroup directory as the systemd driver names it (burstable QoS)."""
    uid = p["metadata"]["uid"].replace("-", "_")
    cid = p["status"]["containerStatuses"][index]["containerID"].split("//")[1]
    d = os.path.join(KUBEPODS, "kubepods-burstable.slice",
                     "kubepods-burstable-pod%s.slice" % uid, "cri-containerd-%s.scope" % cid)
    os.makedirs(d, exist_ok=True)
    return d


class Server:
    """python3 -m http.server (or the Python shop with shop=True), joined to cgroup (or none)
    before its exec, as a runtime does."""

    def __init__(self, cgroup, root, shop=False, program=PYTHON, prelude=None):
        self.port = free_port()
        argv = [program, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                "--directory", root]
        if prelude:  # Python run before the server starts, in its process
            argv = [program, "-c", prelude + "\nimport runpy, sys\n"
                    "sys.argv = ['http.server'] + sys.argv[1:]\n"
                    "runpy.run_module('http.server', run_name='__main__')"] + argv[3:]
        if shop:
            argv = [PYTHON, SHOP_APP, str(self.port)]
        if cgroup:
            argv = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def get(self, n):
        for _ in range(n):
            with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % self.port,
                                        timeout=10) as r:
                assert r.status == 200 and r.read() == b"hello\n"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def call(self, method, path, body=None, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def signup(self, plan):
        status, body = self.call("POST", "/signup",
                                 ("email=node.%s@example.com&plan=%s"
                                  % (os.urandom(4).hex(), plan)).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 201, (status, body)

    def view(self, n):
        for _ in range(n):
            status, _ = self.call("GET", "/products/bk-101")
            assert status == 200, status


NEEDS_V2 = unittest.skipUnless(os.path.exists(os.path.join(UNIFIED, "cgroup.procs")),
                               "no cgroup v2 hierarchy at " + UNIFIED)


class NodeBase(unittest.TestCase):
    """Servers in pods, the kube API stand-in, bizprobe run --node; the tests are below."""
    caps = None  # None: as root; else run under exactly these capabilities (capsh)

    def start_servers(self):
        """Before bizprobe starts: in shop's pod, in data's pod, and one in no pod."""
        self.api.pods = [WEB, DB]
        self.web = self.server(container_cgroup(WEB))
        self.db = self.server(container_cgroup(DB))
        self.plain = self.server(None)

    def selection(self):
        return ["--select", "k8s-namespace=shop", "--select", "comm=" + COMM]

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bizprobe-node-")
        with open(os.path.join(self.tmp, "index.html"), "w") as f:
            f.write("hello\n")
        cert, key = make_cert(self.tmp, "apiserver")
        token = os.path.join(self.tmp, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        self.api = FakeAPI(cert, key)
        self.servers = []
        self.port = free_port()
        self.err_path = os.path.join(self.tmp, "bizprobe.stderr")
        self.bp = None
        self.start_servers()
        argv = [BIZPROBE, "run", "--node"] + self.selection() + [
                "--kube-api", self.api.url, "--kube-token-file", token,
                "--kube-ca-file", cert, "--listen", "127.0.0.1:%d" % self.port,
                "--state-dir", os.path.join(self.tmp, "state")]
        kw = dict(env=dict(os.environ, NODE_NAME="node-a", USER_TRACKING_SALT="node-test"),
                  stdout=subprocess.DEVNULL, stderr=open(self.err_path, "w"))
        self.bp = (run_with_caps(self.caps, argv, **kw) if self.caps
                   else subprocess.Popen(argv, **kw))
        wait_attached(self.bp, self.err_path)

    def tearDown(self):
        if self.bp and self.bp.poll() is None:
            self.bp.terminate()
            self.bp.wait(30)
        for s in self.servers:
            s.stop()
        self.api.end_all()
        self.api.shutdown()
        self.api.server_close()
        # Leaf first: a cgroup directory goes once its processes have.
        for dirpath, _, _ in sorted(os.walk(KUBEPODS), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, cgroup, shop=False, **kw):
        s = Server(cgroup, self.tmp, shop, **kw)
        self.servers.append(s)
        return s

    def stderr(self):
        return open(self.err_path).read()

    def wait_traced(self, s, what):
        deadline = time.time() + 30 * SLOW
        while "node: tracing pid %d (" % s.proc.pid not in self.stderr():
            self.assertLess(time.time(), deadline, "%s not traced: %s" % (what, self.stderr()))
            time.sleep(0.1)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            return parse(r.read().decode())

    def exchanges(self):
        return self.metrics().get(("bizprobe_exchanges_total", (("role", "server"),)), 0)

    def wait_exchanges(self, n):
        deadline = time.time() + 20 * SLOW
        while self.exchanges() < n and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # and nothing more arrives
        self.assertEqual(self.exchanges(), n)


@NEEDS_V2
class NodeMode(NodeBase):
    def test_selection_restart_and_late_pod(self):
        self.wait_traced(self.web, "the shop pod's server")
        self.assertIn("node: tracing pid %d (%s, Deployment shop/web)" % (self.web.proc.pid, COMM),
                      self.stderr())
        # Node's sockets are seen through its own libc: nobody else on the node pays for a
        # raw syscall tracepoint (issue 20).
        self.assertFalse({"rtp_sys_enter", "rtp_sys_exit"} & attached_programs())
        self.web.get(5)
        self.db.get(3)
        self.plain.get(2)
        self.wait_exchanges(5)
        # Restarted in its container: traced again, from its exec.
        cgroup = container_cgroup(WEB)
        self.web.stop()
        self.web = self.server(cgroup)
        self.wait_traced(self.web, "the restarted server")
        self.web.get(4)
        self.wait_exchanges(9)
        # A pod scheduled later: the watch tells bizprobe, its container's exec is selected.
        self.api.pods.append(LATE)
        self.api.send({"type": "ADDED", "object": LATE})
        time.sleep(1)
        late = self.server(container_cgroup(LATE))
        self.wait_traced(late, "the late pod's server")
        self.assertIn("node: tracing pid %d (%s, StatefulSet shop/shop-worker)"
                      % (late.proc.pid, COMM), self.stderr())
        late.get(2)
        self.db.get(1)
        self.wait_exchanges(11)
        # Never traced: the other namespace's server and the one in no pod.
        for s in (self.db, self.plain):
            self.assertNotIn("tracing pid %d " % s.proc.pid, self.stderr())
        self.assertNotIn(CID % 3, self.stderr())  # container ids are not logged

    def examined(self):
        return self.metrics().get(("bizprobe_processes_examined_total", ()), 0)

    def test_the_look_once_a_second_examines_changed_processes_only(self):
        """The look once a second reads /proc only for the processes that are new or changed
        program, name or cgroups since the last one (issue 20: it read three files of every
        process on the node every second). Changed after their exec, and so found by the look
        alone: the server in no pod moved into the shop pod's container, and one started in that
        container under another name that renames itself to the selected one. A hundred idle
        processes are examined when they start, and not again."""
        self.wait_traced(self.web, "the shop pod's server")
        with open(os.path.join(container_cgroup(WEB), "cgroup.procs"), "w") as f:
            f.write(str(self.plain.proc.pid))
        self.wait_traced(self.plain, "the server moved into the shop pod")
        self.assertIn("node: tracing pid %d (%s, Deployment shop/web)"
                      % (self.plain.proc.pid, COMM), self.stderr())
        program = os.path.join(self.tmp, "renamed")
        os.symlink(PYTHON, program)  # its name at exec: "renamed"
        renamed = self.server(container_cgroup(WEB), program=program, prelude=(
            "import ctypes\nctypes.CDLL(None).prctl(15, %r, 0, 0, 0)" % COMM.encode()))
        self.wait_traced(renamed, "the server renamed to %s" % COMM)
        self.plain.get(2)
        renamed.get(1)
        self.wait_exchanges(3)
        self.assertEqual(self.exchanges(), 3)

        before = self.examined()
        idle = [subprocess.Popen(["sleep", "300"]) for _ in range(100)]
        try:
            deadline = time.time() + 20 * SLOW
            while self.examined() < before + len(idle):  # each at its exec
                self.assertLess(time.time(), deadline, "the idle processes not examined")
                time.sleep(0.2)
            time.sleep(1.5)  # the first look that lists them
            settled = self.examined()
            time.sleep(3.5)  # three more looks
            # Reading every process at every look would be 300 and more here.
            self.assertLess(self.examined() - settled, 30)
        finally:
            for p in idle:
                p.kill()
                p.wait()


TRACE = {"bizprobe.io/trace": "true"}
# Traced by label: a Deployment's pod, a StatefulSet's, and a bare pod in another namespace.
TWEB = pod("web-7d9f8b6c5d-q8w2e", "aaaaaaaa-1111-4111-8111-111111111111",
           labels=dict(TRACE, app="web", **{"pod-template-hash": "7d9f8b6c5d"}),
           owner=("ReplicaSet", "web-7d9f8b6c5d"), cids=(11,))
TWORKER = pod("shop-worker-1", "bbbbbbbb-2222-4222-8222-222222222222",
              labels=dict(TRACE, app="worker"), owner=("StatefulSet", "shop-worker"), cids=(12,))
TBARE = pod("debug-shell", "cccccccc-3333-4333-8333-333333333333", ns="tools",
            labels=dict(TRACE), cids=(13,))


def relabelled(p, labels, rv):
    """The pod as a MODIFIED event sends it after a label change: new labels, newer rv."""
    q = json.loads(json.dumps(p))
    q["metadata"]["labels"] = labels
    q["metadata"]["resourceVersion"] = rv
    return q


@NEEDS_V2
class NodeLabels(NodeBase):
    """--k8s-labels namespace,workload with the shop rules; pods selected by a label."""

    def start_servers(self):
        self.rules = os.path.join(self.tmp, "rules.yaml")
        with open(self.rules, "w") as f:
            f.write(SHOP_RULES)
        self.api.pods = [TWEB, TWORKER, TBARE, DB]
        self.web = self.server(container_cgroup(TWEB), shop=True)
        self.worker = self.server(container_cgroup(TWORKER), shop=True)
        self.bare = self.server(container_cgroup(TBARE), shop=True)
        self.db = self.server(container_cgroup(DB))  # not labelled: never traced

    def selection(self):
        return ["--select", "k8s-label=bizprobe.io/trace=true", "--select", "comm=" + COMM,
                "--k8s-labels", "namespace,workload", "--rules", self.rules]

    def business(self, m):
        """Every series of the business families and the node self-metrics, with labels."""
        fams = ("direct_fan_user_registrations_total", "direct_fan_product_views_total",
                "business_events_total", "bizprobe_target_exchanges_total",
                "bizprobe_target_traced_processes", "bizprobe_node_processes_dropped_total")
        return {k: v for k, v in m.items() if k[0] in fams}

    def wait_value(self, key, want):
        deadline = time.time() + 20 * SLOW
        while self.metrics().get(key) != want and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # and nothing more arrives

    def test_labels_and_drop(self):
        for s, what in ((self.web, "web"), (self.worker, "worker"), (self.bare, "bare pod")):
            self.wait_traced(s, what)
        self.assertIn("node: tracing pid %d (%s, Deployment shop/web)" % (self.web.proc.pid, COMM),
                      self.stderr())
        # Node's sockets are seen through its own libc: nobody else on the node pays for a
        # raw syscall tracepoint (issue 20).
        self.assertFalse({"rtp_sys_enter", "rtp_sys_exit"} & attached_programs())
        self.web.signup("pro")
        self.web.signup("free")
        self.web.view(3)
        self.worker.signup("plus")
        self.worker.view(2)
        self.bare.view(1)
        self.db.get(2)
        web = (("namespace", "shop"), ("workload", "web"))
        worker = (("namespace", "shop"), ("workload", "shop-worker"))
        bare = (("namespace", "tools"), ("workload", "none"))

        def series(name, own, target):
            return (name, tuple(sorted(own + target)))

        want = {
            series("direct_fan_user_registrations_total", (("user_type", "pro"),), web): 1,
            series("direct_fan_user_registrations_total", (("user_type", "free"),), web): 1,
            series("direct_fan_user_registrations_total", (("user_type", "plus"),), worker): 1,
            series("direct_fan_product_views_total", (), web): 3,
            series("direct_fan_product_views_total", (), worker): 2,
            series("direct_fan_product_views_total", (), bare): 1,
            series("business_events_total", (("event", "registration"),), web): 2,
            series("business_events_total", (("event", "registration"),), worker): 1,
            series("business_events_total", (("event", "product_view"),), web): 3,
            series("business_events_total", (("event", "product_view"),), worker): 2,
            series("business_events_total", (("event", "product_view"),), bare): 1,
            series("bizprobe_target_exchanges_total", (), web): 5,
            series("bizprobe_target_exchanges_total", (), worker): 3,
            series("bizprobe_target_exchanges_total", (), bare): 1,
            series("bizprobe_target_traced_processes", (), web): 1,
            series("bizprobe_target_traced_processes", (), worker): 1,
            series("bizprobe_target_traced_processes", (), bare): 1,
            ("bizprobe_node_processes_dropped_total", ()): 0,
        }
        self.wait_exchanges(9)
        self.assertEqual(self.business(self.metrics()), want)
        # The label taken off the running pod: the watch says MODIFIED.
        unlabelled = relabelled(TWORKER, {"app": "worker"}, "2")
        self.api.pods[1] = unlabelled
        self.api.send({"type": "MODIFIED", "object": unlabelled})
        deadline = time.time() + 20 * SLOW
        while "node: dropped pid %d " % self.worker.proc.pid not in self.stderr():
            self.assertLess(time.time(), deadline, "worker not dropped: " + self.stderr())
            time.sleep(0.1)
        self.assertIn("node: dropped pid %d (StatefulSet shop/shop-worker): its pod no longer "
                      "matches the selection" % self.worker.proc.pid, self.stderr())
        # Its traffic now counts nowhere; the others' still does.
        self.worker.signup("pro")
        self.worker.view(4)
        self.web.view(1)
        self.wait_exchanges(10)
        want[series("direct_fan_product_views_total", (), web)] = 4
        want[series("business_events_total", (("event", "product_view"),), web)] = 4
        want[series("bizprobe_target_exchanges_total", (), web)] = 6
        want[series("bizprobe_target_traced_processes", (), worker)] = 0
        want[("bizprobe_node_processes_dropped_total", ())] = 1
        self.wait_value(("bizprobe_target_traced_processes", tuple(sorted(worker))), 0)
        self.assertEqual(self.business(self.metrics()), want)
        # Not traced again by the /proc scan: its pod still does not match.
        self.assertEqual(self.stderr().count("tracing pid %d (" % self.worker.proc.pid), 1)


class NodeModeUnderDaemonSetCapabilities(NodeMode):
    """The same, under exactly the capabilities deploy/kubernetes/daemonset.yaml grants
    (tests/deploy/test_kubernetes.py holds the manifest to this list)."""
    caps = REQUIRED + OPTIONAL


if __name__ == "__main__":
    sys.exit(main("test_node_mode"))

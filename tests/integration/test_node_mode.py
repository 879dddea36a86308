"""`bizprobe run --node`: the node agent's selection on real processes placed in cgroups laid out
as a kubelet lays them out (systemd driver, containerd: kubepods.slice/.../cri-containerd-<id>
.scope under this machine's v2 hierarchy), with the pods they belong to served by the test's
own kube API (HTTPS, list by spec.nodeName, then watch). Selected: Python processes of pods in
namespace shop. The exchanges counted are exactly those of the selected servers; a server in a
pod of another namespace and one in no pod are never traced; a server restarted in its
container is traced again; a pod that appears later (a watch event) has its process traced
from its exec."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from compare_metrics import parse  # noqa: E402
from harness import (  # noqa: E402
    BIZPROBE, PYTHON, SLOW, free_port, main, wait_attached, wait_port)
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
    """python3 -m http.server, joined to cgroup (or none) before its exec, as a runtime does."""

    def __init__(self, cgroup, root):
        self.port = free_port()
        argv = [PYTHON, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                "--directory", root]
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


@unittest.skipUnless(os.path.exists(os.path.join(UNIFIED, "cgroup.procs")),
                     "no cgroup v2 hierarchy at " + UNIFIED)
class NodeMode(unittest.TestCase):
    caps = None  # None: as root; else run under exactly these capabilities (capsh)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bizprobe-node-")
        with open(os.path.join(self.tmp, "index.html"), "w") as f:
            f.write("hello\n")
        cert, key = make_cert(self.tmp, "apiserver")
        token = os.path.join(self.tmp, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        self.api = FakeAPI(cert, key)
        self.api.pods = [WEB, DB]
        self.servers = []
        self.port = free_port()
        self.err_path = os.path.join(self.tmp, "bizprobe.stderr")
        self.bp = None
        # Two servers before bizprobe starts: in shop's pod, in data's pod, and one in no pod.
        self.web = self.server(container_cgroup(WEB))
        self.db = self.server(container_cgroup(DB))
        self.plain = self.server(None)
        argv = [BIZPROBE, "run", "--node", "--select", "k8s-namespace=shop", "--select",
                "comm=" + COMM, "--kube-api", self.api.url, "--kube-token-file", token,
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

    def server(self, cgroup):
        s = Server(cgroup, self.tmp)
        self.servers.append(s)
        return s

    def stderr(self):
        return open(self.err_path).read()

    def wait_traced(self, s, what):
        deadline = time.time() + 30 * SLOW
        while "node: tracing pid %d (" % s.proc.pid not in self.stderr():
            self.assertLess(time.time(), deadline, "%s not traced: %s" % (what, self.stderr()))
            time.sleep(0.1)

    def exchanges(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            return parse(r.read().decode()).get(
                ("bizprobe_exchanges_total", (("role", "server"),)), 0)

    def wait_exchanges(self, n):
        deadline = time.time() + 20 * SLOW
        while self.exchanges() < n and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # and nothing more arrives
        self.assertEqual(self.exchanges(), n)

    def test_selection_restart_and_late_pod(self):
        self.wait_traced(self.web, "the shop pod's server")
        self.assertIn("node: tracing pid %d (%s, Deployment shop/web)" % (self.web.proc.pid, COMM),
                      self.stderr())
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


class NodeModeUnderDaemonSetCapabilities(NodeMode):
    """The same, under exactly the capabilities deploy/kubernetes/daemonset.yaml grants
    (tests/deploy/test_kubernetes.py holds the manifest to this list)."""
    caps = REQUIRED + OPTIONAL


if __name__ == "__main__":
    sys.exit(main("test_node_mode"))

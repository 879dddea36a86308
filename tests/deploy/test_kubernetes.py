"""deploy/kubernetes without a cluster: every manifest parses, and what matters is checked against
bizprobe itself: the DaemonSet's capabilities are the set test_privileges.py runs bizprobe under
(and features.c names), nothing is privileged, every mount has its volume and no more host paths
than documented, the probes and the scrape target are the port --listen binds and paths the
metrics server serves, the ConfigMap key is the file --rules reads (and passes `rules check`),
RBAC is get/list/watch on pods, and each Secret key is the environment variable the container
sets from it, one bizprobe reads. Each check also runs on broken copies, which it must reject.
Needs python3-yaml and build/bizprobe (for `rules check`); no root, no BPF."""
import ast
import copy
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from harness import BIZPROBE, ROOT, main  # noqa: E402

K8S_DIR = os.path.join(ROOT, "deploy", "kubernetes")
NAMESPACE = "bizprobe"
# The host paths the DaemonSet comment documents, and nothing else.
HOST_PATHS = {"/sys/kernel/tracing", "/var/lib/bizprobe"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def load_all():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S_DIR, "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((os.path.basename(path), d))
    return docs


def privileges_caps():
    """REQUIRED + OPTIONAL of tests/integration/test_privileges.py, as Kubernetes names them."""
    src = open(os.path.join(ROOT, "tests", "integration", "test_privileges.py")).read()
    caps = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("REQUIRED", "OPTIONAL"):
            caps += ast.literal_eval(node.value)
    return {c.upper().replace("CAP_", "", 1) for c in caps}


def source_getenvs():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "src", "*", "*.c")):
        names |= set(re.findall(r'getenv\("([A-Z0-9_]+)"\)', open(path).read()))
    return names


def served_paths():
    src = open(os.path.join(ROOT, "src", "export", "metrics_server.c")).read()
    return set(re.findall(r'strcmp\(url, "(/[a-z/]*)"\)', src))


def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path + "." + str(k), k, v
            yield from walk(v, path + "." + str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, "%s[%d]" % (path, i))


def one(docs, kind):
    found = [d for _, d in docs if d.get("kind") == kind]
    assert len(found) == 1, "%d %s manifests" % (len(found), kind)
    return found[0]


def arg_after(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


# ---- Checks: each returns a list of problems (empty when the manifests are right). ----

def check_security(docs):
    p = []
    for name, d in docs:
        for where, k, v in walk(d):
            if k == "privileged" and v is not False:
                p.append("%s %s: privileged: %r" % (name, where, v))
    ds = one(docs, "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    if spec.get("hostPID") is not True:
        p.append("DaemonSet: hostPID must be true (other processes' /proc)")
    if spec.get("hostNetwork"):
        p.append("DaemonSet: hostNetwork is not needed")
    want = privileges_caps()
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        caps = sc.get("capabilities", {})
        if set(caps.get("add", [])) != want or len(caps.get("add", [])) != len(want):
            p.append("container %s: capabilities %s, documented %s" % (
                c["name"], sorted(caps.get("add", [])), sorted(want)))
        if caps.get("drop") != ["ALL"]:
            p.append("container %s: capabilities.drop must be [ALL]" % c["name"])
        if sc.get("readOnlyRootFilesystem") is not True:
            p.append("container %s: root filesystem not read-only" % c["name"])
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append("container %s: allowPrivilegeEscalation not false" % c["name"])
        if "resources" not in c or not {"requests", "limits"} <= set(c["resources"]):
            p.append("container %s: no resource requests and limits" % c["name"])
    return p


def check_mounts(docs):
    p = []
    spec = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted = set()
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            mounted.add(m["name"])
            if m["name"] not in volumes:
                p.append("mount %s at %s has no volume" % (m["name"], m["mountPath"]))
    for name in set(volumes) - mounted:
        p.append("volume %s is not mounted" % name)
    hp = {v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v}
    if hp != HOST_PATHS:
        p.append("host paths %s, documented %s" % (sorted(hp), sorted(HOST_PATHS)))
    return p


def container(docs):
    return one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]


def check_ports(docs):
    p = []
    c = container(docs)
    ports = {x["name"]: x["containerPort"] for x in c.get("ports", [])}
    listen = arg_after(c.get("args", []), "--listen")
    if not listen:
        return ["no --listen: bizprobe would serve 127.0.0.1:9464 only, out of the probes' reach"]
    host, _, port = listen.rpartition(":")
    if host not in ("0.0.0.0", "[::]"):
        p.append("--listen %s: not reachable from the kubelet or Prometheus" % listen)
    if int(port) not in ports.values():
        p.append("--listen port %s is no containerPort %s" % (port, ports))
    served = served_paths()
    for probe in ("livenessProbe", "readinessProbe"):
        g = c.get(probe, {}).get("httpGet")
        if not g:
            p.append("%s: no httpGet" % probe)
            continue
        if g.get("path") != "/healthz" or "/healthz" not in served:
            p.append("%s: path %s, bizprobe serves /healthz" % (probe, g.get("path")))
        pn = ports.get(g["port"], g["port"])
        if str(pn) != port:
            p.append("%s: port %s, bizprobe listens on %s" % (probe, g["port"], port))
    svc = one(docs, "Service")
    if svc["spec"].get("clusterIP") != "None":
        p.append("Service: not headless")
    tmpl = one(docs, "DaemonSet")["spec"]["template"]["metadata"]
    for obj, what in ((svc["metadata"], "Service"), (tmpl, "pod template")):
        a = obj.get("annotations", {})
        if a.get("prometheus.io/scrape") != "true":
            p.append("%s: prometheus.io/scrape is not \"true\"" % what)
        if a.get("prometheus.io/port") != port:
            p.append("%s: prometheus.io/port %s, bizprobe listens on %s" % (
                what, a.get("prometheus.io/port"), port))
        if a.get("prometheus.io/path") not in served:
            p.append("%s: prometheus.io/path %s is not served" % (what, a.get("prometheus.io/path")))
    sp = {x["name"]: x for x in svc["spec"]["ports"]}
    for x in sp.values():
        tp = x.get("targetPort")
        if str(ports.get(tp, tp)) != port:
            p.append("Service port %s targets %s, not bizprobe's %s" % (x["name"], tp, port))
    labels = tmpl.get("labels", {})
    if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
        p.append("Service selector %s does not select the pods %s" % (svc["spec"]["selector"],
                                                                      labels))
    sm = one(docs, "ServiceMonitor")
    for ep in sm["spec"]["endpoints"]:
        if ep.get("port") not in sp:
            p.append("ServiceMonitor port %s is no Service port" % ep.get("port"))
        if ep.get("path") not in served:
            p.append("ServiceMonitor path %s is not served" % ep.get("path"))
        # --k8s-labels puts the app's namespace on business series; the Operator sets its own
        # namespace target label (bizprobe's), which would rename ours to exported_namespace.
        if arg_after(c.get("args", []), "--k8s-labels") and ep.get("honorLabels") is not True:
            p.append("ServiceMonitor endpoint %s: --k8s-labels needs honorLabels: true"
                     % ep.get("port"))
    if any(svc["metadata"]["labels"].get(k) != v
           for k, v in sm["spec"]["selector"]["matchLabels"].items()):
        p.append("ServiceMonitor does not select the Service")
    return p


def check_rules_file(docs):
    """The --rules path is <mountPath>/<key> of the ConfigMap volume; returns (problems, text)."""
    c = container(docs)
    spec = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    rules = arg_after(c.get("args", []), "--rules")
    if not rules:
        return ["no --rules"], None
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        if "configMap" not in v or os.path.dirname(rules) != m["mountPath"].rstrip("/"):
            continue
        if m.get("subPath"):
            return ["the rules ConfigMap is mounted with subPath: edits never reach the pod"], None
        cms = [d for _, d in docs if d.get("kind") == "ConfigMap"
               and d["metadata"]["name"] == v["configMap"]["name"]]
        if not cms:
            return ["volume %s names no ConfigMap in deploy/kubernetes" % m["name"]], None
        key = os.path.basename(rules)
        data = cms[0].get("data", {})
        if key not in data:
            return ["--rules %s: ConfigMap %s has keys %s, not %s" % (
                rules, cms[0]["metadata"]["name"], sorted(data), key)], None
        return [], data[key]
    return ["--rules %s is on no ConfigMap mount" % rules], None


def check_rbac(docs):
    p = []
    role = one(docs, "ClusterRole")
    if role.get("rules") != [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]}]:
        p.append("ClusterRole rules %s: only get/list/watch on pods" % role.get("rules"))
    b = one(docs, "ClusterRoleBinding")
    sa = one(docs, "ServiceAccount")
    spec = one(docs, "DaemonSet")["spec"]["template"]["spec"]
    if b["roleRef"]["name"] != role["metadata"]["name"]:
        p.append("binding names role %s" % b["roleRef"]["name"])
    if b["subjects"] != [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                          "namespace": sa["metadata"]["namespace"]}]:
        p.append("binding subjects %s" % b["subjects"])
    if spec.get("serviceAccountName") != sa["metadata"]["name"]:
        p.append("DaemonSet runs as %s" % spec.get("serviceAccountName"))
    return p


def check_env(docs):
    p = []
    c = container(docs)
    secrets = {d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
               for _, d in docs if d.get("kind") == "Secret"}
    read = source_getenvs()
    used = set()
    for e in c.get("env", []):
        if e["name"] not in read:
            p.append("env %s: bizprobe reads no such variable" % e["name"])
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if not ref:
            continue
        used.add((ref["name"], ref["key"]))
        if ref["key"] != e["name"]:
            p.append("env %s from Secret key %s" % (e["name"], ref["key"]))
        if ref["key"] not in secrets.get(ref["name"], set()):
            p.append("env %s: Secret %s has no key %s" % (e["name"], ref["name"], ref["key"]))
    for name, keys in secrets.items():
        for k in keys:
            if (name, k) not in used:
                p.append("Secret %s key %s is not given to the container" % (name, k))
    for need in ("METRICS_AUTH_TOKEN", "ADMIN_API_TOKEN", "USER_TRACKING_SALT"):
        if not any(need in keys for keys in secrets.values()):
            p.append("no Secret holds %s" % need)
    return p


def check_namespaces(docs):
    p = []
    for name, d in docs:
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                p.append("%s: no %s" % (name, k))
        if d.get("kind") not in CLUSTER_SCOPED and d["metadata"].get("namespace") != NAMESPACE:
            p.append("%s %s: namespace %s" % (name, d.get("kind"), d["metadata"].get("namespace")))
    return p


CHECKS = [check_security, check_mounts, check_ports, check_rbac, check_env, check_namespaces]


class KubernetesManifestsTest(unittest.TestCase):
    def setUp(self):
        self.docs = load_all()

    def test_every_manifest_parses(self):
        kinds = sorted(d["kind"] for _, d in self.docs)
        self.assertEqual(kinds, sorted([
            "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet",
            "Service", "ServiceMonitor", "ConfigMap", "Secret", "Secret", "Secret"]))
        self.assertEqual(check_namespaces(self.docs), [])

    def test_capabilities_and_no_privileged(self):
        self.assertEqual(check_security(self.docs), [])
        # The documented set is also what features.c checks at start and the README lists.
        feats = open(os.path.join(ROOT, "src", "capture", "features.c")).read()
        readme = open(os.path.join(ROOT, "README.md")).read()
        for cap in privileges_caps():
            self.assertIn("CAP_" + cap, feats)
            self.assertIn("`CAP_%s`" % cap, readme)

    def test_mounts(self):
        self.assertEqual(check_mounts(self.docs), [])

    def test_probes_and_scrape_target(self):
        self.assertEqual(check_ports(self.docs), [])

    def test_rules_configmap(self):
        problems, text = check_rules_file(self.docs)
        self.assertEqual(problems, [])
        self.assertTrue(os.access(BIZPROBE, os.X_OK), "build/bizprobe: run make all first")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(text)
            f.flush()
            r = subprocess.run([BIZPROBE, "rules", "check", f.name], capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rbac(self):
        self.assertEqual(check_rbac(self.docs), [])

    def test_secrets_are_env_bizprobe_reads(self):
        self.assertEqual(check_env(self.docs), [])

    def test_checks_reject_broken_manifests(self):
        """Each check fails on a copy broken the way it guards against."""
        def broken(fn):
            docs = copy.deepcopy(self.docs)
            fn({d["kind"]: d for _, d in docs}, docs)
            return docs

        def ctr(k):
            return k["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]

        def spec(k):
            return k["DaemonSet"]["spec"]["template"]["spec"]

        def set_arg(flag, value):
            def f(k, _):
                a = ctr(k)["args"]
                a[a.index(flag) + 1] = value
            return f

        cases = [
            (check_security, lambda k, _: ctr(k)["securityContext"].update(privileged=True)),
            (check_security, lambda k, _: ctr(k)["securityContext"]["capabilities"]["add"]
             .append("SYS_ADMIN")),
            (check_security, lambda k, _: ctr(k)["securityContext"]["capabilities"]["add"]
             .remove("SYS_PTRACE")),
            (check_security, lambda k, _: ctr(k)["securityContext"]["capabilities"]
             .update(drop=[])),
            (check_security, lambda k, _: ctr(k)["securityContext"]
             .update(readOnlyRootFilesystem=False)),
            (check_security, lambda k, _: spec(k).update(hostPID=False)),
            (check_mounts, lambda k, _: spec(k)["volumes"].pop()),
            (check_mounts, lambda k, _: ctr(k)["volumeMounts"].pop()),
            (check_mounts, lambda k, _: (spec(k)["volumes"].append(
                {"name": "bpffs", "hostPath": {"path": "/sys/fs/bpf"}}),
                ctr(k)["volumeMounts"].append({"name": "bpffs", "mountPath": "/sys/fs/bpf"}))),
            (check_ports, set_arg("--listen", "127.0.0.1:9464")),
            (check_ports, set_arg("--listen", "0.0.0.0:9465")),
            (check_ports, lambda k, _: ctr(k)["livenessProbe"]["httpGet"].update(path="/health")),
            (check_ports, lambda k, _: ctr(k)["readinessProbe"]["httpGet"].update(port=8080)),
            (check_ports, lambda k, _: k["Service"]["metadata"]["annotations"]
             .update({"prometheus.io/path": "/prom"})),
            (check_ports, lambda k, _: k["ServiceMonitor"]["spec"]["endpoints"][0]
             .update(port="http")),
            (check_ports, lambda k, _: k["Service"]["spec"].update(clusterIP="10.0.0.1")),
            (check_ports, lambda k, _: k["ServiceMonitor"]["spec"]["endpoints"][0]
             .pop("honorLabels")),
            (check_rbac, lambda k, _: k["ClusterRole"]["rules"][0]["verbs"].append("delete")),
            (check_rbac, lambda k, _: k["ClusterRole"]["rules"][0]
             .update(resources=["pods", "secrets"])),
            (check_env, lambda k, _: ctr(k)["env"][1]["valueFrom"]["secretKeyRef"]
             .update(key="token")),
            (check_env, lambda k, _: ctr(k)["env"].append({"name": "BIZPROBE_LOG_LEVEL",
                                                           "value": "debug"})),
            (check_namespaces, lambda k, _: k["DaemonSet"]["metadata"].update(namespace="x")),
        ]
        for i, (check, fn) in enumerate(cases):
            with self.subTest(case=i, check=check.__name__):
                self.assertNotEqual(check(broken(fn)), [], "case %d not rejected" % i)
        # The rules file: another key, or a subPath mount.
        docs = broken(lambda k, _: k["ConfigMap"].update(data={"fan.yaml": "x"}))
        self.assertNotEqual(check_rules_file(docs)[0], [])
        docs = broken(lambda k, _: ctr(k)["volumeMounts"][2].update(subPath="rules.yaml"))
        self.assertNotEqual(check_rules_file(docs)[0], [])


if __name__ == "__main__":
    sys.exit(main("test_kubernetes"))

"""Real containers for the node-mode tests: OCI bundles run by Debian's runc, built from local
files (no registry is reachable from the test machines) and placed in cgroups named as a
kubelet names them.

Why runc and not crun or podman: on these machines' hybrid cgroups (v1 controllers, a v2
hierarchy at /sys/fs/cgroup/unified, PID 1 not systemd) crun refuses to start ("cgroups in
hybrid mode not supported"), even with --cgroup-manager=disabled; runc (1.1.5, Debian 12) puts
the container at an absolute linux.cgroupsPath in every v1 controller and at the same path of
the v2 hierarchy, which is what /proc/PID/cgroup shows a kubelet's containers in.

A rootfs holds the host's node binary at a path the host does not have (/app/bin/node), the
libraries ldd lists at their paths and the app's files: a tracer that opened the host's
/usr/bin/node instead of /proc/PID/root/app/bin/node would put its probes in another inode and
see nothing. Standard library only."""
import json
import os
import shutil
import subprocess
import time

RUNC = "/usr/sbin/runc"
APP_NODE = "/app/bin/node"  # the node binary's path inside the containers


def _copy(src, rootfs, dest):
    """Copies the file src (symlinks followed) to dest inside rootfs."""
    target = os.path.join(rootfs, dest.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(os.path.realpath(src), target)


def _libraries(binary):
    """The shared objects ldd says binary loads, as absolute paths (the loader included)."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    libs = []
    for line in out.split("\n"):
        for word in line.split():
            if word.startswith("/"):
                libs.append(word)
    return libs


def build_rootfs(rootfs, files):
    """A read-only root for the containers: the host's node at APP_NODE, its libraries, the
    mount points runc needs, and files ({path inside: host path}). Shared by the bundles."""
    node = os.path.realpath(shutil.which("node"))
    _copy(node, rootfs, APP_NODE)
    for lib in _libraries(node):
        _copy(lib, rootfs, lib)
    for inside, host in files.items():
        _copy(host, rootfs, inside)
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    with open(os.path.join(rootfs, "etc", "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n")
    return rootfs


def cgroup_hierarchies():
    """Mount points of this machine's cgroup hierarchies, v1 and v2."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                points.append(left.split()[4])
    return points


class Container:
    """One container: a bundle (config.json over the shared rootfs) run detached by runc.

    cgroup is the absolute cgroupsPath (the kubelet layout the test wants); args the command
    inside. start() may be called again after stop(), with another id and cgroup, as a kubelet
    restarting a container gets a new container id and a new cgroup."""

    def __init__(self, runtime, name, rootfs, args, cgroup, env=()):
        self.rt = runtime
        self.name = name
        self.rootfs = rootfs
        self.args = list(args)
        self.env = ["PATH=/app/bin:/usr/bin:/bin"] + list(env)
        self.cgroup = cgroup
        self.cid = None
        self.pid = None

    def _spec(self, bundle):
        subprocess.run([RUNC, "spec", "--bundle", bundle], check=True, capture_output=True)
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            spec = json.load(f)
        spec["process"].update(terminal=False, args=self.args, env=self.env, cwd="/app")
        spec["root"] = {"path": self.rootfs, "readonly": True}
        spec["hostname"] = self.name
        linux = spec["linux"]
        linux["cgroupsPath"] = self.cgroup
        # The host's network (as hostNetwork: true pods): the test reaches the servers on
        # 127.0.0.1 and the kube API stand-in needs no routes. pid, mount, ipc and uts stay.
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
        with open(path, "w") as f:
            json.dump(spec, f, indent=1)

    def start(self, cid, cgroup=None):
        """Runs the container as cid (64 hex digits, the runtime's container id) and returns the
        host pid of its process. Files are named by the id's last 12 digits (the tests' ids
        differ there)."""
        if cgroup:
            self.cgroup = cgroup
        self.cid = cid
        bundle = os.path.join(self.rt.dir, "bundle-" + cid[-12:])
        os.makedirs(bundle)
        self._spec(bundle)
        pidfile = os.path.join(bundle, "pid")
        log = open(os.path.join(self.rt.dir, "%s-%s.log" % (self.name, cid[-12:])), "w")
        self.rt.created.append((cid, self.cgroup))
        # -d: runc exits once the container runs; its process keeps these fds (the log).
        r = subprocess.run(self.rt.runc("run", "-d", "--pid-file", pidfile, "--bundle", bundle,
                                        cid), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           timeout=60)
        log.close()
        if r.returncode:
            raise RuntimeError("runc run %s failed: %s" % (self.name, self.log()))
        with open(pidfile) as f:
            self.pid = int(f.read())
        return self.pid

    def log(self):
        with open(os.path.join(self.rt.dir, "%s-%s.log" % (self.name, self.cid[-12:]))) as f:
            return f.read()

    def stop(self):
        """runc kill (SIGKILL, as a kubelet's kill after the grace period) and delete."""
        if self.cid:
            self.rt.delete(self.cid)
        self.pid = None


class Runtime:
    """A runc state directory of the test's own (so `runc list` of other users is untouched)
    and everything created under it, removed by cleanup() even after a failure."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.root = os.path.join(tmpdir, "runc-state")
        self.created = []  # (container id, cgroupsPath)

    def runc(self, *args):
        return [RUNC, "--root", self.root] + list(args)

    def state(self, cid):
        r = subprocess.run(self.runc("state", cid), capture_output=True, text=True)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None

    def delete(self, cid):
        subprocess.run(self.runc("kill", cid, "KILL"), capture_output=True)
        deadline = time.time() + 10
        while self.state(cid) == "running" and time.time() < deadline:
            time.sleep(0.05)
        subprocess.run(self.runc("delete", "-f", cid), capture_output=True)

    def cleanup(self):
        """Deletes every container still there, then the cgroup directories their paths named
        (leaf first, up to the top kubepods component) in every hierarchy. Returns what could
        not be removed, for the test to report."""
        left = []
        for cid, _ in self.created:
            if self.state(cid) is not None:
                self.delete(cid)
            if self.state(cid) is not None:
                left.append("container " + cid[-12:])
        dirs = set()
        for _, cgroup in self.created:
            parts = cgroup.strip("/").split("/")
            for i in range(len(parts), 0, -1):
                dirs.add("/".join(parts[:i]))
        leaves = {cgroup.strip("/") for _, cgroup in self.created}
        for h in cgroup_hierarchies():
            for d in sorted(dirs, key=lambda d: -d.count("/")):
                path = os.path.join(h, d)
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    # A parent may hold another test's cgroups; a container's own must go.
                    if d in leaves:
                        left.append("%s: %s" % (path, e.strerror))
        return left

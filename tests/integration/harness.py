"""Shared pieces of the integration tests: run bizprobe against real processes and collect what
it reports. Standard library only (Debian's python3)."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIZPROBE = os.path.join(ROOT, "build", "bizprobe")
PROGS = os.path.join(ROOT, "tests", "integration", "progs")
NODE = "/usr/bin/node"
# Debian's interpreter: it loads libssl.so.3 dynamically when `ssl` is imported.
PYTHON = os.path.realpath("/usr/bin/python3")
# The Python shop (examples/python-shop) and the rules the state and status page tests give it:
# the shop's signup is the KPIs' registration; a product view is activity of whoever asks.
SHOP_APP = os.path.join(ROOT, "examples", "python-shop", "shop.py")
SHOP_RULES = """version: 1
identity:
  - header: X-User-Id
events:
  - name: registration
    metric: user_registrations_total
    when: {role: server, method: POST, route: /signup, status: 201}
    labels:
      user_type: {request_form: plan, values: [free, plus, pro]}
    user: {response_json: user_id}
  - name: product_view
    metric: product_views_total
    when: {role: server, method: GET, route: "/products/{sku}", status: 200}
"""
SHOP_PLANS = ["free", "free", "plus", "pro", "plus"]
CURL = "/usr/bin/curl"


# Under software emulation (the VM kernel matrix) everything runs several times slower.
SLOW = float(os.environ.get("BIZPROBE_TEST_TIME_SCALE",
                            "6" if os.environ.get("VMTEST_GUEST") == "1" else "1"))


def wait_attached(proc, err_path, starts=1):
    """Waits until bizprobe run (proc, its stderr in err_path) has said `attached:` `starts`
    times; raises with its stderr if it exits or takes longer than a minute (scaled)."""
    deadline = time.time() + 60 * SLOW
    while open(err_path).read().count("attached:") < starts:
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("bizprobe did not attach: " + open(err_path).read())
        time.sleep(0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


_cert = None


def test_cert(tmpdir="/tmp/bizprobe-test-certs"):
    """A self-signed certificate for 127.0.0.1, made once per run with the openssl CLI."""
    global _cert
    if _cert:
        return _cert
    os.makedirs(tmpdir, exist_ok=True)
    cert, key = os.path.join(tmpdir, "cert.pem"), os.path.join(tmpdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    _cert = (cert, key)
    return _cert


class Server:
    """tests/integration/progs/server.js on a free port, plain or TLS."""

    def __init__(self, tls):
        self.port = free_port()
        self.tls = tls
        cert, key = test_cert()
        self.argv = [NODE, os.path.join(PROGS, "server.js"), str(self.port),
                     "tls" if tls else "plain", cert, key]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        wait_port(self.port)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Tracer:
    """`bizprobe trace --json` with the given selection; exchanges collected as dicts."""

    def __init__(self, *args):
        self.args = [BIZPROBE, "trace", "--json"] + list(args)
        self.exchanges = []
        self.stderr = []
        self._attached = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        if not self._attached.wait(60 * SLOW) or self.proc.poll() is not None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("bizprobe did not attach: %s" % "".join(self.stderr[-40:]))
        return self

    def _read_out(self):
        for line in self.proc.stdout:
            with self._lock:
                self.exchanges.append(json.loads(line))

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "attached:" in line:
                self._attached.set()
        self._attached.set()

    def wait_for(self, n, timeout=20, ports=None):
        """Waits until at least n exchanges were printed (or the timeout), returns them. With
        ports, only exchanges with the test's own servers count: an --exe tracer also sees every
        other process of that executable on the machine (a developer's running node apps)."""
        def mine():
            if ports is None:
                return list(self.exchanges)
            hosts = {"127.0.0.1:%d" % p for p in ports}
            return [x for x in self.exchanges if x["host"] in hosts]

        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            with self._lock:
                if len(mine()) >= n:
                    break
            time.sleep(0.05)
        with self._lock:
            return mine()

    def wait_said(self, line, timeout=10):
        """Waits until bizprobe wrote line (a whole stderr line, newline included) or the
        timeout; whether it did."""
        deadline = time.time() + timeout * SLOW
        while line not in self.stderr and time.time() < deadline:
            time.sleep(0.05)
        return line in self.stderr

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(30 * SLOW)
        time.sleep(0.1)
        return rc

    def __exit__(self, exc_type, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        if exc_type is not None:
            sys.stdout.write("bizprobe stderr:\n" + "".join(self.stderr[-40:]))


def attached_programs():
    """Names of the BPF programs attached through a link on the host now."""
    def show(kind):
        out = subprocess.run(["bpftool", kind, "show", "-j"], check=True, capture_output=True,
                             text=True, timeout=30).stdout
        return json.loads(out)
    names = {p["id"]: p.get("name", "") for p in show("prog")}
    return {names.get(l.get("prog_id"), "") for l in show("link")}


def route_template(path):
    """What bizprobe's trace lines show of a path unless --raw-paths (redact_path_template in
    src/export/redact.c): each segment that identifies something becomes {id}."""
    def is_id(seg):
        if not seg:
            return False
        if "@" in seg or "%40" in seg.lower():
            return True
        digits = sum(c.isdigit() for c in seg)
        hexes = sum(c in "0123456789abcdefABCDEF" for c in seg)
        return (digits == len(seg) or len(seg) >= 20 or (digits and len(seg) >= 10) or
                (hexes == len(seg) and len(seg) >= 8 and digits))
    return "/".join("{id}" if is_id(seg) else seg for seg in path.split("/"))


def key_of(x, role=None, tls=None):
    """The fields a test knows the truth of, as a comparable tuple."""
    return (role if role is not None else x["role"], tls if tls is not None else x["tls"],
            x["method"], x["path"], x["status"], x["req_bytes"], x["resp_bytes"])


def run_node_client(base, plan):
    out = subprocess.run([NODE, os.path.join(PROGS, "client.js"), base, json.dumps(plan)],
                         check=True, capture_output=True, text=True, timeout=120 * SLOW)
    return [json.loads(l) for l in out.stdout.splitlines()]


def _elf_file_offset(path, symbol):
    """File offset of a dynamic symbol's code, from binutils' readelf."""
    syms = subprocess.run(["readelf", "-W", "--dyn-syms", path], check=True,
                          capture_output=True, text=True).stdout
    vaddr = None
    for line in syms.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and f[7].split("@")[0] == symbol:
            vaddr = int(f[1], 16)
            break
    if vaddr is None:
        raise RuntimeError("%s does not define %s" % (path, symbol))
    segs = subprocess.run(["readelf", "-W", "-l", path], check=True,
                          capture_output=True, text=True).stdout
    for line in segs.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            off, va, size = int(f[1], 16), int(f[2], 16), int(f[5], 16)
            if va <= vaddr < va + size:
                return vaddr - va + off
    raise RuntimeError("%s: %s is in no loaded segment" % (path, symbol))


def code_bytes(pid, path, symbol, at=0):
    """(the byte at symbol's first instruction, or at bytes past it, in pid's memory, the same
    byte in the file). A uprobe breakpoint shows as 0xcc in the process and not in the file."""
    off = _elf_file_offset(path, symbol) + at
    with open(path, "rb") as f:
        f.seek(off)
        file_byte = f.read(1)[0]
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            f = line.split()
            if len(f) < 6 or os.path.realpath(f[5]) != os.path.realpath(path):
                continue
            start, end = (int(x, 16) for x in f[0].split("-"))
            mapoff = int(f[2], 16)
            if mapoff <= off < mapoff + (end - start):
                with open("/proc/%d/mem" % pid, "rb") as mem:
                    mem.seek(start + off - mapoff)
                    return mem.read(1)[0], file_byte
    raise RuntimeError("pid %d does not map %s:%s" % (pid, path, symbol))


class CountingResult(unittest.TextTestResult):
    """Prints how long each test took and when it ended (set-ups fall between), so a slow step
    shows where it is."""
    started = time.monotonic()

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        now = time.monotonic()
        self.stream.writeln("    (%s: %.1fs, %.1fs into the run)" % (
            test.id().rsplit(".", 1)[-1], now - self._t0, now - self.started))
        self.stream.flush()


def main(module_name):
    """Runs the module's tests and ends with the suite's `N passed, N failed` line."""
    suite = unittest.defaultTestLoader.loadTestsFromName(module_name)
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout,
                                  resultclass=CountingResult).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("%s: %d passed, %d failed" % (module_name, res.testsRun - failed - len(res.skipped),
                                       failed))
    return 0 if failed == 0 else 1

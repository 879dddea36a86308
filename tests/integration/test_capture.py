"""Capture engine against real programs: every exchange reported once, with exact fields.

Ground truth comes from the programs themselves (the Node client prints what it sent and
received), or from the request plan the test made."""
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BIZPROBE, CURL, NODE, PROGS, PYTHON, SLOW, Server, Tracer,  # noqa: E402
                     _elf_file_offset, attached_programs, code_bytes, free_port, key_of, main,
                     route_template, run_node_client, wait_port)

SIZES = [0, 1, 1000, 16384, 65536, 204800]
BODY_CAP = ["--body-cap", "262144"]


def plan_all_sizes():
    plan = []
    for mode in ("cl", "chunked", "gzip"):
        for n in SIZES:
            plan.append({"method": "GET", "path": "/size/%d?mode=%s" % (n, mode)})
    for n in SIZES:
        plan.append({"method": "POST", "path": "/echo", "body": n})
    plan.append({"method": "HEAD", "path": "/size/10"})
    plan.append({"method": "DELETE", "path": "/items/7"})
    return plan


def node_parent(spawn_js):
    """A node process that runs spawn_js once it reads a line: bizprobe attaches to it before
    it spawns anything. spawn_js exits the process on the next line it reads."""
    return subprocess.Popen([NODE, "-e", "process.stdin.once('data', () => {" + spawn_js + "});"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def ssl_links(tracer):
    """The lines in which a --verbose bizprobe reported OpenSSL uprobes attached."""
    return [l.strip() for l in tracer.stderr if "OpenSSL uprobes attached to" in l]


def tell(proc, line):
    proc.stdin.write(line)
    proc.stdin.flush()


class CaptureCase(unittest.TestCase):
    """What the capture suites share; no tests of its own."""
    maxDiff = None

    def stop_parent(self, parent, tracer):
        tell(parent, b"stop\n")
        self.assertEqual(parent.wait(30 * SLOW), 0)
        self.assertEqual(tracer.stop(), 0)

    def assert_exchanges(self, got, truth):
        # Trace lines show each path's route template (issue 16): /size/204800 is /size/{id}.
        # The ground truth is templated the same way; the sizes still tell exchanges apart.
        truth = [k[:3] + (route_template(k[3]),) + k[4:] for k in truth]
        got, truth = collections.Counter(got), collections.Counter(truth)
        self.assertEqual(got, truth, "missing %s, unexpected %s" % (dict(truth - got),
                                                                   dict(got - truth)))


class CaptureTest(CaptureCase):
    def test_node_tls_server_and_client_keepalive(self):
        """OpenSSL inside node: both ends traced, bodies 0 B..200 KiB, CL, chunked, gzip."""
        plan = plan_all_sizes()
        with Server(tls=True) as srv, Tracer("--exe", NODE, *BODY_CAP) as tr:
            truth = run_node_client(srv.base, plan)
            self.assertEqual(len(truth), len(plan))
            got = tr.wait_for(2 * len(plan), ports=[srv.port])
            tr.stop()
        client = [key_of(x) for x in got if x["role"] == "client"]
        server = [key_of(x) for x in got if x["role"] == "server"]
        self.assert_exchanges(client, [key_of(t, "client", True) for t in truth])
        self.assert_exchanges(server, [key_of(t, "server", True) for t in truth])
        self.assertEqual(len(got), 2 * len(plan))
        self.assertFalse(any(x["truncated"] for x in got))
        self.assertTrue(all(x["host"] == "127.0.0.1:%d" % srv.port for x in got))
        self.assertTrue(all(x["comm"] == "node" for x in got))

    def test_body_cap_marks_truncated_but_keeps_sizes(self):
        """Past the body cap the exchange is marked truncated; byte counts stay exact."""
        plan = [{"method": "GET", "path": "/size/204800?mode=chunked"},
                {"method": "GET", "path": "/size/100"}]
        with Server(tls=True) as srv, Tracer("--pid", str(srv.pid), "--body-cap", "65536") as tr:
            truth = run_node_client(srv.base, plan)
            got = tr.wait_for(2)
            tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", True) for t in truth])
        by_size = {x["resp_bytes"]: x for x in got}
        self.assertTrue(by_size[204800]["truncated"])
        self.assertFalse(by_size[100]["truncated"])

    def test_python_libssl_client_started_after_bizprobe(self):
        """Python's http.client (libssl.so.3 loaded on import) over one keep-alive connection."""
        with Server(tls=True) as srv, Tracer("--exe", PYTHON, *BODY_CAP) as tr:
            script = (
                "import http.client, ssl\n"
                "c = http.client.HTTPSConnection('127.0.0.1', %d,"
                " context=ssl._create_unverified_context())\n"
                "for n in (0, 10, 70000, 204800):\n"
                "    c.request('GET', '/size/%%d?mode=cl' %% n); r = c.getresponse(); r.read()\n"
                "    c.request('PUT', '/up', body=b'z' * n); r = c.getresponse(); r.read()\n"
            ) % srv.port
            subprocess.run([PYTHON, "-c", script], check=True, timeout=60 * SLOW)
            got = tr.wait_for(8, ports=[srv.port])
            tr.stop()
        truth = []
        for n in (0, 10, 70000, 204800):
            truth.append(("client", True, "GET", "/size/%d" % n, 200, 0, n))
            truth.append(("client", True, "PUT", "/up", 200, n, len("got %d" % n)))
        self.assert_exchanges([key_of(x) for x in got], truth)
        self.assertTrue(all(x["comm"] == os.path.basename(PYTHON)[:15] for x in got))

    def test_pid_python_loads_libssl_later_and_calls_from_a_thread(self):
        """--pid of a running Python that loads libssl only after bizprobe attached (its
        breakpoints are per process) and makes its TLS calls from a worker thread."""
        script = (
            "import sys, threading\n"
            "sys.stdin.readline()\n"
            "import http.client, ssl\n"
            "def work():\n"
            "    c = http.client.HTTPSConnection('127.0.0.1', %d,"
            " context=ssl._create_unverified_context())\n"
            "    for n in (3, 5000):\n"
            "        c.request('GET', '/size/%%d' %% n); c.getresponse().read()\n"
            "t = threading.Thread(target=work); t.start(); t.join()\n"
        )
        with Server(tls=True) as srv:
            py = subprocess.Popen([PYTHON, "-c", script % srv.port], stdin=subprocess.PIPE)
            try:
                with Tracer("--pid", str(py.pid)) as tr:
                    tell(py, b"go\n")
                    self.assertEqual(py.wait(60 * SLOW), 0)
                    got = tr.wait_for(2, ports=[srv.port])
                    tr.stop()
            finally:
                py.kill()
                py.wait()
        self.assert_exchanges([key_of(x) for x in got],
                              [("client", True, "GET", "/size/3", 200, 0, 3),
                               ("client", True, "GET", "/size/5000", 200, 0, 5000)])
        self.assertTrue(all(x["pid"] == py.pid for x in got))

    def test_curl_tls_and_plaintext(self):
        """curl (libssl.so.3) over TLS and plaintext, several URLs on one connection."""
        with Server(tls=True) as tsrv, Server(tls=False) as psrv, \
                Tracer("--exe", CURL, *BODY_CAP) as tr:
            for srv in (tsrv, psrv):
                subprocess.run([CURL, "-sk", "-o", "/dev/null", "-o", "/dev/null",
                                srv.base + "/size/5000?mode=chunked", srv.base + "/size/7"],
                               check=True, timeout=30 * SLOW)
                subprocess.run([CURL, "-sk", "-o", "/dev/null", "--data-binary", "hello",
                                srv.base + "/form"], check=True, timeout=30 * SLOW)
            got = tr.wait_for(6, ports=[tsrv.port, psrv.port])
            tr.stop()
        truth = []
        for tls in (True, False):
            truth += [("client", tls, "GET", "/size/5000", 200, 0, 5000),
                      ("client", tls, "GET", "/size/7", 200, 0, 7),
                      ("client", tls, "POST", "/form", 200, 5, len("got 5"))]
        self.assert_exchanges([key_of(x) for x in got], truth)

    def test_plaintext_node_server(self):
        """A plaintext Node HTTP server (read/writev syscalls), attached while running, through
        the raw syscall tracepoints (a --pid of node gets the libc hooks unless told)."""
        plan = plan_all_sizes()
        with Server(tls=False) as srv:
            time.sleep(0.2)
            with Tracer("--pid", str(srv.pid), "--socket-hooks", "syscalls", *BODY_CAP) as tr:
                truth = run_node_client(srv.base, plan)
                got = tr.wait_for(len(plan))
                tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])
        self.assertFalse(any(x["tls"] for x in got))

    def test_paths_templated_unless_raw_paths(self):
        """A path with an e-mail and ids shows as its route template; --raw-paths shows it as
        the client sent it. Two tracers at once, on the same exchanges."""
        plan = [{"method": "GET", "path": "/users/alice%40example.com/orders/1234?x=1"},
                {"method": "GET", "path": "/users/bob@example.com/orders/cus_QXg1o8vcGmoR32"}]
        with Server(tls=False) as srv:
            with Tracer("--pid", str(srv.pid)) as tr, \
                    Tracer("--pid", str(srv.pid), "--raw-paths") as raw:
                run_node_client(srv.base, plan)
                got, got_raw = tr.wait_for(2), raw.wait_for(2)
                tr.stop()
                raw.stop()
        self.assertEqual([x["path"] for x in got], ["/users/{id}/orders/{id}"] * 2)
        self.assertEqual([x["path"] for x in got_raw],
                         ["/users/alice%40example.com/orders/1234",
                          "/users/bob@example.com/orders/cus_QXg1o8vcGmoR32"])

    def test_quiet_stretches_lose_nothing_and_a_stop_drains(self):
        """With nothing to read the reader sleeps until its tick: exchanges after quiet
        stretches are all reported, and one answered just before SIGINT is taken by the drain
        at the stop."""
        with Server(tls=False) as srv:
            time.sleep(0.2)
            with Tracer("--pid", str(srv.pid)) as tr:
                truth = []
                for k in range(3):
                    time.sleep(1.0)  # several ticks with nothing to read
                    truth += run_node_client(srv.base, [{"method": "GET",
                                                         "path": "/size/%d?mode=cl" % (10 + k)}])
                    self.assertEqual(len(tr.wait_for(len(truth))), len(truth))
                time.sleep(1.0)
                truth += run_node_client(srv.base, [{"method": "DELETE", "path": "/items/9"}])
                self.assertEqual(tr.stop(), 0)
                got = list(tr.exchanges)
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])

    def test_traced_program_restarts(self):
        """--pid of a server that exits and is started again with the same command line."""
        with Server(tls=True) as srv:
            with Tracer("--pid", str(srv.pid)) as tr:
                run_node_client(srv.base, [{"method": "GET", "path": "/size/1"}])
                first_pid = srv.pid
                tr.wait_for(1)
                srv.stop()
                srv.start()
                # The restarted server must be picked up before it answers anything.
                time.sleep(0.5 * SLOW)
                run_node_client(srv.base, [{"method": "GET", "path": "/size/2"},
                                           {"method": "GET", "path": "/size/3"}])
                got = tr.wait_for(3)
                tr.stop()
        pids = [x["pid"] for x in got]
        self.assertEqual([(x["path"], x["resp_bytes"]) for x in got],
                         [("/size/{id}", 1), ("/size/{id}", 2), ("/size/{id}", 3)])
        self.assertEqual(pids, [first_pid, srv.pid, srv.pid])
        self.assertNotEqual(first_pid, srv.pid)

    def test_bad_input_is_counted_and_loses_nothing_else(self):
        """Garbage, a 1 MiB header, a malformed header, a body cut by close: each counted, no
        crash, and the well-formed exchanges around them reported exactly."""
        script = r"""
import socket, sys
port = int(sys.argv[1])
def conn(data, read=True):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    if read:
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    s.close()
req = b"GET /size/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
conn(req % 11)
conn(bytes(range(256)) * 64, read=False)                               # binary, not HTTP
conn(b"GET /big HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")  # 1 MiB header
conn(b"GET /bad HTTP/1.1\r\nthis is no header\r\n\r\n")              # malformed
conn(b"POST /cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc", read=False)
conn(req % 22)
"""
        with Server(tls=False) as srv, Tracer("--exe", PYTHON) as tr:
            subprocess.run([PYTHON, "-c", script, str(srv.port)], check=True,
                           timeout=60 * SLOW)
            got = tr.wait_for(2)
            self.assertEqual(tr.stop(), 0)
        self.assert_exchanges([key_of(x) for x in got],
                              [("client", False, "GET", "/size/11", 200, 0, 11),
                               ("client", False, "GET", "/size/22", 200, 0, 22)])
        stats = [l for l in tr.stderr if "parse errors" in l][-1]
        # The 1 MiB header and the malformed line are parse errors; the cut POST is incomplete.
        self.assertIn("parse errors 2,", stats)
        self.assertIn("incomplete 1;", stats)

    def test_untraced_processes_are_not_captured(self):
        """Only selected processes: the client side is not traced when only the server is."""
        with Server(tls=True) as srv, Tracer("--pid", str(srv.pid)) as tr:
            run_node_client(srv.base, [{"method": "GET", "path": "/size/3"}] * 3)
            got = tr.wait_for(3)
            tr.stop()
        self.assertEqual(len(got), 3)
        self.assertTrue(all(x["role"] == "server" and x["pid"] == srv.pid for x in got))

    def test_breakpoints_only_in_traced_processes(self):
        """--pid plants OpenSSL breakpoints in the traced process alone: another node process,
        running before or started after bizprobe, never stops at them; detaching restores the
        traced process's code."""
        idle = [NODE, "-e", "setInterval(() => {}, 1000)"]
        before = subprocess.Popen(idle)
        try:
            with Server(tls=True) as srv:
                with Tracer("--pid", str(srv.pid)) as tr:
                    after = subprocess.Popen(idle)
                    try:
                        time.sleep(0.5 * SLOW)
                        run_node_client(srv.base, [{"method": "GET", "path": "/size/4"}])
                        self.assertEqual(len(tr.wait_for(1)), 1)
                        traced, orig = code_bytes(srv.pid, NODE, "SSL_read")
                        self.assertNotEqual(orig, 0xCC)
                        self.assertEqual(traced, 0xCC)
                        self.assertEqual(code_bytes(before.pid, NODE, "SSL_read")[0], orig)
                        self.assertEqual(code_bytes(after.pid, NODE, "SSL_read")[0], orig)
                    finally:
                        after.kill()
                        after.wait()
                    self.assertEqual(tr.stop(), 0)
                self.assertEqual(code_bytes(srv.pid, NODE, "SSL_read")[0], orig)
        finally:
            before.kill()
            before.wait()

    def test_links_per_process_follow_what_it_maps(self):
        """--pid on a node parent: the parent (its own OpenSSL) gets no system libssl links; a
        node child is attached once it has settled and has the breakpoints in its own memory; a
        Python child that never loads libssl gets no links at all."""
        parent_js = (
            "const { spawn } = require('child_process');"
            "const n = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);"
            "const p = spawn(%r, ['-c', 'import time; time.sleep(60)']);"
            "process.stdout.write(n.pid + ' ' + p.pid + '\\n');"
            "process.stdin.on('data', () => { n.kill(); p.kill(); process.exit(0); });"
        ) % PYTHON

        def link(pid):
            return "bizprobe: OpenSSL uprobes attached to /proc/%d/root%s for pid %d" % (pid, NODE, pid)
        parent = node_parent(parent_js)
        try:
            with Tracer("--pid", str(parent.pid), "--verbose") as tr:
                tell(parent, b"go\n")
                node_child, py_child = map(int, parent.stdout.readline().split())
                attached = link(node_child)
                deadline = time.time() + 10 * SLOW
                while attached not in ssl_links(tr) and time.time() < deadline:
                    time.sleep(0.05)
                self.assertIn(attached, ssl_links(tr))
                traced, orig = code_bytes(node_child, NODE, "SSL_read")
                self.assertEqual(traced, 0xCC)
                self.assertNotEqual(orig, 0xCC)
                time.sleep(0.5 * SLOW)  # the Python child has settled and been looked at too
                got = ssl_links(tr)
                self.stop_parent(parent, tr)
        finally:
            parent.kill()
            parent.wait()
        self.assertEqual(got, [link(parent.pid), attached])

    def test_children_are_attached_once_they_have_lived_child_delay(self):
        """--pid --child-delay: a child that maps libssl at once is attached only when the delay
        has passed, and one that exits before then never is."""
        delay_s = 4 * SLOW
        parent_js = (
            "const { spawn } = require('child_process');"
            "const child = (s) => spawn(%r, ['-c', 'import ssl, time; time.sleep(' + s + ')']);"
            "const short = child(0.3), long = child(60);"
            "process.stdout.write(short.pid + ' ' + long.pid + '\\n');"
            "short.on('exit', () => process.stdout.write('short exited\\n'));"
            "process.stdin.on('data', () => { long.kill(); process.exit(0); });"
        ) % PYTHON
        parent = node_parent(parent_js)
        try:
            with Tracer("--pid", str(parent.pid), "--verbose",
                        "--child-delay", str(int(delay_s * 1000))) as tr:
                tell(parent, b"go\n")
                short, long = map(int, parent.stdout.readline().split())
                spawned = time.time()

                def linked(pid):
                    return any(l.endswith(" for pid %d" % pid) for l in ssl_links(tr))
                self.assertEqual(parent.stdout.readline().strip(), b"short exited")
                # Both children mapped libssl long ago: before the fix, both were attached then.
                self.assertLess(time.time() - spawned, delay_s, "the short child outlived the delay")
                self.assertFalse(linked(short))
                self.assertFalse(linked(long))
                deadline = spawned + delay_s + 10 * SLOW
                while not linked(long) and time.time() < deadline:
                    time.sleep(0.05)
                waited = time.time() - spawned
                self.assertTrue(linked(long))
                self.assertGreater(waited, delay_s - 0.5)
                self.assertFalse(linked(short))
                self.stop_parent(parent, tr)
        finally:
            parent.kill()
            parent.wait()


LIBC = ["--socket-hooks", "libc"]


class LibcSocketHooksTest(CaptureCase):
    """--socket-hooks libc (issue 20): plaintext sockets through uprobes in the traced process's
    own C library, the raw syscall tracepoints off. The same exchanges, exactly."""

    def test_plaintext_node_server_libc(self):
        """libuv's read, writev and accept4 through libc: every size and framing, exact."""
        plan = plan_all_sizes()
        with Server(tls=False) as srv:
            time.sleep(0.2)
            with Tracer("--pid", str(srv.pid), "--verbose", *LIBC, *BODY_CAP) as tr:
                truth = run_node_client(srv.base, plan)
                got = tr.wait_for(len(plan))
                tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])
        self.assertEqual(len(got), len(plan))
        self.assertTrue(any("socket uprobes attached to" in l and "libc.so" in l
                            for l in tr.stderr), "".join(tr.stderr[-20:]))

    def test_pid_python_plaintext_and_late_libssl_libc(self):
        """A running Python: plaintext calls (send, recv_into) through libc, then the libssl it
        imports only after bizprobe attached (its uprobes planted at attach, per process)."""
        script = (
            "import sys, http.client\n"
            "sys.stdin.readline()\n"
            "c = http.client.HTTPConnection('127.0.0.1', %d)\n"
            "for n in (4, 6000):\n"
            "    c.request('GET', '/size/%%d' %% n); c.getresponse().read()\n"
            "import ssl\n"
            "c = http.client.HTTPSConnection('127.0.0.1', %d,"
            " context=ssl._create_unverified_context())\n"
            "c.request('POST', '/form', body=b'x' * 5); c.getresponse().read()\n"
        )
        with Server(tls=False) as plain, Server(tls=True) as tls:
            py = subprocess.Popen([PYTHON, "-c", script % (plain.port, tls.port)],
                                  stdin=subprocess.PIPE)
            try:
                with Tracer("--pid", str(py.pid), *LIBC) as tr:
                    tell(py, b"go\n")
                    self.assertEqual(py.wait(60 * SLOW), 0)
                    got = tr.wait_for(3, ports=[plain.port, tls.port])
                    tr.stop()
            finally:
                py.kill()
                py.wait()
        self.assert_exchanges([key_of(x) for x in got],
                              [("client", False, "GET", "/size/4", 200, 0, 4),
                               ("client", False, "GET", "/size/6000", 200, 0, 6000),
                               ("client", True, "POST", "/form", 200, 5, len("got 5"))])

    def test_libc_hooks_refused_with_exe(self):
        """--exe processes must be seen from their exec: the libc mode says it is not for them."""
        out = subprocess.run([BIZPROBE, "trace", "--exe", PYTHON, *LIBC], capture_output=True,
                             text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("--socket-hooks libc is not for --exe", out.stderr)


def curl_gets(base, paths):
    for path in paths:
        subprocess.run([CURL, "-s", "-o", "/dev/null", base + path], check=True,
                       timeout=30 * SLOW)


def mapped_file(pid, prefix):
    """The first file pid maps whose name starts with prefix (libssl.so, libc.so)."""
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            f = line.split()
            if len(f) >= 6 and os.path.basename(f[5]).startswith(prefix):
                return f[5]
    raise RuntimeError("pid %d maps no %s" % (pid, prefix))


class OpenSSLProbeSiteTest(CaptureCase):
    """libssl.so.3's SSL_read_ex and SSL_write_ex are thunks around the functions SSL_read and
    SSL_write call too; their first instruction moves the stack, so a probe there is single-
    stepped (in every process, with --exe). bizprobe probes the shared functions instead."""

    def test_python_tls_through_the_shared_core_exactly(self):
        script = (
            "import sys, http.client, ssl\n"
            "sys.stdin.readline()\n"
            "c = http.client.HTTPSConnection('127.0.0.1', %d,"
            " context=ssl._create_unverified_context())\n"
            "for n in (3, 20000):\n"
            "    c.request('GET', '/size/%%d' %% n); c.getresponse().read()\n"
            "c.request('POST', '/form', body=b'y' * 9); c.getresponse().read()\n"
            "sys.stdin.readline()\n"
        )
        with Server(tls=True) as srv:
            py = subprocess.Popen([PYTHON, "-c", script % srv.port], stdin=subprocess.PIPE)
            try:
                time.sleep(0.5 * SLOW)
                lib = mapped_file(py.pid, "libssl.so")
                with open(lib, "rb") as f:
                    f.seek(_elf_file_offset(lib, "SSL_read_ex"))
                    thunk = f.read(9)
                if thunk[:5] != bytes([0x48, 0x83, 0xEC, 0x08, 0xE8]):
                    self.skipTest("%s's SSL_read_ex is not the thunk this test knows" % lib)
                core = 9 + int.from_bytes(thunk[5:9], "little", signed=True)
                with Tracer("--pid", str(py.pid)) as tr:
                    tell(py, b"go\n")
                    got = tr.wait_for(3)
                    sites = {name: code_bytes(py.pid, lib, name)
                             for name in ("SSL_read_ex", "SSL_read", "SSL_write_ex")}
                    at_core = code_bytes(py.pid, lib, "SSL_read_ex", core)
                    tell(py, b"stop\n")
                    self.assertEqual(py.wait(30 * SLOW), 0)
                    tr.stop()
            finally:
                py.kill()
                py.wait()
        self.assert_exchanges([key_of(x) for x in got],
                              [("client", True, "GET", "/size/3", 200, 0, 3),
                               ("client", True, "GET", "/size/20000", 200, 0, 20000),
                               ("client", True, "POST", "/form", 200, 9, len("got 9"))])
        self.assertTrue(all(mem == orig for mem, orig in sites.values()), sites)
        self.assertEqual(at_core[0], 0xCC)
        self.assertNotEqual(at_core[1], 0xCC)


class SocketHooksAutoTest(CaptureCase):
    """--socket-hooks auto, the default (issue 20): a --pid process whose socket calls all go
    through its C library is seen through uprobes there, and no other process on the host pays
    for a syscall tracepoint; one that bypasses libc (a Go program) gets the tracepoints."""

    def test_auto_is_libc_for_node_and_plants_nothing_elsewhere(self):
        """A node server: exact exchanges through libc, the raw syscall tracepoints not attached,
        a breakpoint in the traced process's libc read past its entry (a probe on the entry's
        instruction would be single-stepped), and none in another process's."""
        plan = [{"method": "GET", "path": "/size/%d" % n} for n in (0, 7, 70000)]
        plan.append({"method": "POST", "path": "/echo", "body": 3000})
        idle = subprocess.Popen([NODE, "-e", "setInterval(() => {}, 1000)"])
        try:
            with Server(tls=False) as srv:
                time.sleep(0.2)
                with Tracer("--pid", str(srv.pid), "--verbose", *BODY_CAP) as tr:
                    self.assertIn("bizprobe: socket hooks: libc (uprobes in the traced "
                                  "processes' C library)\n", tr.stderr)
                    self.assertNotIn("rtp_sys_enter", attached_programs())
                    self.assertNotIn("rtp_sys_exit", attached_programs())
                    truth = run_node_client(srv.base, plan)
                    got = tr.wait_for(len(plan))
                    libc = mapped_file(srv.pid, "libc.so")
                    traced = [code_bytes(srv.pid, libc, "read", at)[0] for at in range(16)]
                    other = [code_bytes(idle.pid, mapped_file(idle.pid, "libc.so"), "read", at)
                             for at in range(16)]
                    tr.stop()
        finally:
            idle.kill()
            idle.wait()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])
        self.assertNotEqual(traced[0], 0xCC)
        self.assertEqual(traced.count(0xCC), 1, traced)
        self.assertTrue(all(mem == orig for mem, orig in other), other)

    def raw_syscall_program(self):
        """raw_syscall_server built: a Go section, its socket calls through syscall(2)."""
        tmp = tempfile.mkdtemp(prefix="bizprobe-rawsys-")
        self.addCleanup(shutil.rmtree, tmp, True)
        prog = os.path.join(tmp, "raw_syscall_server")
        subprocess.run(["gcc", "-O2", "-o", prog, os.path.join(PROGS, "raw_syscall_server.c")],
                       check=True, timeout=120)
        return prog

    def raw_syscall_server(self):
        """A started raw_syscall_server and its base URL; killed when the test ends."""
        prog = self.raw_syscall_program()
        port = free_port()
        srv = subprocess.Popen([prog, str(port)], stdout=subprocess.PIPE)
        self.addCleanup(srv.wait)
        self.addCleanup(srv.kill)
        self.assertEqual(srv.stdout.readline(), b"listening\n")
        return srv, "http://127.0.0.1:%d" % port

    def test_auto_is_syscalls_for_a_program_that_bypasses_libc(self):
        """A program with a Go section that makes its socket calls with syscall(2): auto loads
        the raw syscall tracepoints and sees every exchange; told libc, bizprobe sees none."""
        srv, base = self.raw_syscall_server()
        with Tracer("--pid", str(srv.pid), "--verbose") as tr:
            self.assertIn("bizprobe: socket hooks: syscalls (raw syscall tracepoints)\n",
                          tr.stderr)
            curl_gets(base, ["/a", "/bb", "/ccc"])
            got = tr.wait_for(3)
            tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [("server", False, "GET", p, 200, 0, 2)
                               for p in ("/a", "/bb", "/ccc")])
        with Tracer("--pid", str(srv.pid), *LIBC) as tr:
            curl_gets(base, ["/d", "/e"])
            missed = tr.wait_for(1, timeout=3)
            tr.stop()
        self.assertEqual(missed, [])

    def test_each_process_its_own_hooks_and_the_tracepoints_only_while_needed(self):
        """A node server (libc) and a raw-syscall server traced together: both exact, each
        through its own hooks. Once the raw server is gone, the tracepoints come off the host
        and the node server is still seen exactly."""
        raw, raw_base = self.raw_syscall_server()
        plan = [{"method": "GET", "path": "/size/%d" % n} for n in (5, 40000)]
        with Server(tls=False) as srv:
            time.sleep(0.2)
            with Tracer("--pid", str(srv.pid), "--pid", str(raw.pid), "--verbose") as tr:
                self.assertIn("bizprobe: socket hooks for pid %d: libc\n" % srv.pid, tr.stderr)
                self.assertIn("bizprobe: socket hooks for pid %d: syscalls\n" % raw.pid,
                              tr.stderr)
                self.assertIn("bizprobe: socket hooks: libc and syscalls, per process (raw "
                              "syscall tracepoints for those that bypass libc)\n", tr.stderr)
                self.assertLessEqual({"rtp_sys_enter", "rtp_sys_exit"}, attached_programs())
                truth = run_node_client(srv.base, plan)
                curl_gets(raw_base, ["/x", "/yy"])
                got = tr.wait_for(len(plan) + 2)
                raw.kill()
                raw.wait()
                tr.wait_said("bizprobe: raw syscall tracepoints detached\n")
                self.assertIn("bizprobe: raw syscall tracepoints detached\n", tr.stderr)
                self.assertFalse({"rtp_sys_enter", "rtp_sys_exit"} & attached_programs())
                truth += run_node_client(srv.base, plan)
                got = tr.wait_for(2 * len(plan) + 2)
                tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth]
                              + [("server", False, "GET", p, 200, 0, 2) for p in ("/x", "/yy")])

    def test_a_pid_beside_an_exe_goes_through_the_tracepoints(self):
        """--pid with --exe: the OpenSSL probes are every process's then, and so would the libc
        probes be, so the --pid process is seen through the tracepoints --exe needs anyway, and
        exactly."""
        plan = [{"method": "GET", "path": "/size/%d" % n} for n in (3, 30000)]
        plan.append({"method": "POST", "path": "/echo", "body": 900})
        with Server(tls=False) as srv:
            time.sleep(0.2)
            with Tracer("--pid", str(srv.pid), "--exe", CURL, "--verbose", *BODY_CAP) as tr:
                self.assertIn("bizprobe: socket hooks for pid %d: syscalls\n" % srv.pid,
                              tr.stderr)
                truth = run_node_client(srv.base, plan)
                got = tr.wait_for(len(plan))
                tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])

    def test_a_libc_process_that_execs_a_raw_syscall_program_goes_to_the_tracepoints(self):
        """A shell (libc) traced, then exec'ing the raw-syscall server: bizprobe notices the new
        code at the exec, hands the process to the tracepoints, and sees its exchanges."""
        prog = self.raw_syscall_program()
        port = free_port()
        sh = subprocess.Popen(["/bin/sh", "-c", 'read go && exec "$0" "$1"', prog, str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(sh.wait)
        self.addCleanup(sh.kill)
        with Tracer("--pid", str(sh.pid), "--verbose") as tr:
            self.assertIn("bizprobe: socket hooks for pid %d: libc\n" % sh.pid, tr.stderr)
            self.assertFalse({"rtp_sys_enter", "rtp_sys_exit"} & attached_programs())
            sh.stdin.write(b"go\n")
            sh.stdin.flush()
            self.assertEqual(sh.stdout.readline(), b"listening\n")
            said = "bizprobe: socket hooks for pid %d: syscalls (its code now bypasses libc)\n"
            tr.wait_said("bizprobe: raw syscall tracepoints attached\n")
            self.assertIn(said % sh.pid, tr.stderr)
            self.assertIn("bizprobe: raw syscall tracepoints attached\n", tr.stderr)
            curl_gets("http://127.0.0.1:%d" % port, ["/a", "/bb", "/ccc"])
            got = tr.wait_for(3)
            tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [("server", False, "GET", p, 200, 0, 2)
                               for p in ("/a", "/bb", "/ccc")])

    def test_a_static_wrapper_that_execs_node_moves_to_libc_and_frees_the_host(self):
        """busybox's shell (static: no libc, so the tracepoints) traced, then exec'ing the node
        server: bizprobe plants the node process's libc probes, moves it to them, takes the
        tracepoints off the host, and sees its exchanges exactly."""
        class ExecdServer(Server):
            def start(self):
                self.proc = subprocess.Popen(
                    ["/bin/busybox", "sh", "-c", 'read go && exec "$@"', "sh", *self.argv],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

        plan = [{"method": "GET", "path": "/size/%d" % n} for n in (1, 20000)]
        plan.append({"method": "POST", "path": "/echo", "body": 2500})
        with ExecdServer(tls=False) as srv:
            with Tracer("--pid", str(srv.pid), "--verbose", *BODY_CAP) as tr:
                self.assertIn("bizprobe: socket hooks for pid %d: syscalls\n" % srv.pid,
                              tr.stderr)
                self.assertLessEqual({"rtp_sys_enter", "rtp_sys_exit"}, attached_programs())
                srv.proc.stdin.write(b"go\n")
                srv.proc.stdin.flush()
                wait_port(srv.port)
                tr.wait_said("bizprobe: raw syscall tracepoints detached\n")
                self.assertIn("bizprobe: socket hooks for pid %d: libc (its code now goes "
                              "through libc)\n" % srv.pid, tr.stderr)
                self.assertIn("bizprobe: raw syscall tracepoints detached\n", tr.stderr)
                self.assertFalse({"rtp_sys_enter", "rtp_sys_exit"} & attached_programs())
                truth = run_node_client(srv.base, plan)
                got = tr.wait_for(len(plan))
                tr.stop()
        self.assert_exchanges([key_of(x) for x in got],
                              [key_of(t, "server", False) for t in truth])


if __name__ == "__main__":
    sys.exit(main("test_capture"))

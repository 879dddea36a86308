"""Losses bizprobe must not keep to itself, and what a killed bizprobe leaves behind, against
real processes: a trace line too long to print whole is printed without its detail and counted;
tracefs uprobe events of a bizprobe killed with SIGKILL are removed by the next one to start,
and those of a running bizprobe are not."""
import glob
import os
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PYTHON, Server, Tracer, _elf_file_offset, main  # noqa: E402

TRACEFS = "/sys/kernel/tracing"


def libc_path():
    return sorted(glob.glob("/lib/x86_64-linux-gnu/libc.so.6") +
                  glob.glob("/usr/lib/x86_64-linux-gnu/libc.so.6"))[0]


def uprobe_event_names():
    with open(os.path.join(TRACEFS, "uprobe_events")) as f:
        return {line.split()[0].split("/", 1)[1] for line in f if line.strip()}


def write_uprobe_events(line):
    # Not open(..., "a"): Python seeks to the end, which tracefs refuses (EINVAL).
    fd = os.open(os.path.join(TRACEFS, "uprobe_events"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def add_uprobe_event(name):
    """A tracefs uprobe event as bizprobe's legacy attach creates them (on libc's getpid)."""
    off = _elf_file_offset(libc_path(), "getpid")
    write_uprobe_events("p:uprobes/%s %s:0x%x\n" % (name, libc_path(), off))


def remove_uprobe_event(name):
    try:
        write_uprobe_events("-:uprobes/%s\n" % name)
    except OSError:
        pass


def dead_pid():
    """A pid that ran a moment ago and no longer does."""
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    assert not os.path.exists("/proc/%d" % p.pid)
    return p.pid


class LossesTest(unittest.TestCase):
    maxDiff = None

    def test_stale_uprobe_events_removed_at_start(self):
        """A bizprobe killed with SIGKILL left bizprobe_<pid>_<n> events; the next start removes
        them, and leaves those of a bizprobe still running."""
        if not os.path.exists(os.path.join(TRACEFS, "uprobe_events")):
            self.skipTest("no tracefs uprobe_events")
        sleeper = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(600)"])
        stale = ["bizprobe_%d_0" % dead_pid(), "bizprobe_%d_1" % dead_pid()]
        mine = None
        try:
            with Tracer("--pid", str(sleeper.pid)) as running:
                mine = "bizprobe_%d_777" % running.proc.pid
                for name in stale + [mine]:
                    add_uprobe_event(name)
                self.assertTrue(set(stale + [mine]) <= uprobe_event_names())
                with Tracer("--pid", str(sleeper.pid), "-v") as second:
                    names = uprobe_event_names()
                    second.stop()
                self.assertFalse(set(stale) & names, "stale events left: %s" % names)
                self.assertIn(mine, names)
                self.assertTrue(any("removed 2 uprobe events left by a bizprobe" in l
                                    for l in second.stderr), "".join(second.stderr))
                running.stop()
        finally:
            for name in stale + ([mine] if mine else []):
                remove_uprobe_event(name)
            sleeper.kill()
            sleeper.wait()

    def test_trace_line_too_long_counted(self):
        """--json --bodies: an exchange whose line would pass the 4 MiB line limit is printed
        with "detail_dropped": true and counted in the summary; the next one prints whole."""
        with Server(tls=False) as srv, \
                Tracer("--pid", str(srv.pid), "--bodies", "--body-cap", "2000000") as tr:
            # 1,500,000 control bytes: each becomes \u0001 (6 bytes) in JSON, 9 MB of line.
            for body in (b"\x01" * 1500000, b"small"):
                req = urllib.request.Request(srv.base + "/echo", data=body, method="POST")
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
            got = tr.wait_for(2)
            self.assertEqual(tr.stop(), 0)
        self.assertEqual(len(got), 2)
        big, small = got
        self.assertTrue(big["detail_dropped"])
        self.assertEqual(big["req_bytes"], 1500000)
        self.assertNotIn("req_body", big)
        self.assertNotIn("detail_dropped", small)
        self.assertEqual(small["req_body"], "small")
        self.assertTrue(any("1 exchanges printed without headers and bodies" in l
                            for l in tr.stderr), "".join(tr.stderr))


if __name__ == "__main__":
    sys.exit(main(__name__))

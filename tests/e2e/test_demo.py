"""`make demo` as a person runs it: in a terminal, until a business summary shows live traffic,
then Ctrl-C. The demo must clean up everything and make must exit 0."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from harness import ROOT, SLOW, free_port, main  # noqa: E402

DEMO_ENV = os.path.join(ROOT, "scripts", "demo-env.sh")
SUMMARY = re.compile(rb"== payments (\d+) \(succeeded (\d+)")


class Terminal:
    """A command on a pseudo-terminal of its own, as a shell would start it: Ctrl-C typed there
    is sent by the kernel to the terminal's foreground process group."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(ROOT)
            os.execvpe(argv[0], argv, env)
        self.out = b""
        self.status = None

    def read_until(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = pattern.search(self.out)
            if m:
                return m
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:  # the other side closed
                    break
        return pattern.search(self.out)

    def type(self, data):
        os.write(self.fd, data)

    def wait(self, timeout):
        """The exit status, or None (and the command killed) if it runs past TIMEOUT."""
        deadline = time.time() + timeout
        while self.status is None and time.time() < deadline:
            self.read_until(re.compile(rb"(?!)"), 0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        if self.status is None:
            os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        return self.status


class Demo(unittest.TestCase):
    def test_ctrl_c_cleans_up_and_make_exits_0(self):
        subprocess.run([DEMO_ENV, "down"], capture_output=True)
        env = dict(os.environ, DEMO_METRICS_LISTEN="127.0.0.1:%d" % free_port(),
                   DEMO_SUMMARY_SECONDS="2", TERM="dumb")
        term = Terminal(["make", "--no-print-directory", "demo"], env)
        try:
            # Two summaries with payments: traffic flows and bizprobe counts it.
            first = term.read_until(SUMMARY, 180 * SLOW)
            self.assertIsNotNone(first, term.out[-3000:].decode(errors="replace"))
            more = re.compile(rb"== payments (\d+) .*\n(?:.*\n)*?.*== payments (\d+)")
            m = term.read_until(more, 60 * SLOW)
            self.assertIsNotNone(m, term.out[-3000:].decode(errors="replace"))
            self.assertGreater(int(m.group(2)), 0)
            # The demo loads its rules file: views come from the app's own requests.
            views = re.compile(rb"== users: registrations \d+ \| content views [1-9]")
            self.assertIsNotNone(term.read_until(views, 60 * SLOW),
                                 term.out[-3000:].decode(errors="replace"))
            term.type(b"\x03")
            rc = term.wait(60 * SLOW)
        finally:
            if term.wait(0) is None:
                subprocess.run([DEMO_ENV, "down"], capture_output=True)
        text = term.out.decode(errors="replace")
        self.assertEqual(rc, 0, text[-3000:])
        self.assertIn("demo: everything removed", text)
        self.assertNotIn("Error", text)
        # Everything the demo started is gone: demo-env says "all down".
        self.assertEqual(subprocess.run([DEMO_ENV, "status"], capture_output=True).returncode, 3)


if __name__ == "__main__":
    sys.exit(main("test_demo"))

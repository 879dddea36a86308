"""Stopping bizprobe under load: the first SIGTERM/SIGINT drains what the kernel wrote for a
bounded time and detaches, however much traffic keeps coming; a second signal exits at once."""
import os
import shutil
import signal
import subprocess
import tempfile
import sys
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import BIZPROBE, ROOT, SLOW, Server, free_port, main  # noqa: E402

PIPELINE_LUA = os.path.join(ROOT, "bench", "pipeline.lua")


class Loaded:
    """A plaintext node server, bizprobe run on it, and wrk pipelining 16 requests a write on
    32 connections, which keeps the ring buffer from ever being empty."""

    def __init__(self):
        self.server = Server(tls=False)
        self.port = free_port()
        self.err = []
        self.state_dir = tempfile.mkdtemp(prefix="bizprobe-state-")
        self.bp = subprocess.Popen(
            [BIZPROBE, "run", "--pid", str(self.server.pid), "--listen",
             "127.0.0.1:%d" % self.port, "--state-dir", self.state_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.bp.stderr:
            self.err.append(line)
            if "attached:" in line:
                break
        self.wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d120s", "-s", PIPELINE_LUA, self.server.base, "--", "16"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def exchanges(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('bizprobe_exchanges_total{role="server"}'):
                    return float(line.split()[-1])
        return 0

    def close(self):
        for p in (self.wrk, self.bp):
            if p.poll() is None:
                p.kill()
                p.wait()
        self.server.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Shutdown(unittest.TestCase):
    def test_sigterm_under_pipelined_load_exits_cleanly(self):
        env = Loaded()
        try:
            deadline = time.time() + 30 * SLOW
            while env.exchanges() < 10000 and time.time() < deadline:
                time.sleep(0.5)
            self.assertGreaterEqual(env.exchanges(), 10000, "the load did not reach bizprobe")
            env.bp.send_signal(signal.SIGTERM)
            # A hang guard, not a timing target: the drain is bounded at 2 s, detaching takes
            # a second or two per process.
            rc = env.bp.wait(60 * SLOW)
            self.assertEqual(rc, 0, "".join(env.err) + env.bp.stderr.read())
            self.assertIsNone(env.wrk.poll(), "the load stopped before bizprobe did")
        finally:
            env.close()

    def test_second_signal_exits_at_once(self):
        env = Loaded()
        try:
            time.sleep(2)
            env.bp.send_signal(signal.SIGINT)
            time.sleep(0.05)
            env.bp.send_signal(signal.SIGINT)
            rc = env.bp.wait(30 * SLOW)
            err = env.bp.stderr.read()
            self.assertEqual(rc, 128 + signal.SIGINT, err)
            self.assertIn("second signal, exiting now", err)
        finally:
            env.close()


if __name__ == "__main__":
    sys.exit(main("test_shutdown"))

"""Least privilege: bizprobe works with only the capabilities the README documents, and names
the one that is missing when it cannot."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIZPROBE, SLOW, Server, main, run_node_client  # noqa: E402

REQUIRED = ["cap_bpf", "cap_perfmon", "cap_sys_ptrace", "cap_dac_read_search"]
# Raising the memlock limit is only needed on kernels without memcg accounting of BPF memory.
OPTIONAL = ["cap_sys_resource"]


def bounding_set():
    out = subprocess.run(["capsh", "--print"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("Bounding set ="))
    return line.split("=", 1)[1].split(",")


def run_with_caps(keep, argv, **kw):
    """argv under capsh with every capability outside keep dropped from the bounding set (as
    root, a new program's capabilities are then exactly keep)."""
    drop = [c for c in bounding_set() if c not in keep]
    cmd = " ".join("'%s'" % a for a in argv)
    return subprocess.Popen(["capsh", "--drop=" + ",".join(drop), "--", "-c", "exec " + cmd],
                            **kw)


class PrivilegesTest(unittest.TestCase):
    def test_works_with_documented_capabilities_only(self):
        with Server(tls=True) as srv:
            p = run_with_caps(REQUIRED + OPTIONAL,
                              [BIZPROBE, "trace", "--json", "--pid", str(srv.pid)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = p.stderr.readline()
                self.assertIn("attached:", line)
                caps = open("/proc/%d/status" % p.pid).read()
                eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", caps).group(1), 16)
                self.assertEqual(eff & (1 << 21), 0, "CAP_SYS_ADMIN must not be held")
                run_node_client(srv.base, [{"method": "GET", "path": "/size/3"}])
                got = p.stdout.readline()
            finally:
                p.terminate()
                p.wait(30 * SLOW)
        # The path as its route template (issue 16); the size tells the exchange.
        self.assertIn('"path":"/size/{id}"', got)
        self.assertIn('"resp_bytes":3,', got)
        self.assertIn('"role":"server"', got)

    def test_each_missing_capability_is_named(self):
        for cap in REQUIRED:
            with self.subTest(cap=cap):
                keep = [c for c in REQUIRED + OPTIONAL if c != cap]
                p = run_with_caps(keep, [BIZPROBE, "trace", "--pid", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                out, err = p.communicate(timeout=60 * SLOW)
                self.assertEqual(p.returncode, 1, err)
                self.assertIn("missing capability %s" % cap.upper(), err)


if __name__ == "__main__":
    sys.exit(main("test_privileges"))

#!/usr/bin/python3
"""Checks that scripts/deps.sh installs every program the project's scripts and tests run.

A fresh Debian 12 machine has only the base system (Essential and Priority: required packages)
plus what deps.sh installs; a tool that came with a developer's machine by chance (kmod's depmod
did) passes there and fails on CI's machine. So: every word in a script, a test, the Makefile or
.ci/run that names a program on the system PATH must come from a base package or from a package
that deps.sh names (or one of their dependencies). Words are taken broadly (comments and strings too): a false alarm costs an
entry in ALLOWED below, a miss costs a red CI.

Programs not installed on this machine cannot be traced to a package and are listed as unchecked;
run it where deps.sh has run (make test does) for a full answer.

Prints one line per finding and ends with "N passed, N failed" (one check per program found).
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCES = re.compile(r"(\.sh|\.py|\.bt|/run|/init|Makefile)$")
COMMENT = re.compile(r"(^|(?<=\s))#(?!!).*$", re.M)
WORD = re.compile(r"(?<![\w./-])[a-z][a-z0-9_+.-]*[a-z0-9](?![\w/])")
# Shell builtins and keywords that also exist as programs; the shell never runs the program.
SHELL_WORDS = {"test", "echo", "printf", "kill", "true", "false", "pwd", "read", "wait", "type",
               "command", "cd", "exec", "exit", "set", "time", "[", "getopts", "ulimit", "umask"}
# Programs a word names only in prose or as an argument (never run by the project), with why.
ALLOWED = {
    "file": "an argument (bpftool btf dump file) and a JavaScript variable",
    "pc": "qemu's machine type (-machine pc)",
    "write": "a test's label in tests/vm/guest-env-report.sh",
    "poweroff": "busybox's applet, in the guest's initramfs",
    "reboot": "busybox's applet, in the guest's initramfs",
    "red": "a word in this script's own docstring",
    "route": "a rules file's route key and Alertmanager's route, in tests",
    "view": "a product view in examples/python-shop/traffic.py",
    "sqlite3": "a pkg-config module in the Makefile (libsqlite3-dev) and Python's module",
    "systemd": "the kubelet's cgroup driver named in the node-mode tests and manifests",
    "crun": "named in tests/integration/containers.py as the runtime that refuses hybrid cgroups",
    "look": "node mode's look once a second at the host's processes, in test_node_mode.py's prose",
}


def tracked_sources():
    out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True,
                         check=True).stdout.split()
    return [f for f in out if SOURCES.search(f) and not f.startswith("tests/unit/fixtures/")]


def words_in(path):
    """The words of PATH outside comments (a '#' at a line's start or after a blank)."""
    try:
        text = open(os.path.join(ROOT, path), encoding="utf-8", errors="replace").read()
    except OSError:
        return set()
    return set(WORD.findall(COMMENT.sub("", text)))


def deps_packages():
    """Every package-like word in deps.sh's arrays."""
    text = open(os.path.join(ROOT, "scripts", "deps.sh")).read()
    pkgs = set()
    for body in re.findall(r"^\w+_PKGS=\(([^)]*)\)", text, re.M):
        pkgs.update(body.split())
    return pkgs


def base_packages():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Essential}\t${Priority}\n"],
                         capture_output=True, text=True, check=True).stdout
    base = set()
    for line in out.splitlines():
        name, essential, priority = (line.split("\t") + ["", ""])[:3]
        if essential == "yes" or priority == "required":
            base.add(name)
    return base


def dependency_closure(roots):
    """ROOTS and every installed package they depend on, directly or not (pkg-config brings
    pkgconf, gcc brings gcc-12's cc)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    deps = {}
    for line in out.splitlines():
        name, _, rest = line.partition("\t")
        deps[name] = {alt.split()[0].split(":")[0] for part in rest.split(",")
                      for alt in part.split("|") if alt.strip()}
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(deps.get(p, ()))
    return seen


def owner(path):
    """The package that installed PATH, or None. Tries the path as found and resolved (merged
    /usr and alternatives both hide the owner of one of them)."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if p.startswith(a):
                candidates.append(b + p[len(a):])
            elif p.startswith(b):
                candidates.append(a + p[len(b):])
    for p in candidates:
        r = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            # "pkg:arch, pkg2: /path", after "diversion by pkg from/to: ..." lines.
            if r.returncode == 0 and not line.startswith("diversion by "):
                return line.split(":")[0].split(",")[0].strip()
    return None


def main():
    uses = {}
    for f in tracked_sources():
        for w in words_in(f):
            uses.setdefault(w, set()).add(f)
    wanted = deps_packages()
    base = base_packages()
    installed = dependency_closure(wanted | base)
    passed = failed = 0
    for word in sorted(uses):
        if word in SHELL_WORDS or word in ALLOWED:
            continue
        prog = shutil.which(word, path=SYSTEM_PATH)
        if not prog:
            continue
        pkg = owner(prog)
        where = ", ".join(sorted(uses[word])[:3])
        if pkg is None:
            print("unchecked: %s (%s) belongs to no Debian package; used in %s" % (word, prog, where))
            continue
        if pkg in installed:
            passed += 1
            continue
        failed += 1
        print("FAIL %s: %s comes from package %s, which is neither in scripts/deps.sh nor in "
              "Debian's base system; used in %s" % (word, prog, pkg, where))
    print("check-deps: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

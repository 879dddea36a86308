"""Compares a Prometheus text scrape with the traffic mix's ground truth, exactly.

usage: compare_metrics.py EXPECT.json SCRAPE.txt [FAMILY...]
With FAMILY names, only those families are compared. Every expected sample must be present with its exact value (floats to 1e-9). For each family the
ground truth lists as complete, every non-zero series of the scrape must be expected (nothing
counted that did not happen). Prints one line per check and a closing `N passed, N failed`."""
import json
import re
import sys

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise ValueError("unparseable line: %r" % line)
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def family_of(name):
    for suffix in ("_sum", "_count", "_bucket"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def compare(truth, got, families=None, quiet=False):
    """Returns (passed, failed), printing each check unless quiet."""
    say = (lambda *a: None) if quiet else print
    passed = failed = 0
    expected_keys = set()
    samples = [s for s in truth["samples"]
               if not families or family_of(s["name"]) in families]
    for s in samples:
        key = (s["name"], tuple(sorted(s["labels"].items())))
        expected_keys.add(key)
        have = got.get(key)
        ok = have is not None and abs(have - s["value"]) < 1e-9
        say("%s %s%s = %s (got %s)" % ("ok  " if ok else "FAIL", s["name"], s["labels"],
                                        s["value"], have))
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    complete = set(truth.get("complete", []))
    if families:
        complete &= set(families)
    for (name, labels), value in sorted(got.items()):
        if family_of(name) not in complete or name.endswith("_bucket") or value == 0:
            continue
        if (name, labels) not in expected_keys:
            say("FAIL unexpected %s%s = %s" % (name, dict(labels), value))
            failed += 1
    return passed, failed


def main(expect_path, scrape_path, families):
    passed, failed = compare(json.load(open(expect_path)), parse(open(scrape_path).read()),
                             families)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))

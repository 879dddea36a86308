"""`bizprobe rules test`: a rules file tried on a recording, without tracing anything.

The test writes the rules file and the recording (lines in the form `bizprobe trace --json
--bodies` prints, include/bizprobe/trace_format.h), so it knows exactly which events each line
must produce. No BPF, no privileges."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIZPROBE, SLOW, main  # noqa: E402

RULES = """\
version: 1
identity:
  - jwt_claim: sub
  - header: X-User-Id
user_type: {header: X-User-Type, values: [fan, creator]}
events:
  - name: registration
    metric: user_registrations_total
    when: {role: server, method: POST, route: /api/register, status: 2xx}
    labels:
      user_type: {request_json: role, values: [fan, creator]}
      method:    {request_json: registrationMethod, values: [email, google]}
      source:    {query: utm_source, max_values: 2}
  - name: content_view
    metric: content_views_total
    when: {role: server, method: GET, route: "/api/content/{id}", status: 200}
    labels:
      content_type: {response_json: type, values: [video, image]}
  - name: engagement
    metric: content_engagement_duration_seconds
    type: histogram
    buckets: [1, 5, 15, 60]
    value: {request_json: duration}
    when: {role: server, method: POST, route: "/api/content/{id}/engagement", status: 2xx}
  - name: checkout
    when: {role: client, method: POST, host: api.payments.example, route: /v1/charges}
    labels:
      plan: {request_form: plan, values: [basic, pro]}
"""

BASIC = {"ts": "2026-11-28T05:00:01.250000Z", "pid": 4242, "comm": "node", "role": "server",
         "tls": False, "host": "app.example", "duration_us": 1500, "truncated": False}
USER_ID = "u-4711-secret-id"


def rec(method, path, status, query="", req_headers=None, resp_headers=None, req_body="",
        resp_body="", **extra):
    """One recording line as trace_format_json_detail writes it, field for field; a field
    given as None is left out."""
    x = dict(BASIC)
    x.update({"method": method, "path": path, "status": status,
              "req_bytes": len((req_body or "").encode()),
              "resp_bytes": len((resp_body or "").encode())})
    x["truncated"] = False
    x.update({"query": query, "req_headers": req_headers or {},
              "resp_headers": resp_headers or {}, "req_body": req_body,
              "req_body_truncated": False, "resp_body": resp_body,
              "resp_body_truncated": False})
    x.update(extra)
    return json.dumps({k: v for k, v in x.items() if v is not None}, separators=(",", ":"))


JSON = {"Content-Type": "application/json"}


def register(role, how, source, **headers):
    h = dict(JSON)
    h.update(headers)
    body = json.dumps({"email": "[REDACTED_EMAIL]", "role": role, "registrationMethod": how})
    return rec("POST", "/api/register", 201, query="utm_source=%s&x=1" % source,
               req_headers=h, req_body=body, resp_body='{"ok":true}')


def event(line, method, path, name, metric, labels, value=None, user=False, user_type=None):
    return {"line": line, "method": method, "path": path, "event": name, "metric": metric,
            "labels": labels, "value": value, "user": user, "user_type": user_type}


REG = "direct_fan_user_registrations_total"
VIEW = "direct_fan_content_views_total"
ENG = "direct_fan_content_engagement_duration_seconds"


class RulesTestTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="bizprobe-rules-test-")
        self.rules = os.path.join(self.tmp.name, "rules.yaml")
        with open(self.rules, "w") as f:
            f.write(RULES)

    def tearDown(self):
        self.tmp.cleanup()

    def run_test(self, lines, *args, env=None, rules=None):
        text = lines if isinstance(lines, (bytes, str)) else "\n".join(lines) + "\n"
        if isinstance(text, str):
            text = text.encode()
        argv = [BIZPROBE, "rules", "test", "--rules", rules or self.rules] + list(args)
        p = subprocess.run(argv, input=text, capture_output=True, timeout=60 * SLOW,
                           env=dict(os.environ, **(env or {})))
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def events(self, out):
        return [json.loads(l) for l in out.splitlines()]

    def test_events_of_each_exchange(self):
        lines = [
            # 1: every label allow-listed, the requester from X-User-Id.
            register("fan", "email", "news", **{"X-User-Id": USER_ID, "X-User-Type": "fan"}),
            # 2: values outside the allow-lists; Authorization was redacted: no user.
            register("admin", "apple", "ads", Authorization="[REDACTED]"),
            # 3: a third distinct source over max_values 2; opted out: no user either.
            register("creator", "google", "tv", **{"X-User-Id": USER_ID, "Sec-GPC": "1",
                                                   "X-User-Type": "creator"}),
            # 4: a view, the type from the response.
            rec("GET", "/api/content/7", 200, resp_headers=JSON,
                resp_body='{"id":7,"type":"image","title":"caf\\u00e9 \\"quoted\\""}'),
            # 5: the 404 of an unknown id is no view.
            rec("GET", "/api/content/8", 404, resp_body='{"error":"not found"}'),
            # 6: a histogram's value from the request body.
            rec("POST", "/api/content/7/engagement", 204, req_headers=JSON,
                req_body='{"duration":12.5}'),
            # 7: the same route as a client: the rule is for the server role.
            rec("POST", "/api/register", 201, role="client", req_body='{"role":"fan"}'),
            # 8: a client call to another API, form body, matched on host and route.
            rec("POST", "/v1/charges", 200, role="client", host="api.payments.example",
                req_headers={"Content-Type": "application/x-www-form-urlencoded"},
                req_body="amount=1200&plan=pro"),
            # 9: the same on another host: no event.
            rec("POST", "/v1/charges", 200, role="client", host="api.other.example",
                req_body="plan=pro"),
        ]
        rc, out, err = self.run_test(lines)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.events(out), [
            event(1, "POST", "/api/register", "registration", REG,
                  {"user_type": "fan", "method": "email", "source": "news"},
                  user=True, user_type="fan"),
            event(2, "POST", "/api/register", "registration", REG,
                  {"user_type": "other", "method": "other", "source": "ads"}),
            event(3, "POST", "/api/register", "registration", REG,
                  {"user_type": "creator", "method": "google", "source": "other"},
                  user_type="creator"),
            event(4, "GET", "/api/content/7", "content_view", VIEW, {"content_type": "image"}),
            event(6, "POST", "/api/content/7/engagement", "engagement", ENG, {}, value=12.5),
            event(8, "POST", "/v1/charges", "checkout", None, {"plan": "pro"}),
        ])
        # The line itself, byte for byte: field order, null and booleans as JSON writes them.
        self.assertEqual(out.splitlines()[4],
                         '{"line":6,"method":"POST","path":"/api/content/7/engagement",'
                         '"event":"engagement","metric":"%s","labels":{},"value":12.5,'
                         '"user":false,"user_type":null}' % ENG)
        self.assertIn("9 exchanges read, 6 matched, 6 events; 0 bad lines", err)
        self.assertNotIn("no event had a user", err)
        # Never who: neither the id nor any pseudonym (64 hex digits) is printed.
        self.assertNotIn(USER_ID, out + err)
        self.assertIsNone(re.search(r"[0-9a-f]{64}", out + err))

    def test_namespace_prefixes_metrics(self):
        rc, out, _ = self.run_test([register("fan", "email", "news")], "--namespace", "shop")
        self.assertEqual(rc, 0)
        self.assertEqual([e["metric"] for e in self.events(out)],
                         ["shop_user_registrations_total"])

    def test_bad_lines_are_reported_counted_and_fail_the_run(self):
        good = rec("GET", "/api/content/1", 200, resp_body='{"type":"video"}')
        lines = [
            good,
            "not json",
            "",  # blank: nothing recorded, nothing wrong
            json.dumps({"role": "server", "path": "/x", "status": 200}),
            json.dumps({"role": "proxy", "method": "GET", "path": "/x", "status": 200}),
            json.dumps({"role": "server", "method": "GET", "path": "/x", "status": "200"}),
            json.dumps({"role": "server", "method": "GET", "path": "/x", "status": 200,
                        "req_headers": {"X-A": 1}}),
            json.dumps({"role": "server", "method": "GET", "path": "/x", "status": 200,
                        "tls": "yes"}),
            json.dumps({"role": "server", "method": "GET", "path": "/x", "status": 200,
                        "ts": "yesterday"}),
            "[1, 2]",
            good,
        ]
        rc, out, err = self.run_test(lines)
        self.assertEqual(rc, 1)
        self.assertEqual([e["line"] for e in self.events(out)], [1, 11])
        self.assertEqual([l for l in err.splitlines() if l.startswith("line ")], [
            "line 2: not one JSON object",
            "line 4: method: not a string of 1 to 15 characters",
            "line 5: role: not \"server\" or \"client\"",
            "line 6: status: not an integer from 100 to 999",
            "line 7: req_headers: not an object of header names and string values",
            "line 8: tls or truncated: not true or false",
            "line 9: ts: not an RFC 3339 UTC time (2026-01-02T03:04:05.000000Z)",
            "line 10: not one JSON object",
        ])
        self.assertIn("2 exchanges read, 2 matched, 2 events; 8 bad lines", err)

    def test_a_line_over_the_bound_is_skipped_not_fatal(self):
        big = rec("POST", "/api/content/1/engagement", 204,
                  req_body='{"duration":1,"pad":"%s"}' % ("x" * (4 << 20)))
        small = rec("POST", "/api/content/2/engagement", 204, req_body='{"duration":2}')
        rc, out, err = self.run_test([big, small])
        self.assertEqual(rc, 1)
        self.assertIn("line 1: longer than 4194304 bytes, skipped", err)
        self.assertEqual([(e["line"], e["value"]) for e in self.events(out)], [(2, 2)])

    def test_recording_without_bodies_still_matches_routes(self):
        plain = dict(BASIC, method="GET", path="/api/content/3", status=200, req_bytes=0,
                     resp_bytes=17)
        dropped = dict(plain, path="/api/content/4", detail_dropped=True)
        rc, out, err = self.run_test([json.dumps(plain), json.dumps(dropped)])
        self.assertEqual(rc, 0)
        # The type was in the body nobody recorded: the label is empty, the event still counts.
        self.assertEqual([(e["line"], e["labels"]) for e in self.events(out)],
                         [(1, {"content_type": ""}), (2, {"content_type": ""})])
        self.assertIn("line 1: no headers or bodies", err)
        self.assertNotIn("line 2:", err)
        self.assertIn("2 without headers or bodies", err)

    def test_binary_and_escaped_fields(self):
        lines = [
            # A binary body is absent: the rule's field is not read, the event still counts.
            rec("POST", "/api/content/5/engagement", 204, req_body=None,
                req_body_binary=True),
            # Escapes decode: the duration is read from a body with \n and \u escapes.
            rec("POST", "/api/content/6/engagement", 204,
                req_body='{\n  "duration" : 3e1,\n  "note": "\\u00e9\\n"\n}'),
        ]
        rc, out, err = self.run_test(lines)
        self.assertEqual(rc, 0, err)
        self.assertEqual([(e["line"], e["value"]) for e in self.events(out)],
                         [(1, None), (2, 30)])

    def test_no_user_is_said_once(self):
        rc, out, err = self.run_test([register("fan", "email", "a", Authorization="[REDACTED]"),
                                      register("fan", "email", "b")])
        self.assertEqual(rc, 0)
        self.assertEqual([e["user"] for e in self.events(out)], [False, False])
        self.assertEqual(err.count("no event had a user"), 1)

    def test_tracking_off_reads_no_identity(self):
        rc, out, err = self.run_test([register("fan", "email", "a", **{"X-User-Id": USER_ID})],
                                     env={"ENABLE_USER_TRACKING": "false"})
        self.assertEqual(rc, 0)
        self.assertEqual([e["user"] for e in self.events(out)], [False])
        self.assertIn("ENABLE_USER_TRACKING=false", err)

    def test_rules_file_with_errors_is_a_usage_error(self):
        bad = os.path.join(self.tmp.name, "bad.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\nevents:\n  - name: x\n    bogus: 1\n"
                    "    when: {route: /a}\n")
        rc, out, err = self.run_test([register("fan", "email", "a")], rules=bad)
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertRegex(err, r"(?m)^%s:4:5: " % re.escape(bad))

    def test_usage_errors(self):
        for argv in (["rules", "test"], ["rules", "test", "--rules"],
                     ["rules", "test", "--rules", self.rules, "extra"],
                     ["rules", "test", "--frobnicate"]):
            p = subprocess.run([BIZPROBE] + argv, input=b"", capture_output=True,
                               timeout=60 * SLOW)
            self.assertEqual(p.returncode, 2, argv)
            self.assertIn(b"usage: bizprobe rules test", p.stderr)
        p = subprocess.run([BIZPROBE, "rules", "test", "--rules",
                            os.path.join(self.tmp.name, "missing.yaml")],
                           input=b"", capture_output=True, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    sys.exit(main("test_rules_test"))

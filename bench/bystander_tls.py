#!/usr/bin/python3
"""The TLS bystander of the bench's bystander step: a client and a server that bizprobe does not
trace, both on the host's libssl (Debian's python3 links its _ssl module to libssl.so.3).

  bystander_tls.py serve PORT CERT KEY      HTTPS/1.1 keep-alive server; prints "listening"
  bystander_tls.py get PORT REQUESTS        that many GETs over one connection; prints seconds
"""
import http.client
import http.server
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body are two writes: without TCP_NODELAY each response waits for the
    # client's delayed ACK (40 ms), and the step would time that instead of TLS.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def serve(port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", flush=True)
    srv.serve_forever()


def get(port, requests):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    start = time.monotonic()
    for _ in range(requests):
        conn.request("GET", "/")
        resp = conn.getresponse()
        if resp.status != 200 or resp.read() != b"ok":
            sys.exit("bystander_tls: bad response")
    print(f"{time.monotonic() - start:.6f}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        get(int(sys.argv[2]), int(sys.argv[3]))

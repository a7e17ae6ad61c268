#!/usr/bin/env python3
"""A recording upstream for scripts/test-mesh.sh: answers every request with
200 and appends the request line, headers and body to a file, so that the
test can show what a route that is not Keycloak's received.

    recorder.py PORT FILE
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
FILE = sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def _record(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with open(FILE, "ab") as out:
            out.write(f"{self.command} {self.path}\n{self.headers}".encode())
            out.write(body + b"\n----\n")
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", "9")
        self.end_headers()
        self.wfile.write(b"recorded\n")

    do_GET = do_POST = _record

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

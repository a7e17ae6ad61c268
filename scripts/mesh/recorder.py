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
    def _body(self):
        # A body azp-bridge held comes without Content-Length (its default
        # header mode drops it), so Envoy forwards it chunked.
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self):
        body = self._body()
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

#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  tools.py render TEMPLATE OUT [EDIT] NAME=VALUE...
                                               fill ${NAME} placeholders (all must be given),
                                               after one optional edit of the HTTP filter
                                               named azp_bridge:
                                                 --remove-filter            drop it
                                                 --replace-filter SNIPPET   put SNIPPET's filter(s) there
                                                 --enable-filter            drop its `disabled: true`
  tools.py record PORT OUT.jsonl               an HTTP/1.1 upstream on 127.0.0.1 that
                                               answers 200 and records each request
  tools.py free-port                           print a free TCP port on 127.0.0.1
"""
import json
import re
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


FILTER = "azp_bridge"


def edit_filter(text, mode, snippet_path=None):
    """Edits the `- name: azp_bridge` item of the http_filters list, by its
    indentation; fails if the template no longer has exactly one."""
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() == f"- name: {FILTER}"]
    if len(starts) != 1:
        sys.exit(f"render: expected one '- name: {FILTER}' item, found {len(starts)}")
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    block = lines[start:end]
    if mode == "remove":
        new = []
    elif mode == "replace":
        snippet = [l for l in open(snippet_path, encoding="utf-8").read().split("\n")
                   if l.strip() and not l.startswith("#")]
        new = [" " * indent + l for l in snippet]
    elif mode == "enable":
        disabled = [i for i, l in enumerate(block) if l.strip() == "disabled: true"]
        if len(disabled) != 1:
            sys.exit(f"render: expected one 'disabled: true' in the {FILTER} filter, found {len(disabled)}")
        new = block[: disabled[0]] + block[disabled[0] + 1 :]
    else:
        sys.exit(f"render: unknown edit {mode}")
    return "\n".join(lines[:start] + new + lines[end:])


def render(template_path, out_path, args):
    text = open(template_path, encoding="utf-8").read()
    if args and args[0] == "--remove-filter":
        text, args = edit_filter(text, "remove"), args[1:]
    elif args and args[0] == "--enable-filter":
        text, args = edit_filter(text, "enable"), args[1:]
    elif args and args[0] == "--replace-filter":
        text, args = edit_filter(text, "replace", args[1]), args[2:]
    values = {}
    for a in args:
        name, _, value = a.partition("=")
        values[name] = value
    missing = sorted({m for m in re.findall(r"\$\{([A-Z_]+)\}", text) if m not in values})
    if missing:
        sys.exit(f"render: {template_path}: no value for {', '.join(missing)}")
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], text)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


def record(port, out_path):
    out = open(out_path, "a", encoding="utf-8")

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self):
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data, True
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("content-length", "0"))), False

        def _handle(self):
            body, chunked = self._body()
            entry = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "chunked": chunked,
                "body": body.decode("latin-1"),
            }
            out.write(json.dumps(entry) + "\n")
            out.flush()
            reply = b'{"recorded":true}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Recorder).serve_forever()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "render" and len(sys.argv) >= 4:
        render(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "record" and len(sys.argv) == 4:
        record(int(sys.argv[2]), sys.argv[3])
    elif cmd == "free-port":
        free_port()
    else:
        sys.exit(__doc__)

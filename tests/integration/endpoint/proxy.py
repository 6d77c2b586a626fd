"""A CONNECT-only HTTP proxy on 127.0.0.1 that tunnels to loopback
addresses only and logs each tunnel's target to STATE/log.jsonl.

    proxy.py --dir STATE      (writes STATE/port)"""
import argparse
import json
import os
import select
import socket
import socketserver
import sys

import loopback


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(4096).decode("latin-1")
        while True:
            h = self.rfile.readline(4096)
            if h in (b"\r\n", b"\n", b""):
                break
        parts = line.split()
        ok = len(parts) == 3 and parts[0] == "CONNECT"
        host, _, port = parts[1].rpartition(":") if ok else ("", "", "0")
        ok = ok and host in ("127.0.0.1", "localhost")
        with open(os.path.join(self.server.dir, "log.jsonl"), "a") as f:
            f.write(json.dumps({"request": line.strip(), "allowed": ok}) + "\n")
        if not ok:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            up = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        socks = [self.connection, up]
        while True:
            r, _, _ = select.select(socks, [], [], 30)
            if not r:
                break
            for s in r:
                data = s.recv(65536)
                if not data:
                    up.close()
                    return
                (up if s is self.connection else self.connection).sendall(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    loopback.serve(socketserver.TCPServer, Handler, a.dir,
                   setup=lambda srv: setattr(srv, "dir", a.dir))


if __name__ == "__main__":
    sys.exit(main())

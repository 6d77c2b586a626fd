"""A web-style service for trying cgprof: an HTTP server on 127.0.0.1 with
two endpoints, and a built-in client that loads it for SECONDS (default 5)
and then stops the server.

  /report  renders a JSON report (CPU: build_report -> render_json)
  /lookup  waits on a simulated database (idle: query_db sleeps 20 ms)

Profile it:  cgprof run -o web.svg -- python3 examples/python/web_service.py
CPU profile: handle_report/build_report dominate; query_db is absent.
With --idle: query_db appears as well, under the /lookup handler thread."""
import http.server
import json
import sys
import threading
import time
import urllib.request


def build_report(n):
    rows = []
    for i in range(n):
        rows.append({"id": i, "name": "item-%d" % i, "score": (i * 7919) % 1000 / 10.0})
    rows.sort(key=lambda r: r["score"])
    return {"count": n, "top": rows[:10], "mean": sum(r["score"] for r in rows) / n}


def render_json(obj):
    return json.dumps(obj, indent=1).encode()


def query_db(key):
    time.sleep(0.02)  # stands in for a network round trip
    return {"key": key, "value": len(key)}


class Handler(http.server.BaseHTTPRequestHandler):
    def handle_report(self):
        return render_json(build_report(3000))

    def handle_lookup(self):
        return render_json(query_db(self.path))

    def do_GET(self):
        body = self.handle_report() if self.path.startswith("/report") else self.handle_lookup()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def load(port, path, deadline, counts):
    while time.monotonic() < deadline:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path)) as r:
            r.read()
        counts[path] = counts.get(path, 0) + 1


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="http-server", daemon=True).start()
    deadline = time.monotonic() + seconds
    counts = {}
    clients = [threading.Thread(target=load, args=(port, p, deadline, counts), name="client" + p)
               for p in ("/report", "/lookup")]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    server.shutdown()
    print("web_service: served %s" % counts)


if __name__ == "__main__":
    main()

"""Loopback stand-ins for the credential sources cgprof may ask: the
container credentials endpoint and EC2 instance metadata (IMDSv2).
Plain HTTP on 127.0.0.1 only.

    metadata.py --dir STATE --access-key AK --secret SK [--token T]
                [--expires-in S] [--auth-token X] [--role NAME]

STATE/port  the port; STATE/log.jsonl one line per request (no secrets)."""
import argparse
import datetime
import http.server
import json
import os
import sys
import threading

import loopback

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
IMDS_TOKEN = "imds-session-token-for-tests"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log(self, status):
        a = self.server.args
        rec = {"method": self.command, "path": self.path, "status": status,
               "had_imds_token": self.headers.get(TOKEN_HEADER) == IMDS_TOKEN,
               "had_auth": self.headers.get("Authorization") == a.auth_token}
        with self.server.lock, open(os.path.join(a.dir, "log.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")

    def creds(self):
        a = self.server.args
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=a.expires_in)
        doc = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": a.access_key,
               "SecretAccessKey": a.secret, "Token": a.token,
               "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return json.dumps(doc).encode()

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get(TOKEN_TTL_HEADER):
            self.log(200)
            return self.reply(200, IMDS_TOKEN.encode())
        self.log(400)
        self.reply(400)

    def do_GET(self):
        a = self.server.args
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path.startswith("/latest/"):
            # IMDSv2 only: no token, no answer.
            if self.headers.get(TOKEN_HEADER) != IMDS_TOKEN:
                self.log(401)
                return self.reply(401)
            if self.path == base:
                self.log(200)
                return self.reply(200, a.role.encode())
            if self.path == base + a.role:
                self.log(200)
                return self.reply(200, self.creds(), "application/json")
            self.log(404)
            return self.reply(404)
        if self.path == "/creds":
            if a.auth_token and self.headers.get("Authorization") != a.auth_token:
                self.log(403)
                return self.reply(403)
            self.log(200)
            return self.reply(200, self.creds(), "application/json")
        self.log(404)
        self.reply(404)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--token", default="session-token-from-metadata")
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--auth-token", default="")
    ap.add_argument("--role", default="cgprof-test-role")
    a = ap.parse_args()

    def setup(srv):
        srv.args = a
        srv.lock = threading.Lock()
    loopback.serve(http.server.HTTPServer, Handler, a.dir, setup=setup)


if __name__ == "__main__":
    sys.exit(main())

"""A CodeGuru Profiler agent-API endpoint for tests: HTTPS on 127.0.0.1,
every request's SigV4 recomputed with botocore and its shape checked
against botocore's codeguruprofiler model; keeps what it received.

    server.py --dir STATE --cert C --key K --access-key AK --secret SK [--port N]

STATE/port      the port it listens on (written once listening)
STATE/log.jsonl one JSON line per request: op, status, error, token, ...
STATE/profiles/ each accepted PostAgentProfile body, TOKEN-N.json
STATE/control.json (read on every request, optional):
  {"configuration": {...AgentConfiguration...},
   "fail": {"status": 503, "type": "InternalServerException", "count": 2,
            "op": "PostAgentProfile",           # next `count` matching requests
            "retry_after": 2,                   # optional Retry-After header
            "location": "https://...",          # optional Location header (3xx)
            "hang": true},                      # send nothing, hold the connection
   "accept_body_bytes": N,                       # a 2xx reply to PostAgentProfile
                                                 # (the profile kept) with N bytes
   "clock_offset": 0}                            # the server's clock skew, s
"""
import argparse
import datetime
import hashlib
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

import loopback

SERVICE = "codeguru-profiler"
MODEL = ServiceModel(Loader().load_service_model("codeguruprofiler", "service-2"),
                     "codeguruprofiler")
DEFAULT_CONFIGURATION = {
    "shouldProfile": True,
    "periodInSeconds": 300,
    "agentParameters": {
        "SamplingIntervalInMilliseconds": "10",
        "ReportingIntervalInMilliseconds": "300000",
        "MinimumTimeForReportingInMilliseconds": "60000",
        "MemoryUsageLimitPercent": "10",
        "MaxStackDepth": "1000",
    },
}
# What botocore's own client signs for this service (checked in tests).
EXPECTED_SIGNED = {"content-type", "host", "x-amz-date"}


def uri_regex(template):
    parts = re.split(r"(\{[^}]+\})", template.split("?")[0])
    rx, names = "", []
    for p in parts:
        if p.startswith("{"):
            names.append(p[1:-1].rstrip("+"))
            rx += "([^/]+)"
        else:
            rx += re.escape(p)
    return re.compile("^" + rx + "$"), names


OPS = []
for name in MODEL.operation_names:
    op = MODEL.operation_model(name)
    rx, names = uri_regex(op.http["requestUri"])
    OPS.append((op, rx, names))


class State:
    def __init__(self, d, ak, sk, region):
        self.dir, self.ak, self.sk, self.region = d, ak, sk, region
        self.lock = threading.Lock()
        self.n = 0
        os.makedirs(os.path.join(d, "profiles"), exist_ok=True)

    def control(self):
        try:
            with open(os.path.join(self.dir, "control.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def take_failure(self, op):
        """Consume one scripted failure for op, if any."""
        path = os.path.join(self.dir, "control.json")
        ctl = self.control()
        fail = ctl.get("fail")
        if not fail or fail.get("count", 0) <= 0:
            return None
        if fail.get("op") and fail["op"] != op:
            return None
        fail["count"] -= 1
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ctl, f)
        os.replace(tmp, path)
        return fail

    def log(self, rec):
        with open(os.path.join(self.dir, "log.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-codeguru"

    def log_message(self, fmt, *args):
        pass

    def now(self):
        return time.time() + float(self.server.state.control().get("clock_offset", 0))

    def date_time_string(self, timestamp=None):
        return super().date_time_string(self.now())

    def reply(self, status, body=None, error_type=None, extra=()):
        data = b""
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type + ":http://internal.amazon.com/")
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, rec, status, etype, msg):
        rec.update(status=status, error=etype, message=msg)
        self.server.state.log(rec)
        self.reply(status, {"message": msg}, etype)

    def do_GET(self):
        self.do_POST()

    def do_PUT(self):
        self.do_POST()

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(self.path)
        rec = {"method": self.command, "path": url.path, "query": url.query,
               "time": time.time(), "len": len(body),
               "headers": {k.lower(): v for k, v in self.headers.items()
                           if k.lower() not in ("authorization", "x-amz-security-token")},
               "has_token": "x-amz-security-token" in {k.lower() for k in self.headers}}

        # 1. Which operation, per the model: method and URI template.
        op = params = None
        for o, rx, names in OPS:
            m = rx.match(url.path)
            if m and o.http["method"] == self.command:
                op = o
                params = dict(zip(names, [urllib.parse.unquote(g) for g in m.groups()]))
                break
        if op is None:
            return self.error(rec, 404, "UnknownOperationException", "no such operation")
        rec["op"] = op.name

        # 2. Signature, recomputed with botocore from what arrived.
        why = self.check_signature(body, rec)
        if why:
            return self.error(rec, 403, why[0], why[1])

        # 3. Shape: URI, query string, headers and body against the model.
        why = self.check_shape(op, params, url, body, rec)
        if why:
            return self.error(rec, 400, "ValidationException", why)

        # 4. Scripted failures.
        fail = st.take_failure(op.name)
        if fail:
            if fail.get("hang"):
                rec.update(status=0, error="hang")
                st.log(rec)
                time.sleep(3600)
                return None
            extra = []
            if "retry_after" in fail:
                extra.append(("Retry-After", str(fail["retry_after"])))
            if "location" in fail:
                extra.append(("Location", fail["location"]))
            status = int(fail.get("status", 500))
            rec.update(status=status, error=fail.get("type"), message=fail.get("message"))
            st.log(rec)
            if 300 <= status < 400:
                return self.reply(status, extra=extra)
            return self.reply(status, {"message": fail.get("message", "scripted failure")},
                              fail.get("type", "InternalServerException"), extra)

        if op.name == "ConfigureAgent":
            conf = st.control().get("configuration", DEFAULT_CONFIGURATION)
            rec.update(status=200, request=json.loads(body or b"{}"))
            st.log(rec)
            # The model's payload member: the body is the AgentConfiguration.
            return self.reply(200, conf)
        if op.name == "PostAgentProfile":
            with st.lock:
                st.n += 1
                fn = "%s-%d.json" % (rec["token"], st.n)
            with open(os.path.join(st.dir, "profiles", fn), "wb") as f:
                f.write(body)
            big = int(st.control().get("accept_body_bytes", 0))
            rec.update(status=200 if big else 204, file=fn, group=params.get("profilingGroupName"))
            st.log(rec)
            if big:
                return self.reply(200, b"x" * big)
            return self.reply(204)
        return self.error(rec, 400, "ValidationException", "operation not served here")

    def check_signature(self, body, rec):
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", auth)
        if not m:
            return ("MissingAuthenticationTokenException", "missing or malformed Authorization")
        ak, day, region, service, signed, sig = m.groups()
        rec["signed_headers"] = signed
        if ak != st.ak:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        if service != SERVICE or region != st.region:
            return ("InvalidSignatureException", "Credential should be scoped to a valid region/service")
        amz = self.headers.get("X-Amz-Date", "")
        try:
            t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return ("IncompleteSignatureException", "bad X-Amz-Date")
        if amz[:8] != day:
            return ("InvalidSignatureException", "date in credential scope does not match X-Amz-Date")
        names = signed.split(";")
        if set(names) - {"x-amz-security-token"} != EXPECTED_SIGNED or \
                ("x-amz-security-token" in names) != rec["has_token"]:
            return ("InvalidSignatureException", "signed headers differ from botocore's: " + signed)
        # Rebuild the request from the signed headers only and let
        # botocore sign it at the same instant with the real secret.
        headers = {}
        for h in names:
            v = self.headers.get_all(h)
            if v is None:
                return ("InvalidSignatureException", "signed header %s missing" % h)
            headers[h] = ",".join(v)
        token = self.headers.get("X-Amz-Security-Token")
        req = AWSRequest(method=self.command, url="https://" + headers["host"] + self.path,
                         data=body, headers=headers)
        req.context["timestamp"] = amz
        signer = SigV4Auth(Credentials(st.ak, st.sk, token), SERVICE, st.region)
        cr = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, cr), req)
        if want != sig:
            return ("InvalidSignatureException",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method.")
        now = self.now()
        if abs(now - t) > 300:
            return ("InvalidSignatureException",
                    "Signature expired: %s is now earlier than %s (%s - 5 min.)" % (
                        amz, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 300)),
                        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))))
        return None

    def check_shape(self, op, params, url, body, rec):
        shape = op.input_shape
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        values = dict(params)
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "querystring" and wire in q:
                values[name] = q[wire][0]
            elif loc == "header" and self.headers.get(wire) is not None:
                values[name] = self.headers.get(wire)
        known_q = {m.serialization.get("name", n) for n, m in shape.members.items()
                   if m.serialization.get("location") == "querystring"}
        if set(q) - known_q:
            return "unknown query parameters: %s" % sorted(set(q) - known_q)
        payload = shape.serialization.get("payload")
        if payload:
            values[payload] = body
        elif body:
            try:
                doc = json.loads(body)
            except ValueError:
                return "body is not JSON"
            for k, v in doc.items():
                if k not in shape.members or shape.members[k].serialization.get("location"):
                    return "unknown body member %s" % k
                values[k] = v
        # Idempotency tokens are filled by SDKs when absent; cgprof must
        # send its own so retries reuse it.
        for name, member in shape.members.items():
            if member.metadata.get("idempotencyToken") and name not in values:
                return "missing %s" % name
        report = ParamValidator().validate(values, shape)
        if report.has_errors():
            return report.generate_report()
        if op.name == "PostAgentProfile":
            rec["token"] = values["profileToken"]
            if values.get("contentType") != "application/json":
                return "Content-Type must be application/json"
            try:
                json.loads(body)
            except ValueError:
                return "agentProfile is not JSON"
        if op.name == "ConfigureAgent":
            md = json.loads(body or b"{}").get("metadata", {})
            enum = set(MODEL.shape_for("MetadataField").enum)
            if set(md) - enum:
                return "unknown metadata keys %s" % sorted(set(md) - enum)
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-tls", choices=["1.1", "1.2", "1.3"], default="1.3",
                    help="offer nothing newer (1.1: to see old TLS refused)")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.max_tls == "1.1":
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    elif a.max_tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def setup(srv):
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.state = State(a.dir, a.access_key, a.secret, a.region)
    loopback.serve(http.server.HTTPServer, Handler, a.dir, port=a.port, setup=setup)


if __name__ == "__main__":
    sys.exit(main())

"""Privacy (issue #10): a target keeps secret tokens in its argv, its
environment, a file it holds open (and that file's name), a function
argument and a local variable. Nothing cgprof produces may contain any of
them, in any form: no output format (collapsed, flame graph, speedscope,
pprof, CodeGuru JSON; with --threads, --idle, --subprocesses, --native),
no byte sent to the profiling endpoint (the raw decrypted HTTP requests,
headers included), no spooled batch (plaintext, or decrypted with the
spool key). Searched as raw bytes, UTF-16, hex and base64, inside gzip
too. And each of those outputs must name the workload's functions, so a
profile that is simply empty cannot pass."""
import base64
import gzip
import hashlib
import http.server
import json
import os
import secrets
import shutil
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

from cgtest import CGPROF, WORKLOADS, CgTestCase, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoint"))
import harness  # noqa: E402

PRIVACY = os.path.join(WORKLOADS, "privacy")
PY = "/usr/bin/python3"
GROUP = "cgprof-privacy"
AK, SK = "AKIDPRIVACYTEST", "privacy/test+secret"
FUNCS = ("process_payload", "handle_request")


def derive(token, purpose):
    """The workload's own derivation (secret_keeper.derive)."""
    return "cgs" + hashlib.sha256((token + ":" + purpose).encode()).hexdigest()[:32]


def forms(secret):
    """Byte patterns that would betray the secret: itself, UTF-16 (how
    CPython and Java may hold it), hex, and base64 at every alignment
    (the middle of an encoding does not depend on what precedes it)."""
    raw = secret.encode()
    out = {raw, secret.encode("utf-16-le"), raw.hex().encode(), raw.hex().upper().encode()}
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            b = enc(b"\0" * pad + raw + b"\0\0\0")
            # drop the characters touched by the padding at both ends
            out.add(b[4:-8])
    # A long-enough piece betrays it too: any 16-character window.
    for i in range(0, len(raw) - 16 + 1, 8):
        out.add(raw[i:i + 16])
    return out


def expand(blob):
    """blob and whatever is inside it: gzip members, JSON strings."""
    out = [blob]
    if blob[:2] == b"\x1f\x8b":
        try:
            out.append(gzip.decompress(blob))
        except (OSError, EOFError):
            pass
    return out


class Capture:
    """A CodeGuru agent-API endpoint on 127.0.0.1 that keeps every byte
    of every request as it arrived (after TLS), answers ConfigureAgent
    with 1-second windows and accepts every PostAgentProfile."""

    def __init__(self, pki):
        self.raw = []          # one bytes per connection, everything read
        self.bodies = []
        self.posts = 0
        cap = self

        class Tee:
            def __init__(self, f, sink):
                self.f, self.sink = f, sink

            def readline(self, *a):
                b = self.f.readline(*a)
                self.sink.append(b)
                return b

            def read(self, *a):
                b = self.f.read(*a)
                self.sink.append(b)
                return b

            def __getattr__(self, name):
                return getattr(self.f, name)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.sink = []
                cap.raw.append(self.sink)
                self.rfile = Tee(self.rfile, self.sink)

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                cap.bodies.append(body)
                if "/configureAgent" in self.path:
                    data = json.dumps({"shouldProfile": True, "periodInSeconds": 1,
                                       "agentParameters": {
                                           "SamplingIntervalInMilliseconds": "10",
                                           "ReportingIntervalInMilliseconds": "1000",
                                           "MinimumTimeForReportingInMilliseconds": "500",
                                           "MaxStackDepth": "1000"}}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    cap.posts += 1
                    data = b""
                    self.send_response(204)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_GET = do_POST

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.srv = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["cert"], pki["key"])
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def blobs(self):
        return [b"".join(s) for s in self.raw] + self.bodies


class Privacy(CgTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cgprof-privacy-")
        cls.token = "cgs" + secrets.token_hex(16)
        env_secret = "cgs" + secrets.token_hex(16)
        file_secret = "cgs" + secrets.token_hex(16)
        name_secret = "cgs" + secrets.token_hex(16)
        cls.secrets = {"argv": cls.token, "environment": env_secret, "file content": file_secret,
                       "file name": name_secret, "argument": derive(cls.token, "arg"),
                       "local": derive(cls.token, "local")}
        cls.secret_file = os.path.join(cls.tmp, name_secret + ".txt")
        with open(cls.secret_file, "w") as f:
            f.write("secret=%s\n" % file_secret)
        cls.env = dict(os.environ, CG_SECRET_ENV=env_secret, CG_SECRET_FILE=cls.secret_file)
        cls.patterns = {(what, p) for what, s in cls.secrets.items() for p in forms(s)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def argv(self, seconds=2.0):
        # Run from its directory, so the command line is short and the
        # token sits early in it (cgprof keeps ~100 bytes of it).
        return [PY, "secret_keeper.py", "--token", self.token, str(seconds)]

    def assert_clean(self, label, blob):
        for part in expand(blob):
            for what, p in self.patterns:
                at = part.find(p)
                if at >= 0:
                    self.fail("%s: the %s secret leaks (as %r): ...%r..."
                              % (label, what, p, part[max(0, at - 80):at + 40]))

    def assert_names_workload(self, label, blob):
        text = b"".join(expand(blob))
        for fn in FUNCS:
            self.assertIn(fn.encode(), text, "%s: the profile does not show %s" % (label, fn))

    def run_cgprof(self, args, label):
        r = run([CGPROF] + args, env=self.env, cwd=PRIVACY, timeout=120)
        self.assertEqual(r.returncode, 0, "%s: %s" % (label, r.stderr))
        # What cgprof prints is output too (and may land in a log).
        self.assert_clean(label + " (stderr)", r.stderr.encode())
        return r

    def test_the_workload_really_holds_the_secrets(self):
        """Ground truth for everything below: while it runs, the target's
        argv, environment, open files and memory do contain each secret."""
        p = self.spawn(self.argv(3.0), env=self.env, cwd=PRIVACY)
        import time
        time.sleep(1.0)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            self.assertIn(self.token.encode(), f.read())
        with open("/proc/%d/environ" % p.pid, "rb") as f:
            self.assertIn(self.secrets["environment"].encode(), f.read())
        fds = [os.readlink("/proc/%d/fd/%s" % (p.pid, fd)) for fd in os.listdir("/proc/%d/fd" % p.pid)]
        self.assertIn(self.secret_file, fds)
        # Every secret lies in the target's readable memory.
        mem = bytearray()
        with open("/proc/%d/maps" % p.pid) as maps, open("/proc/%d/mem" % p.pid, "rb") as m:
            for line in maps:
                addr, perms = line.split()[:2]
                if not perms.startswith("r") or "[vvar]" in line or "[vsyscall]" in line:
                    continue
                lo, hi = (int(x, 16) for x in addr.split("-"))
                try:
                    m.seek(lo)
                    mem += m.read(hi - lo)
                except OSError:
                    pass
        for what, s in self.secrets.items():
            self.assertIn(s.encode(), mem, "the workload does not hold its %s secret" % what)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(out, "ok\n")

    def test_every_output_format(self):
        cases = [
            ("collapsed", "p.txt", ["--idle", "--threads"]),
            ("flamegraph", "p.svg", ["--idle", "--threads"]),
            ("speedscope", "p.speedscope.json", ["--idle", "--threads"]),
            ("pprof", "p.pb.gz", ["--idle", "--threads"]),
            ("codeguru", "p.json", ["--idle", "--threads"]),
            ("collapsed", "sub.txt", ["--subprocesses", "--threads"]),
            ("flamegraph", "sub.svg", ["--subprocesses"]),
            ("speedscope", "sub.speedscope.json", ["--subprocesses"]),
            ("pprof", "sub.pb.gz", ["--subprocesses"]),
            ("codeguru", "sub.json", ["--subprocesses"]),
            ("collapsed", "native.txt", ["--native"]),
            ("flamegraph", "native.svg", ["--native", "--threads"]),
        ]
        for fmt, name, opts in cases:
            label = "%s %s" % (fmt, " ".join(opts))
            with self.subTest(label):
                out = os.path.join(self.tmp, name)
                self.run_cgprof(["run", "-r", "200", "-f", fmt, "-o", out] + opts + ["--"]
                                + self.argv(1.5), label)
                with open(out, "rb") as f:
                    blob = f.read()
                self.assert_names_workload(label, blob)
                self.assert_clean(label, blob)

    def test_java(self):
        """The same for a JVM: token in argv and environment, derived
        values as a local and an argument of the hot method."""
        if not shutil.which("javac") or not shutil.which("java"):
            self.skipTest("no JDK")
        classes = os.path.join(self.tmp, "classes")
        subprocess.run(["javac", "-d", classes, os.path.join(PRIVACY, "SecretKeeper.java")],
                       check=True, timeout=180)
        for fmt, name in (("flamegraph", "j.svg"), ("speedscope", "j.speedscope.json"),
                          ("pprof", "j.pb.gz"), ("collapsed", "j.txt")):
            with self.subTest(fmt):
                out = os.path.join(self.tmp, name)
                opts = ["--subprocesses"] if fmt == "collapsed" else ["--idle", "--threads"]
                r = self.run_cgprof(["run", "-f", fmt, "-o", out] + opts + [
                    "--", "java", "-cp", classes, "SecretKeeper", "--token", self.token, "2.5"],
                    "java " + fmt)
                self.assertEqual(r.stdout, "ok\n")
                with open(out, "rb") as f:
                    blob = f.read()
                text = b"".join(expand(blob))
                self.assertIn(b"SecretKeeper.processPayload", text, fmt)
                self.assert_clean("java " + fmt, blob)

    def test_attach_and_dump(self):
        p = self.spawn(self.argv(4.0), env=self.env, cwd=PRIVACY)
        import time
        time.sleep(0.5)
        out = os.path.join(self.tmp, "attach.svg")
        self.run_cgprof(["attach", "-d", "1.5", "--idle", "--threads", "-o", out, str(p.pid)],
                        "attach")
        with open(out, "rb") as f:
            blob = f.read()
        self.assert_names_workload("attach", blob)
        self.assert_clean("attach", blob)
        r = self.run_cgprof(["dump", str(p.pid)], "dump")
        self.assert_names_workload("dump", r.stdout.encode())
        self.assert_clean("dump", r.stdout.encode())
        out, _ = p.communicate(timeout=60)
        self.assertEqual(out, "ok\n")

    def test_upload_and_spool(self):
        pki = harness.make_pki(os.path.join(self.tmp, "pki"))
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        env = harness.clean_env(home, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK,
                                CG_SECRET_ENV=self.secrets["environment"],
                                CG_SECRET_FILE=self.secret_file)
        ep = Capture(pki)
        try:
            spool = os.path.join(self.tmp, "spool-upload")
            r = run([CGPROF, "run", "--idle", "--threads", "--profiling-group", GROUP,
                     "--region", "us-east-1", "--endpoint", ep.url, "--ca-file", pki["ca"],
                     "--spool", spool, "--reporting-interval", "1", "--"] + self.argv(3.5),
                    env=env, cwd=PRIVACY, timeout=120)
        finally:
            ep.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_clean("upload run (stderr)", r.stderr.encode())
        self.assertGreaterEqual(ep.posts, 2, r.stderr)
        sent = ep.blobs()
        self.assert_names_workload("uploaded profiles", b"".join(sent))
        for i, blob in enumerate(sent):
            self.assert_clean("request %d to the endpoint" % i, blob)

        # The spool: a plaintext one, and one sealed with a key (decrypted
        # here with that key: the plaintext inside must be clean too).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        key = os.path.join(self.tmp, "spool.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        for label, extra in (("plain spool", []), ("encrypted spool", ["--spool-key", key])):
            spool = os.path.join(self.tmp, label.replace(" ", "-"))
            r = run([CGPROF, "run", "--idle", "--threads", "--profiling-group", GROUP,
                     "--region", "us-east-1", "--no-upload", "--spool", spool,
                     "--reporting-interval", "1"] + extra + ["--"] + self.argv(3.0),
                    env=env, cwd=PRIVACY, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assert_clean(label + " (stderr)", r.stderr.encode())
            batches = sorted(n for n in os.listdir(spool) if n.endswith(".batch"))
            self.assertTrue(batches, "%s: nothing spooled: %s" % (label, r.stderr))
            bodies = []
            for name in batches:
                with open(os.path.join(spool, name), "rb") as f:
                    blob = f.read()
                self.assert_clean("%s %s" % (label, name), blob)
                head, _, body = blob.partition(b"\n\n")
                if extra:
                    self.assertIn(b"encrypted: 1", head)
                    # format 2 seals the whole header (every field) and the id
                    aad = head + b"\n\n\0" + name[:-len(".batch")].encode()
                    body = AESGCM(open(key, "rb").read()).decrypt(body[:12], body[12:], aad)
                bodies.append(body)
                self.assert_clean("%s %s (decrypted)" % (label, name), body)
            self.assert_names_workload(label, b"".join(bodies))


if __name__ == "__main__":
    unittest.main()

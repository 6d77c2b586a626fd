"""Uploading to a loopback profiling-group endpoint that verifies every
signature with botocore: what arrives, what is refused and said clearly,
what is retried (with the same profile token) and what is not.

Most tests drive the uploader through build/tests/unit/test_upload (the
driver mode of the unit-test binary); the end-to-end ones run
`cgprof run --profiling-group ...` when this build's CLI supports it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from cgtest import BUILD, CGPROF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoint"))
import harness  # noqa: E402

DRIVER = os.path.join(BUILD, "tests", "unit", "test_upload")
AK = "AKIDCGPROFTEST"
SECRET = "cgprof/test+secret/Do-Not-Print-Me"
GROUP = "cgprof-test_group"
BODY = b'{"start":1764000000000,"end":1764000060000,"agentMetadata":{},"callgraph":{}}'


def have_tools():
    if not os.access(DRIVER, os.X_OK):
        return "%s not built (make unit-bin)" % DRIVER
    if not shutil.which("openssl"):
        return "openssl CLI missing"
    try:
        import botocore  # noqa: F401
    except ImportError:
        return "python3-botocore missing"
    return None


class UploadBase(unittest.TestCase):
    pki = None
    tmp = None

    @classmethod
    def setUpClass(cls):
        why = have_tools()
        if why:
            raise unittest.SkipTest(why)
        cls.tmp = tempfile.mkdtemp(prefix="cgprof-upload-")
        cls.pki = harness.make_pki(os.path.join(cls.tmp, "pki"))
        cls.other = harness.make_pki(os.path.join(cls.tmp, "pki-other"), "other")

    @classmethod
    def tearDownClass(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        self.ep = harness.Endpoint(os.path.join(self.dir, "ep"), self.pki, AK, SECRET).start()
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.body = os.path.join(self.dir, "body.json")
        with open(self.body, "wb") as f:
            f.write(BODY)
        self.env = harness.clean_env(self.home, AWS_ACCESS_KEY_ID=AK,
                                     AWS_SECRET_ACCESS_KEY=SECRET)

    def tearDown(self):
        self.ep.stop()

    def drive(self, *args, env=None, ca=True, endpoint=True, timeout=60):
        cmd = [DRIVER, "--group", GROUP, "--region", "us-east-1", "--retries", "3"]
        if endpoint:
            cmd += ["--endpoint", self.ep.url]
        if ca:
            cmd += ["--ca-file", self.pki["ca"]]
        return subprocess.run(cmd + list(args), env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def posts(self):
        return [l for l in self.ep.log() if l.get("op") == "PostAgentProfile"]


class Listener:
    """A plain TCP listener on 127.0.0.1 that records every byte it is
    sent: where a request must never go (plain HTTP, an injected host)."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.settimeout(2)
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    self.received += d
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


class Upload(UploadBase):
    def test_profile_arrives_signed_as_botocore_signs(self):
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)
        [rec] = self.posts()
        self.assertEqual(rec["status"], 204)
        self.assertEqual(rec["signed_headers"], "content-type;host;x-amz-date")
        self.assertEqual(rec["headers"]["content-type"], "application/json")
        self.assertNotIn("x-amz-content-sha256", rec["headers"])
        with open(os.path.join(self.ep.dir, "profiles", rec["file"]), "rb") as f:
            self.assertEqual(f.read(), BODY)
        self.assertEqual(r.stdout.split()[1], rec["token"])

    def test_session_token_signed(self):
        env = dict(self.env, AWS_SESSION_TOKEN="FwoGZXIvYXdzEXAMPLEtoken//+=")
        r = self.drive("post", self.body, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        [rec] = self.posts()
        self.assertEqual(rec["signed_headers"], "content-type;host;x-amz-date;x-amz-security-token")

    def test_configure_agent_parameters(self):
        conf = {"shouldProfile": False, "periodInSeconds": 42,
                "agentParameters": {"SamplingIntervalInMilliseconds": "25",
                                    "ReportingIntervalInMilliseconds": "120000",
                                    "MinimumTimeForReportingInMilliseconds": "30000",
                                    "MemoryUsageLimitPercent": "5",
                                    "MaxStackDepth": "321"}}
        self.ep.control(configuration=conf)
        r = self.drive("configure")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual(p, {"should_profile": False, "sampling_interval_ms": 25,
                             "reporting_interval_s": 120, "min_reporting_s": 30,
                             "memory_limit_percent": 5, "max_stack_depth": 321,
                             "period_s": 42})
        [rec] = [l for l in self.ep.log() if l.get("op") == "ConfigureAgent"]
        self.assertIn("fleetInstanceId", rec["request"])

    def test_later_configure_is_asynchronous(self):
        go = os.path.join(self.dir, "go")
        cmd = [DRIVER, "--group", GROUP, "--region", "us-east-1", "--endpoint", self.ep.url,
               "--ca-file", self.pki["ca"], "reconfigure", go]
        p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        deadline = time.monotonic() + 20
        while not [l for l in self.ep.log() if l.get("op") == "ConfigureAgent"]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.ep.control(configuration={"shouldProfile": False, "periodInSeconds": 60})
        open(go, "w").close()
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        # Paused only once the worker's reply came back, never before.
        self.assertEqual(out.split(), ["1", "1", "0"])

    def test_wrong_secret_clear_error_not_retried(self):
        env = dict(self.env, AWS_SECRET_ACCESS_KEY="not-the-secret")
        r = self.drive("post", self.body, env=env)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("refused the credentials", r.stderr)
        self.assertIn("InvalidSignatureException", r.stderr)
        self.assertNotIn("not-the-secret", r.stderr + r.stdout)
        self.assertEqual(len(self.posts()), 1)

    def test_clock_skew_reported(self):
        self.ep.control(clock_offset=3600)
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("clock skew", r.stderr)
        self.assertRegex(r.stderr, r"-3[56]\d\ds off")
        self.assertEqual(len(self.posts()), 1)

    def test_unknown_ca_refused(self):
        r = self.drive("post", self.body, ca=False)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("TLS verification refused", r.stderr)
        self.assertEqual(self.posts(), [])
        # Another CA's bundle does not help either.
        r = self.drive("--ca-file", self.other["ca"], "post", self.body, ca=False)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertEqual(self.posts(), [])

    def test_tls_minimum_1_2(self):
        for ver, want in (("1.1", 77), ("1.2", 0)):
            ep = harness.Endpoint(os.path.join(self.dir, "ep" + ver), self.pki, AK, SECRET,
                                  max_tls=ver).start()
            try:
                cmd = [DRIVER, "--group", GROUP, "--region", "us-east-1", "--endpoint", ep.url,
                       "--ca-file", self.pki["ca"], "post", self.body]
                r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, want, r.stderr)
                if want:
                    self.assertIn("TLS 1.2", r.stderr)
                    self.assertEqual([l for l in ep.log() if l.get("op")], [])
            finally:
                ep.stop()

    def test_aws_ca_bundle(self):
        env = dict(self.env, AWS_CA_BUNDLE=self.pki["ca"])
        r = self.drive("post", self.body, env=env, ca=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_pin(self):
        bad = self.other["pin"]
        r = self.drive("--pin-sha256", bad, "post", self.body)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("pin", r.stderr)
        self.assertEqual(self.posts(), [])
        r = self.drive("--pin-sha256", self.pki["pin"], "post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.drive("--pin-sha256", "sha256//" + self.pki["pin"], "post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_endpoint_from_environment(self):
        env = dict(self.env, AWS_ENDPOINT_URL_CODEGURUPROFILER=self.ep.url,
                   AWS_ENDPOINT_URL="https://127.0.0.1:1")
        r = self.drive("post", self.body, env=env, endpoint=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_5xx_retried_with_same_token(self):
        self.ep.control(fail={"status": 503, "type": "InternalServerException", "count": 2,
                              "op": "PostAgentProfile"})
        r = self.drive("post", self.body, "0f8fad5b-d9cb-469f-a165-70867728950e")
        self.assertEqual(r.returncode, 0, r.stderr)
        posts = self.posts()
        self.assertEqual([p["status"] for p in posts], [503, 503, 204])
        self.assertEqual({p["token"] for p in posts}, {"0f8fad5b-d9cb-469f-a165-70867728950e"})
        self.assertEqual(len(self.ep.profiles()), 1)

    def test_throttling_retried_then_gives_up_as_retry_later(self):
        self.ep.control(fail={"status": 429, "type": "ThrottlingException", "count": 1})
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.ep.control(fail={"status": 429, "type": "ThrottlingException", "count": 10})
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("ThrottlingException", r.stderr)
        self.assertEqual(len(self.posts()), 2 + 3)

    def test_validation_error_not_retried(self):
        self.ep.control(fail={"status": 400, "type": "ValidationException", "count": 5,
                              "message": "profile too large"})
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("profile too large", r.stderr)
        self.assertEqual(len(self.posts()), 1)

    def test_endpoint_down_is_retry_later(self):
        self.ep.stop()
        t0 = time.monotonic()
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertLess(time.monotonic() - t0, 20)
        self.ep.start()
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_https_proxy_and_no_proxy(self):
        px = harness.Proxy(os.path.join(self.dir, "proxy"))
        try:
            env = dict(self.env, HTTPS_PROXY="http://127.0.0.1:%d" % px.port, NO_PROXY="")
            r = self.drive("post", self.body, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([l["request"].split()[:2] for l in px.log()],
                             [["CONNECT", "127.0.0.1:%d" % self.ep.port]])
            # NO_PROXY wins: straight to the endpoint, the proxy unused.
            env = dict(env, NO_PROXY="127.0.0.1")
            r = self.drive("post", self.body, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(px.log()), 1)
            self.assertEqual(len(self.posts()), 2)
        finally:
            px.stop()

    def test_expired_token_refreshes_and_retries(self):
        self.ep.control(fail={"status": 403, "type": "ExpiredTokenException", "count": 1,
                              "message": "The security token included in the request is expired"})
        env = dict(self.env, AWS_SESSION_TOKEN="tok")
        r = self.drive("--retries", "1", "post", self.body, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([p["status"] for p in self.posts()], [403, 204])

    def test_no_secret_in_debug_output(self):
        env = dict(self.env, CGPROF_DEBUG="1", AWS_SESSION_TOKEN="TOKEN-NEVER-SHOWN")
        r = self.drive("configure", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        r2 = self.drive("post", self.body, env=env)
        for out in (r.stdout, r.stderr, r2.stdout, r2.stderr):
            self.assertNotIn(SECRET, out)
            self.assertNotIn("TOKEN-NEVER-SHOWN", out)


class Reporter(UploadBase):
    """reporter_submit's rules, through the driver's `submit`."""

    def submit(self, window_ms, samples, *opts, env=None):
        return self.drive(*opts, "submit", self.body, str(window_ms), str(samples), env=env)

    def test_window_posted_by_worker(self):
        r = self.submit(300000, 10)
        self.assertEqual(r.returncode, 0, r.stderr)
        [rec] = self.posts()
        self.assertEqual(rec["status"], 204)

    def test_empty_and_short_windows_not_sent(self):
        self.assertEqual(self.submit(300000, 0).returncode, 0)
        self.assertEqual(self.submit(59000, 10).returncode, 0)
        self.assertEqual(self.posts(), [])
        # The minimum comes from ConfigureAgent.
        self.ep.control(configuration={"shouldProfile": True, "periodInSeconds": 60,
                                       "agentParameters": {
                                           "MinimumTimeForReportingInMilliseconds": "1000"}})
        self.assertEqual(self.submit(5000, 10).returncode, 0)
        self.assertEqual(len(self.posts()), 1)

    def test_wrong_secret_reported_once_across_windows(self):
        env = dict(self.env, AWS_SECRET_ACCESS_KEY="not-the-secret")
        r = self.drive("--spool", os.path.join(self.dir, "spool"), "submit", self.body,
                       "300000", "10", "3", env=env)
        self.assertEqual(r.stderr.count("refused the credentials"), 1, r.stderr)
        self.assertEqual(len(self.posts()), 3)  # each window tried once, none retried
        self.assertNotIn("not-the-secret", r.stderr)

    def test_window_refused_by_endpoint_is_set_aside_not_resent(self):
        spool = os.path.join(self.dir, "spool")
        self.ep.control(fail={"status": 400, "type": "ValidationException", "count": 1,
                              "message": "profile too large", "op": "PostAgentProfile"})
        r = self.submit(300000, 10, "--spool", spool)
        self.assertIn("profile too large", r.stderr)
        self.assertEqual([f for f in os.listdir(spool) if f.endswith(".batch")], [],
                         "a refused window waits to be sent again")
        self.assertEqual(len(os.listdir(os.path.join(spool, "refused"))), 1)
        r = self.drive("--spool", spool, "drain")
        self.assertEqual(json.loads(r.stdout)["sent"], 0)
        self.assertEqual(len(self.posts()), 1)

    def test_failure_goes_to_spool(self):
        self.ep.stop()
        spool = os.path.join(self.dir, "spool")
        r = self.submit(300000, 10, "--spool", spool)
        self.assertIn("goes to the spool", r.stderr)
        self.assertTrue([f for f in os.listdir(spool) if f.endswith(".batch")])

    def test_endpoint_down_then_back_loses_nothing(self):
        spool = os.path.join(self.dir, "spool")
        self.ep.stop()
        for _ in range(3):
            self.submit(300000, 10, "--spool", spool)
        r = self.drive("--spool", spool, "drain")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertEqual(json.loads(r.stdout)["left"], 3)
        self.ep.start()
        self.ep.control(fail={"status": 503, "count": 1})
        r = self.drive("--spool", spool, "drain")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"sent": 3, "left": 0, "refused": 0})
        ok = [p for p in self.posts() if p["status"] == 204]
        self.assertEqual(len(ok), 3)
        self.assertEqual(len({p["token"] for p in ok}), 3)
        # Nothing left: a second drain sends nothing twice.
        r = self.drive("--spool", spool, "drain")
        self.assertEqual(json.loads(r.stdout)["sent"], 0)

    def test_drain_with_wrong_secret_is_configuration_error(self):
        spool = os.path.join(self.dir, "spool")
        self.submit(300000, 10, "--spool", spool, "--no-upload")
        env = dict(self.env, AWS_SECRET_ACCESS_KEY="wrong")
        r = self.drive("--spool", spool, "drain", env=env)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("refused the credentials", r.stderr)
        r = self.drive("--spool", spool, "drain")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["sent"], 1)




class Leaks(UploadBase):
    """Nothing signed goes anywhere but an https endpoint of our choosing."""

    def test_plain_http_endpoint_from_environment_refused(self):
        lis = Listener()
        try:
            for var in ("AWS_ENDPOINT_URL_CODEGURUPROFILER", "AWS_ENDPOINT_URL"):
                env = dict(self.env, AWS_SESSION_TOKEN="TOKEN-NEVER-IN-CLEAR")
                env[var] = "http://127.0.0.1:%d" % lis.port
                r = self.drive("post", self.body, env=env, endpoint=False)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn(var, r.stderr)
                self.assertIn("https", r.stderr)
                rc = subprocess.run([CGPROF, "upload", "--spool", os.path.join(self.dir, "s"),
                                     "--profiling-group", GROUP, "--region", "us-east-1"],
                                    env=env, capture_output=True, text=True, timeout=60)
                self.assertEqual(rc.returncode, 78, rc.stderr)
            time.sleep(0.3)
            self.assertEqual(lis.connections, 0, lis.received[:200])
        finally:
            lis.close()

    def test_redirect_to_http_not_followed_and_said(self):
        lis = Listener()
        try:
            self.ep.control(fail={"status": 307, "count": 5,
                                  "location": "http://127.0.0.1:%d/x" % lis.port})
            r = self.drive("post", self.body)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("HTTP 307, a redirect to http://127.0.0.1:%d/x" % lis.port, r.stderr)
            self.assertNotIn("307 )", r.stderr)
            self.assertEqual(len(self.posts()), 1)
            time.sleep(0.3)
            self.assertEqual(lis.connections, 0)
        finally:
            lis.close()

    def test_region_is_validated_before_any_url(self):
        lis = Listener()
        try:
            bad = "x@127.0.0.1:%d?" % lis.port
            # the CLI option, the environment, and the library itself
            r = subprocess.run([CGPROF, "upload", "--spool", os.path.join(self.dir, "s"),
                                "--profiling-group", GROUP, "--region", bad],
                               env=self.env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("region", r.stderr)
            env = dict(self.env, AWS_REGION=bad)
            r = subprocess.run([CGPROF, "upload", "--spool", os.path.join(self.dir, "s2"),
                                "--profiling-group", GROUP], env=env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("region", r.stderr)
            cmd = [DRIVER, "--group", GROUP, "--region", bad, "post", self.body]
            r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("region", r.stderr)
            time.sleep(0.3)
            self.assertEqual(lis.connections, 0, lis.received[:200])
        finally:
            lis.close()

    def config_upload(self, conf):
        os.makedirs(os.path.join(self.dir, "spool"), mode=0o700, exist_ok=True)
        return subprocess.run([CGPROF, "upload", "--config", conf, "--spool",
                               os.path.join(self.dir, "spool"), "--profiling-group", GROUP,
                               "--region", "us-east-1"],
                              env=self.env, capture_output=True, text=True, timeout=60)

    def test_config_file_others_can_write_is_refused(self):
        cdir = os.path.join(self.dir, "conf")
        os.makedirs(cdir, mode=0o755)
        os.chmod(cdir, 0o755)
        conf = os.path.join(cdir, "cgprof.conf")
        with open(conf, "w") as f:
            f.write("endpoint = %s\nca_file = %s\n" % (self.ep.url, self.pki["ca"]))
        os.chmod(conf, 0o644)
        # a safe file is used: nothing spooled, nothing to send, exit 0
        r = self.config_upload(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        os.chmod(conf, 0o666)
        r = self.config_upload(conf)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("writable by group or others", r.stderr)
        os.chmod(conf, 0o644)
        os.chmod(cdir, 0o777)
        r = self.config_upload(conf)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("directory %s is writable" % cdir, r.stderr)
        os.chmod(cdir, 0o755)
        if os.geteuid() == 0:
            os.chown(conf, 65534, 65534)
            r = self.config_upload(conf)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("owned by uid 65534", r.stderr)


class Replies(UploadBase):
    """Misbehaving replies: bounded, said plainly, an acceptance never
    taken for a failure."""

    def test_accepted_with_huge_body_is_not_posted_again(self):
        self.ep.control(accept_body_bytes=50 * 1024 * 1024)
        t0 = time.monotonic()
        r = self.drive("post", self.body)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.posts()), 1, "an accepted profile was posted again")
        self.assertEqual(len(self.ep.profiles()), 1)
        # 50 MB over loopback TLS takes seconds; the cut-off reply does not
        self.assertLess(took, 5, r.stderr)

    def test_expired_certificate_said_as_such(self):
        expired = harness.make_expired_server(os.path.join(self.dir, "exp"), self.pki)
        ep = harness.Endpoint(os.path.join(self.dir, "ep-exp"), expired, AK, SECRET).start()
        try:
            cmd = [DRIVER, "--group", GROUP, "--region", "us-east-1", "--endpoint", ep.url,
                   "--ca-file", self.pki["ca"], "post", self.body]
            r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 77, r.stderr)
            self.assertIn("certificate has expired", r.stderr)
            self.assertNotIn("unknown CA", r.stderr)
            self.assertEqual([l for l in ep.log() if l.get("op")], [])
        finally:
            ep.stop()
        # and another CA is still said to be that
        r = self.drive("--ca-file", self.other["ca"], "post", self.body, ca=False)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("unknown CA", r.stderr)

    def test_dead_proxy_is_named(self):
        import socket
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # bound, never listening: refused, and ours
        port = dead.getsockname()[1]
        try:
            env = dict(self.env, HTTPS_PROXY="http://127.0.0.1:%d" % port, NO_PROXY="")
            r = self.drive("--retries", "1", "post", self.body, env=env)
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertIn("(through proxy http://127.0.0.1:%d)" % port, r.stderr)
            self.assertEqual(self.posts(), [])
        finally:
            dead.close()

    def test_retry_after_is_honoured(self):
        self.ep.control(fail={"status": 429, "type": "ThrottlingException", "count": 1,
                              "retry_after": 2, "op": "PostAgentProfile"})
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 0, r.stderr)
        posts = self.posts()
        self.assertEqual([p["status"] for p in posts], [429, 204])
        self.assertGreaterEqual(posts[1]["time"] - posts[0]["time"], 1.9)

    def test_retry_after_beyond_bounds_leaves_it_for_later(self):
        self.ep.control(fail={"status": 503, "count": 1, "retry_after": 3600,
                              "op": "PostAgentProfile"})
        t0 = time.monotonic()
        r = self.drive("post", self.body)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("retry after 3600 s", r.stderr)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(len(self.posts()), 1)


WORKLOAD = """
import time
def busy():
    t = time.time()
    while time.time() - t < %(secs)s:
        sum(i * i for i in range(1000))
busy()
"""


class EndToEnd(UploadBase):
    def run_cgprof(self, secs, *opts, env=None):
        prog = os.path.join(self.dir, "work.py")
        with open(prog, "w") as f:
            f.write(WORKLOAD % {"secs": secs})
        cmd = [CGPROF, "run", "--profiling-group", GROUP, "--region", "us-east-1",
               "--endpoint", self.ep.url, "--ca-file", self.pki["ca"],
               "--spool", os.path.join(self.dir, "spool")] + list(opts) + \
              ["--", "/usr/bin/python3", prog]
        return subprocess.run(cmd, env=env or self.env, capture_output=True, text=True,
                              timeout=120)

    def short_windows(self, should_profile=True):
        self.ep.control(configuration={
            "shouldProfile": should_profile, "periodInSeconds": 1,
            "agentParameters": {"SamplingIntervalInMilliseconds": "10",
                                "ReportingIntervalInMilliseconds": "1000",
                                "MinimumTimeForReportingInMilliseconds": "500",
                                "MaxStackDepth": "1000"}})

    def test_profiles_arrive_from_run(self):
        self.short_windows()
        r = self.run_cgprof(3.5, "--reporting-interval", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        posts = [p for p in self.posts() if p["status"] == 204]
        self.assertGreaterEqual(len(posts), 2, r.stderr)
        # Each window is a CodeGuru agent profile naming the workload.
        found = False
        for p in posts:
            with open(os.path.join(self.ep.dir, "profiles", p["file"])) as f:
                doc = json.load(f)
            self.assertIn("callgraph", doc)
            found |= "busy" in json.dumps(doc)
        self.assertTrue(found, "no window mentions busy()")

    def uploaded(self):
        docs = []
        for p in self.posts():
            if p["status"] == 204:
                with open(os.path.join(self.ep.dir, "profiles", p["file"])) as f:
                    docs.append(json.load(f))
        return docs

    @staticmethod
    def counts_under(node, pred, inside=False):
        """Sum of all counts in the subtrees whose key satisfies pred."""
        total = 0
        for key, child in node.get("children", {}).items():
            hit = inside or pred(key)
            if hit:
                total += sum(child.get("counts", {}).values())
            total += EndToEnd.counts_under(child, pred, hit)
        return total

    def test_attach_python_profiles_decode_to_the_workload_truth(self):
        """attach with a profiling group: the uploaded CodeGuru call graphs
        split alpha/beta as the workload measured it (within 5 points)."""
        self.short_windows()
        split = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "python",
                             "split.py")
        work = subprocess.Popen(["/usr/bin/python3", split, "4"], stdout=subprocess.PIPE,
                                text=True)
        time.sleep(0.3)
        r = subprocess.run([CGPROF, "attach", "-d", "3", "-r", "200", "--profiling-group", GROUP,
                            "--region", "us-east-1", "--endpoint", self.ep.url, "--ca-file",
                            self.pki["ca"], "--spool", os.path.join(self.dir, "spool"),
                            "--reporting-interval", "1", str(work.pid)],
                           env=self.env, capture_output=True, text=True, timeout=60)
        out, _ = work.communicate(timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(work.returncode, 0)
        truth = json.loads(out.strip().splitlines()[-1])
        docs = self.uploaded()
        self.assertGreaterEqual(len(docs), 2, r.stderr)
        a = sum(self.counts_under(d["callgraph"], lambda k: k.endswith(":alpha")) for d in docs)
        b = sum(self.counts_under(d["callgraph"], lambda k: k.endswith(":beta")) for d in docs)
        self.assertGreater(a + b, 200, docs[0]["callgraph"])
        want = truth["alpha"] / (truth["alpha"] + truth["beta"])
        self.assertLess(abs(a / (a + b) - want), 0.05, (a, b, want))
        for d in docs:
            self.assertEqual(set(d["agentMetadata"]["sampleWeights"]), {"WALL_TIME"})

    def test_java_profiles_arrive_with_thread_states(self):
        if not shutil.which("javac"):
            self.skipTest("no javac")
        self.short_windows()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        classes = os.path.join(self.dir, "classes")
        subprocess.run(["javac", "-d", classes, os.path.join(root, "examples", "java", "Demo.java")],
                       check=True, timeout=120)
        r = subprocess.run([CGPROF, "run", "--idle", "--profiling-group", GROUP, "--region",
                            "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"],
                            "--spool", os.path.join(self.dir, "spool"), "--reporting-interval", "1",
                            "--", "java", "-cp", classes, "Demo", "4"],
                           env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = self.uploaded()
        self.assertTrue(docs, r.stderr)
        text = json.dumps(docs)
        self.assertIn("Demo.isPrime", text)
        states = set()
        for d in docs:
            states |= set(d["agentMetadata"]["sampleWeights"])
        self.assertIn("RUNNABLE", states)
        self.assertIn("TIMED_WAITING", states)  # main sleeps in Thread.sleep (--idle)

    def test_should_profile_false_stops_sampling(self):
        self.short_windows(should_profile=False)
        r = self.run_cgprof(3, "--reporting-interval", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([p for p in self.posts() if p["status"] == 204], [], r.stderr)
        self.assertTrue([l for l in self.ep.log() if l.get("op") == "ConfigureAgent"])

    def test_hung_configure_agent_never_stalls_sampling(self):
        """ConfigureAgent whose reply never comes: sampling starts at once
        with the defaults, the windows still arrive, and the run ends on
        time (it took 121 s and no samples when the first call blocked)."""
        self.ep.control(fail={"hang": True, "count": 100, "op": "ConfigureAgent"})
        t0 = time.monotonic()
        r = self.run_cgprof(3, "--reporting-interval", "1")
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(took, 12, r.stderr)
        docs = self.uploaded()
        self.assertTrue(docs, r.stderr)
        self.assertIn("busy", json.dumps(docs))

    def test_wrong_secret_reported_once(self):
        self.short_windows()
        env = dict(self.env, AWS_SECRET_ACCESS_KEY="not-the-secret")
        r = self.run_cgprof(3, "--reporting-interval", "1", env=env)
        self.assertIn("refused the credentials", r.stderr)
        self.assertLessEqual(r.stderr.count("refused the credentials"), 2, r.stderr)
        self.assertNotIn("not-the-secret", r.stderr)


if __name__ == "__main__":
    unittest.main()

"""The credentials chain against loopback stand-ins for the container
credentials endpoint and EC2 instance metadata (IMDSv2), and the shared
files. Every request goes to 127.0.0.1; elsewhere metadata is disabled."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from cgtest import BUILD

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoint"))
import harness  # noqa: E402

DRIVER = os.path.join(BUILD, "tests", "unit", "test_upload")
AK = "ASIAMETADATAEXAMPLE"
SECRET = "metadata/secret+value"


def sha8(s):
    return hashlib.sha256(s.encode()).hexdigest()[:8]


@unittest.skipUnless(os.access(DRIVER, os.X_OK), "%s not built (make unit-bin)" % DRIVER)
class Credentials(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cgprof-creds-")
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def metadata(self, **kw):
        m = harness.Metadata(os.path.join(self.dir, "md%d" % len(self.servers)), AK, SECRET, **kw)
        self.servers.append(m)
        return m

    def creds(self, **env):
        r = subprocess.run([DRIVER, "creds"], env=harness.clean_env(self.home, **env),
                           capture_output=True, text=True, timeout=60)
        return r, (json.loads(r.stdout) if r.returncode == 0 else None)

    def test_environment_first(self):
        m = self.metadata()
        r, c = self.creds(AWS_ACCESS_KEY_ID="AKIAENV", AWS_SECRET_ACCESS_KEY="envsecret",
                          AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % m.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((c["source"], c["access_key"]), ("environment", "AKIAENV"))
        self.assertEqual(m.log(), [])

    def test_container_endpoint_with_token(self):
        m = self.metadata(auth_token="Bearer container-auth")
        r, c = self.creds(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % m.port,
                          AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer container-auth")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(c["source"], "container endpoint")
        self.assertEqual(c["access_key"], AK)
        self.assertEqual(c["secret_sha256_8"], sha8(SECRET))
        self.assertTrue(c["token"])
        self.assertGreater(c["expiration"], 0)
        self.assertTrue(all(l["had_auth"] for l in m.log()))
        self.assertNotIn(SECRET, r.stdout + r.stderr)

    def test_container_wrong_token_is_an_error(self):
        m = self.metadata(auth_token="Bearer right")
        r, _ = self.creds(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % m.port,
                          AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wrong")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("container credentials endpoint answered HTTP 403", r.stderr)

    def test_imdsv2(self):
        m = self.metadata()
        r, c = self.creds(AWS_EC2_METADATA_DISABLED="false",
                          AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d/" % m.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(c["source"], "instance metadata")
        self.assertEqual(c["secret_sha256_8"], sha8(SECRET))
        log = m.log()
        self.assertEqual(log[0]["method"], "PUT")
        self.assertEqual(log[0]["path"], "/latest/api/token")
        self.assertTrue(all(l["had_imds_token"] for l in log[1:]))
        self.assertEqual([l["status"] for l in log], [200, 200, 200])

    def test_imds_disabled(self):
        m = self.metadata()
        r, _ = self.creds(AWS_EC2_METADATA_DISABLED="true",
                          AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % m.port)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no AWS credentials", r.stderr)
        self.assertEqual(m.log(), [])

    def test_refreshed_before_expiry(self):
        # Expiring within the five-minute margin: the second get refetches.
        m = self.metadata(expires_in=120)
        r, _ = self.creds(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % m.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(m.log()), 2)
        m2 = self.metadata(expires_in=3600)
        r, _ = self.creds(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % m2.port)
        self.assertEqual(len(m2.log()), 1)

    def write(self, name, text, mode):
        path = os.path.join(self.home, ".aws", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_profile_files_and_mode_warning(self):
        self.write("credentials", "[default]\naws_access_key_id=AKIADEF\n"
                   "aws_secret_access_key=defsecret\n[ci]\naws_access_key_id = AKIACI\n"
                   "aws_secret_access_key = cisecret\n", 0o600)
        r, c = self.creds()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((c["source"], c["access_key"]), ("profile default", "AKIADEF"))
        self.assertNotIn("readable", r.stderr)
        r, c = self.creds(AWS_PROFILE="ci")
        self.assertEqual(c["access_key"], "AKIACI")
        self.assertEqual(c["secret_sha256_8"], sha8("cisecret"))
        os.chmod(os.path.join(self.home, ".aws", "credentials"), 0o644)
        r, c = self.creds()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("readable by group or others", r.stderr)
        self.assertNotIn("defsecret", r.stderr + r.stdout)

    def test_alternate_file_locations(self):
        alt = os.path.join(self.dir, "alt-config")
        with open(alt, "w") as f:
            f.write("[profile other]\naws_access_key_id=AKIAALT\naws_secret_access_key=x\n")
        os.chmod(alt, 0o600)
        r, c = self.creds(AWS_CONFIG_FILE=alt, AWS_PROFILE="other",
                          AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.dir, "none"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(c["access_key"], "AKIAALT")


@unittest.skipUnless(os.access(DRIVER, os.X_OK) and shutil.which("openssl"),
                     "driver or openssl missing")
class SignedWithMetadataCredentials(unittest.TestCase):
    """Temporary credentials from IMDSv2 sign a request the endpoint
    accepts, session token included."""

    def test_post_with_imds_credentials(self):
        d = tempfile.mkdtemp(prefix="cgprof-creds-ep-")
        try:
            pki = harness.make_pki(os.path.join(d, "pki"))
            ep = harness.Endpoint(os.path.join(d, "ep"), pki, AK, SECRET).start()
            m = harness.Metadata(os.path.join(d, "md"), AK, SECRET)
            try:
                body = os.path.join(d, "b.json")
                with open(body, "w") as f:
                    f.write("{}")
                env = harness.clean_env(os.path.join(d, "home"), AWS_EC2_METADATA_DISABLED="false",
                                        AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % m.port)
                r = subprocess.run([DRIVER, "--group", "g", "--region", "us-east-1", "--endpoint",
                                    ep.url, "--ca-file", pki["ca"], "post", body], env=env,
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                [rec] = [l for l in ep.log() if l.get("op") == "PostAgentProfile"]
                self.assertIn("x-amz-security-token", rec["signed_headers"])
            finally:
                m.stop()
                ep.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()

"""The durable spool and `cgprof upload`, against the loopback HTTPS
endpoint that verifies every signature with botocore: concurrent drains
deliver each batch exactly once, a flapping endpoint loses nothing, a full
spool drops the oldest batches and says so, tampered, moved or foreign
batches are refused, and SIGKILL while a batch is written never leaves a
partial batch that gets uploaded."""
import os
import random
import signal
import subprocess
import time
import unittest

from cgtest import CGPROF
from test_upload import BODY, DRIVER, GROUP, UploadBase


class Spool(UploadBase):
    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.dir, "spool")

    def spool_batches(self, n, *opts, body=None, env=None):
        """n batches into the spool, through the reporter with --no-upload."""
        r = self.drive("--no-upload", "--spool", self.spool, *opts, "submit",
                       body or self.body, "300000", "10", str(n), env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def batches(self):
        if not os.path.isdir(self.spool):
            return []
        return sorted(f for f in os.listdir(self.spool) if f.endswith(".batch"))

    def upload(self, *opts, group=GROUP, wait=True):
        cmd = [CGPROF, "upload", "--spool", self.spool, "--profiling-group", group,
               "--region", "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"]]
        p = subprocess.Popen(cmd + list(opts), env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        if not wait:
            return p
        out, err = p.communicate(timeout=120)
        return p.returncode, err

    def delivered(self):
        """Tokens of the profiles the endpoint accepted, with repeats."""
        return [p["token"] for p in self.posts() if p["status"] == 204]

    def test_spool_is_private(self):
        self.spool_batches(1)
        self.assertEqual(os.stat(self.spool).st_mode & 0o777, 0o700)
        for f in self.batches():
            self.assertEqual(os.stat(os.path.join(self.spool, f)).st_mode & 0o777, 0o600)
        os.chmod(self.spool, 0o755)
        rc, err = self.upload()
        self.assertEqual(rc, 78, err)
        self.assertIn("open to group or others", err)
        self.assertEqual(self.posts(), [])

    def test_two_uploads_deliver_each_batch_once(self):
        self.spool_batches(12)
        self.assertEqual(len(self.batches()), 12)
        procs = [self.upload(wait=False) for _ in range(2)]
        for p in procs:
            p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0)
        tokens = self.delivered()
        self.assertEqual(len(tokens), 12)
        self.assertEqual(len(set(tokens)), 12, "a batch was sent twice")
        self.assertEqual(self.batches(), [])

    def test_flapping_endpoint_loses_nothing(self):
        self.spool_batches(5)
        self.ep.stop()
        rc, err = self.upload()
        self.assertEqual(rc, 75, err)
        self.assertEqual(len(self.batches()), 5)
        for attempt in range(6):
            self.ep.start()
            # every other request fails while it comes back up
            self.ep.control(fail={"status": 503, "count": 2})
            rc, err = self.upload()
            if rc == 0:
                break
            self.assertEqual(rc, 75, err)
            self.ep.stop()
        self.assertEqual(rc, 0, err)
        tokens = self.delivered()
        self.assertEqual(sorted(set(tokens)), sorted(tokens), "delivered twice")
        self.assertEqual(len(tokens), 5)
        self.assertEqual(self.batches(), [])
        # the body that arrived is the body that was spooled
        rec = [p for p in self.posts() if p["status"] == 204][0]
        with open(os.path.join(self.ep.dir, "profiles", rec["file"]), "rb") as f:
            self.assertEqual(f.read(), BODY)

    def test_full_spool_drops_oldest_and_says_so(self):
        big = os.path.join(self.dir, "big.json")
        with open(big, "wb") as f:
            f.write(b'{"callgraph":"' + b"x" * 400000 + b'"}')
        r = self.spool_batches(6, "--spool-max-mb", "1", body=big)
        kept = self.batches()
        self.assertEqual(len(kept), 2, kept)
        self.assertEqual(r.stderr.count("dropped the oldest batch"), 4, r.stderr)
        # the survivors are the two newest (ids are time-ordered)
        ids = [l.split("dropped the oldest batch ")[1].split()[0]
               for l in r.stderr.splitlines() if "dropped the oldest" in l]
        self.assertTrue(all(d < k for d in ids for k in kept), (ids, kept))

    def make_key(self, mode=0o600):
        key = os.path.join(self.dir, "spool.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, mode)
        return key

    def test_tampered_or_moved_encrypted_batch_is_refused(self):
        key = self.make_key()
        self.spool_batches(3, "--spool-key", key)
        a, b, c = self.batches()
        with open(os.path.join(self.spool, a), "r+b") as f:
            f.seek(-20, os.SEEK_END)
            byte = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([byte[0] ^ 1]))
        # b is moved: same content under another batch id
        os.rename(os.path.join(self.spool, b), os.path.join(self.spool, "0000000000001-1-9.batch"))
        # no plaintext of the profile on disk
        with open(os.path.join(self.spool, c), "rb") as f:
            self.assertNotIn(b"callgraph", f.read())
        rc, err = self.upload("--spool-key", key)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.delivered()), 1)
        self.assertEqual(err.count("does not authenticate"), 2, err)
        self.assertEqual(len(os.listdir(os.path.join(self.spool, "refused"))), 2)
        self.assertEqual(self.batches(), [])

    def test_batch_of_another_group_is_refused(self):
        self.spool_batches(1)
        rc, err = self.upload(group="another-group")
        self.assertIn("belongs to profiling group", err)
        self.assertEqual(self.posts(), [])
        self.assertEqual(len(os.listdir(os.path.join(self.spool, "refused"))), 1)

    def test_key_readable_by_others_is_refused(self):
        key = self.make_key(0o644)
        rc, err = self.upload("--spool-key", key)
        self.assertEqual(rc, 78, err)
        self.assertIn("readable by group or others", err)

    def test_sigkill_while_writing_never_uploads_a_partial_batch(self):
        """The writer is killed at random moments mid-spool; whatever it
        left, only whole batches are ever sent."""
        big = os.path.join(self.dir, "big.json")
        payload = b'{"callgraph":"' + b"y" * 2000000 + b'"}'
        with open(big, "wb") as f:
            f.write(payload)
        rnd = random.Random(7)
        for _ in range(6):
            p = subprocess.Popen([DRIVER, "--group", GROUP, "--region", "us-east-1",
                                  "--no-upload", "--spool", self.spool, "submit", big,
                                  "300000", "10", "50"],
                                 env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0.05, 0.8))
            p.send_signal(signal.SIGKILL)
            p.wait()
        whole = len(self.batches())
        self.assertGreater(whole, 0, "the writer never finished a batch")
        rc, err = self.upload("--spool-max-mb", "1024")
        self.assertEqual(rc, 0, err)
        oks = [p for p in self.posts() if p["status"] == 204]
        self.assertEqual(len(oks), whole)
        for rec in oks:
            with open(os.path.join(self.ep.dir, "profiles", rec["file"]), "rb") as f:
                self.assertEqual(f.read(), payload)


if __name__ == "__main__":
    unittest.main()

"""The durable spool and `cgprof upload`, against the loopback HTTPS
endpoint that verifies every signature with botocore: concurrent drains
deliver each batch exactly once, a flapping endpoint loses nothing, a full
spool drops the oldest batches and says so, tampered, moved or foreign
batches are refused, and SIGKILL while a batch is written never leaves a
partial batch that gets uploaded."""
import os
import random
import re
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

    def spool_batches(self, n, *opts, body=None, env=None, group=GROUP):
        """n batches into the spool, through the reporter with --no-upload."""
        r = self.drive("--no-upload", "--spool", self.spool, *opts, "--group", group, "submit",
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
        sent = 0
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            # one plain summary line each: a success is not a warning
            m = re.fullmatch(r"cgprof: upload: (\d+) sent, 0 left, 0 refused\n", err)
            self.assertTrue(m, err)
            sent += int(m.group(1))
        self.assertEqual(sent, 12)
        tokens = self.delivered()
        self.assertEqual(len(tokens), 12)
        self.assertEqual(len(set(tokens)), 12, "a batch was sent twice")
        self.assertEqual(self.batches(), [])
        self.assertEqual(self.upload("-q"), (0, ""))

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

    def test_another_groups_batches_are_left_alone(self):
        """A shared spool: group B's upload neither sends, refuses nor drops
        group A's batches; A's own upload later delivers them all."""
        self.spool_batches(2)
        self.spool_batches(1, group="group-b")
        rc, err = self.upload(group="group-b")
        self.assertEqual(rc, 0, err)
        self.assertEqual([p["group"] for p in self.posts() if p["status"] == 204], ["group-b"])
        self.assertFalse(os.path.exists(os.path.join(self.spool, "refused")), err)
        self.assertEqual(len(self.batches()), 2)
        # B's bound counts B's batches only: A's survive a tiny bound
        self.spool_batches(1, "--spool-max-mb", "1", group="group-b")
        self.assertEqual(len(self.batches()), 3)
        rc, err = self.upload()
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(p["group"] for p in self.posts() if p["status"] == 204),
                         [GROUP, GROUP, "group-b"])
        self.assertEqual(len(self.batches()), 1)  # B's second batch, B's to send

    def test_wrong_or_missing_key_keeps_batches(self):
        key = self.make_key()
        self.spool_batches(2, "--spool-key", key)
        other = os.path.join(self.dir, "other.key")
        with open(other, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(other, 0o600)
        rc, err = self.upload("--spool-key", other)
        self.assertEqual(rc, 78, err)
        self.assertIn("another spool key", err)
        self.assertEqual(len(self.batches()), 2)
        rc, err = self.upload()
        self.assertEqual(rc, 78, err)
        self.assertIn("no spool_key", err)
        self.assertEqual(len(self.batches()), 2)
        self.assertFalse(os.path.exists(os.path.join(self.spool, "refused")))
        self.assertEqual(self.posts(), [])
        rc, err = self.upload("--spool-key", key)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.delivered()), 2)

    def test_every_header_field_is_sealed(self):
        key = self.make_key()
        self.spool_batches(3, "--spool-key", key)
        a, b, c = self.batches()
        def edit(name, field, change):
            path = os.path.join(self.spool, name)
            with open(path, "rb") as f:
                head, sep, body = f.read().partition(b"\n\n")
            lines = head.split(b"\n")
            i = [n for n, l in enumerate(lines) if l.startswith(field + b": ")][0]
            lines[i] = change(lines[i])
            with open(path, "wb") as f:
                f.write(b"\n".join(lines) + sep + body)
        # another token of the same shape; another content type
        edit(a, b"token", lambda l: l[:-1] + (b"0" if l[-1:] != b"0" else b"1"))
        edit(b, b"content-type", lambda l: b"content-type: application/jsoo")
        rc, err = self.upload("--spool-key", key)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err.count("does not authenticate"), 2, err)
        self.assertEqual(len(self.delivered()), 1)
        self.assertEqual(sorted(os.listdir(os.path.join(self.spool, "refused"))), [a, b])

    def test_batch_refused_by_endpoint_is_set_aside_and_drain_goes_on(self):
        self.spool_batches(3)
        first = self.batches()[0]
        self.ep.control(fail={"status": 400, "type": "ValidationException", "count": 1,
                              "message": "profile too large", "op": "PostAgentProfile"})
        rc, err = self.upload()
        self.assertEqual(rc, 0, err)
        self.assertIn("profile too large", err)
        self.assertEqual(len(self.delivered()), 2)
        self.assertEqual(os.listdir(os.path.join(self.spool, "refused")), [first])
        self.assertEqual(self.batches(), [])

    def test_read_only_spool_sends_nothing_twice(self):
        """A spool on a read-only mount: nothing can be removed after it is
        sent, so nothing is sent; two runs, zero repeats."""
        self.spool_batches(2)
        ro = os.path.join(self.dir, "ro")
        os.makedirs(ro, mode=0o700)
        script = ('mount --bind "$1" "$2" && mount -o remount,ro,bind "$2" && '
                  'shift 2 && exec "$@"')
        base = [CGPROF, "upload", "--spool", ro, "--profiling-group", GROUP, "--region",
                "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"]]
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", self.spool, ro,
                                "true"], capture_output=True, text=True)
        if probe.returncode:
            self.skipTest("cannot make a read-only bind mount: %s" % probe.stderr.strip())
        for _ in range(2):
            r = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", self.spool, ro] +
                               base, env=self.env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("not writable", r.stderr)
        self.assertEqual(self.posts(), [], "a batch was sent that could not be removed")
        self.assertEqual(len(self.batches()), 2)
        self.assertFalse(os.path.exists(os.path.join(self.spool, "refused")))

    def test_spool_named_but_missing_is_an_error(self):
        """A drain of a spool that does not exist (a typo in spool_dir)
        says so and exits 78, and makes nothing; the profiler's own
        spooling still makes its directory."""
        missing = os.path.join(self.dir, "no-such-spool")
        cmd = [CGPROF, "upload", "--spool", missing, "--profiling-group", GROUP,
               "--region", "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"]]
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 78, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("%s does not exist" % missing, lines[0])
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(self.posts(), [])
        self.spool_batches(1)  # --no-upload spooling makes its directory
        rc, err = self.upload()
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.delivered()), 1)

    def test_key_readable_by_others_is_refused(self):
        key = self.make_key(0o644)
        os.makedirs(self.spool, mode=0o700)
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

    def test_sent_batch_that_cannot_be_removed_is_never_sent_again(self):
        """The batch file itself cannot be removed (a mount point: EBUSY)
        while the spool is writable: sent once, marked, never again."""
        self.spool_batches(2)
        first, second = self.batches()
        path = os.path.join(self.spool, first)
        base = [CGPROF, "upload", "--spool", self.spool, "--profiling-group", GROUP, "--region",
                "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"]]
        script = 'mount --bind "$0" "$0" && exec "$@"'
        if subprocess.run(["unshare", "-rm", "sh", "-c", script, path, "true"],
                          capture_output=True).returncode:
            self.skipTest("cannot bind-mount in a user namespace")
        for run in range(2):
            r = subprocess.run(["unshare", "-rm", "sh", "-c", script, path] + base,
                               env=self.env, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 78 if run == 0 else 0, r.stderr)
            if run == 0:
                self.assertIn("was sent but cannot be removed", r.stderr)
                self.assertIn("marked as sent", r.stderr)
        # once removable again, it goes without being sent
        rc, err = self.upload()
        self.assertEqual(rc, 0, err)
        tokens = self.delivered()
        self.assertEqual(len(tokens), 2, err)
        self.assertEqual(len(set(tokens)), 2, "a batch was sent twice")
        self.assertEqual(self.batches(), [])
        self.assertEqual([f for f in os.listdir(self.spool) if f.endswith(".sent")], [])

    def test_syslog_without_dev_log_falls_back_to_stderr(self):
        """--syslog where nothing listens on /dev/log: the messages still
        reach someone (stderr), with one line saying why."""
        self.spool_batches(1)
        self.ep.stop()
        cmd = [CGPROF, "upload", "--syslog", "--spool", self.spool, "--profiling-group", GROUP,
               "--region", "us-east-1", "--endpoint", self.ep.url, "--ca-file", self.pki["ca"]]
        if os.path.exists("/dev/log"):
            # hide the real one behind a plain file, in a private mount namespace
            empty = os.path.join(self.dir, "not-a-socket")
            open(empty, "w").close()
            cmd = ["unshare", "-rm", "sh", "-c", 'mount --bind "$0" /dev/log && exec "$@"',
                   empty] + cmd
            if subprocess.run(cmd[:5] + ["true"], capture_output=True).returncode:
                self.skipTest("cannot hide /dev/log in a mount namespace")
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("nothing listens on /dev/log", r.stderr)
        self.assertIn("1 left", r.stderr)

    # What would lose every window is found before sampling starts.

    def run_cgprof(self, *opts):
        prog = os.path.join(self.dir, "work.py")
        with open(prog, "w") as f:
            f.write("import time\nt = time.time()\nwhile time.time() - t < 2: pass\n")
        marker = os.path.join(self.dir, "ran")
        cmd = [CGPROF, "run", "--region", "us-east-1", "--no-upload",
               "--reporting-interval", "1"] + list(opts) + \
              ["--", "/bin/sh", "-c", "touch %s; exec /usr/bin/python3 %s" % (marker, prog)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        ran = os.path.exists(marker)
        if ran:
            os.unlink(marker)
        return r, ran, time.monotonic() - t0

    def test_bad_spool_key_or_dir_stops_before_sampling(self):
        link = os.path.join(self.dir, "link")
        os.makedirs(self.spool, mode=0o700)
        os.symlink(self.spool, link)
        bad_key = self.make_key(0o644)
        other = os.path.join(self.dir, "other-owner")
        os.makedirs(other, mode=0o700)
        cases = [(["--spool", self.spool, "--spool-key", bad_key], "readable by group"),
                 (["--spool", self.spool, "--spool-key", os.path.join(self.dir, "nokey")],
                  "nokey"),
                 (["--spool", link], "symbolic link"),
                 (["--spool", link + "/"], "symbolic link")]
        if os.geteuid() == 0:
            os.chown(other, 65534, 65534)
            cases.append((["--spool", other], "belongs to uid 65534"))
        for opts, why in cases:
            r, ran, took = self.run_cgprof("--profiling-group", GROUP, *opts)
            self.assertNotEqual(r.returncode, 0, (opts, r.stderr))
            self.assertIn(why, r.stderr, opts)
            self.assertFalse(ran, "%s: the target was started: %s" % (opts, r.stderr))
            self.assertLess(took, 1.5, opts)

    def test_profiling_group_validated_with_no_upload(self):
        for bad in ("../x", "a b", "g" * 256, ""):
            r, ran, _ = self.run_cgprof("--profiling-group", bad, "--spool", self.spool)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertRegex(r.stderr, r"profiling[ _]group", bad)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertFalse(ran)
        self.assertEqual(self.batches(), [])
        # and through the library (the reporter) as well
        r = self.drive("--no-upload", "--spool", self.spool, "--group", "../x", "submit",
                       self.body, "300000", "10")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertEqual(self.batches(), [])


if __name__ == "__main__":
    unittest.main()

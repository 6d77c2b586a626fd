"""The command-line contract of run/attach/dump: exit statuses, signal
forwarding, clear one-line errors, and a target that is never harmed,
even when cgprof itself is killed with SIGKILL."""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import cgtest
from cgtest import CGPROF, WORKLOADS, CgTestCase, cgprof, frame_func, parse_collapsed

BUSY = os.path.join(WORKLOADS, "cli", "busy.py")
PY = "/usr/bin/python3"


def wait_file(path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        time.sleep(0.02)
    raise AssertionError("%s never appeared" % path)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


class TestUsage(unittest.TestCase):
    def test_help_lists_commands(self):
        r = cgprof("--help")
        self.assertEqual(r.returncode, 0)
        for word in ("run", "attach", "dump", "heap", "upload", "config", "--rate",
                     "--nonblocking", "--subprocesses", "--max-depth"):
            self.assertIn(word, r.stdout)

    def test_usage_errors_exit_2(self):
        for args in (["run"], ["attach"], ["attach", "1", "2"], ["bogus"],
                     ["attach", "--rate", "fast", "1"], ["attach", "-f", "gif", "1"],
                     ["run", "--nosuch", "--", "true"]):
            r = cgprof(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertTrue(r.stderr.startswith("cgprof: "), r.stderr)

    def test_invalid_pid(self):
        r = cgprof("attach", "12abc")
        self.assertEqual(r.returncode, 2)
        self.assertIn("invalid PID", r.stderr)


class TestErrors(CgTestCase):
    def one_line_error(self, r, text):
        self.assertNotEqual(r.returncode, 0)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(text, lines[0])

    def test_no_such_pid(self):
        r = cgprof("attach", "-d", "1", "999999")
        self.one_line_error(r, "no such process")
        r = cgprof("dump", "999999")
        self.one_line_error(r, "no such process")

    def test_not_python(self):
        p = self.spawn(["sleep", "30"])
        r = cgprof("attach", "-d", "1", str(p.pid))
        self.one_line_error(r, "not a Python or Java process")
        self.assertIn("sleep", r.stderr)
        self.assertIsNone(p.poll(), "sleep must still run")

    def test_run_missing_command(self):
        r = cgprof("run", "--", "/nonexistent/cgprof-no-such-program")
        self.assertEqual(r.returncode, 127)
        self.one_line_error(r, "cannot run")

    def test_other_user_is_named(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start a process as another user")
        p = self.spawn(["sleep", "30"])
        # -o: nobody may not write to the current directory, which is
        # checked first and is not what this test is about.
        r = cgprof("attach", "-d", "1", "-o", scratch_for_nobody(self), str(p.pid),
                   preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
        self.one_line_error(r, "another user")
        self.assertIsNone(p.poll())


class TestRun(CgTestCase):
    def test_exit_status_is_the_childs(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("run", "-o", out, "--", PY, BUSY, "0.5", "3")
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("busy: done", r.stdout)

    def test_killed_child_gives_128_plus_signal(self):
        r = cgprof("run", "-o", "/dev/null", "--", PY, "-c",
                   "import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), signal.SIGKILL)")
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)

    def test_sigterm_is_forwarded(self):
        with tempfile.TemporaryDirectory() as d:
            pidfile = os.path.join(d, "pid")
            p = self.spawn([CGPROF, "run", "-o", os.path.join(d, "p.txt"), "--",
                            PY, BUSY, "30", "0", pidfile])
            wait_file(pidfile)
            time.sleep(0.3)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=20)
            self.assertEqual(p.returncode, 5, err)
            self.assertIn("busy: got SIGTERM", out)
            self.assertTrue(os.path.exists(os.path.join(d, "p.txt")), err)

    def test_summary_line(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("run", "-o", out, "--", PY, BUSY, "1")
            self.assertEqual(r.returncode, 0, r.stderr)
            summary = [l for l in r.stderr.splitlines() if "samples in" in l]
            self.assertEqual(len(summary), 1, r.stderr)
            self.assertIn("Hz achieved", summary[0])
            self.assertIn("lost", summary[0])
            stacks = parse_collapsed(open(out).read())
            self.assertGreater(sum(stacks.values()), 30)

    def test_sigkill_of_cgprof_leaves_child_running(self):
        """cgprof killed at random points mid-sampling (1 kHz, pausing the
        target): the workload still finishes with its normal output and exit
        status. We become a subreaper so the orphaned workload's status
        comes back to us."""
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        self.assertEqual(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0)
        try:
            for delay in (0.05, 0.2, 0.45, 0.7, 0.9):
                with tempfile.TemporaryDirectory() as d:
                    pidfile = os.path.join(d, "pid")
                    outfile = os.path.join(d, "out")
                    with open(outfile, "w") as fout:
                        p = subprocess.Popen([CGPROF, "run", "-r", "1000", "-o",
                                              os.path.join(d, "p.txt"), "--",
                                              PY, BUSY, "1.5", "4", pidfile],
                                             stdout=fout, stderr=subprocess.DEVNULL)
                    wpid = int(wait_file(pidfile))
                    time.sleep(delay)
                    p.kill()
                    p.wait()
                    deadline = time.monotonic() + 20
                    status = None
                    while time.monotonic() < deadline:
                        got, status = os.waitpid(wpid, os.WNOHANG)
                        if got == wpid:
                            break
                        time.sleep(0.02)
                    else:
                        os.kill(wpid, signal.SIGKILL)
                        self.fail("workload stuck after cgprof died (delay %s)" % delay)
                    self.assertTrue(os.WIFEXITED(status), "delay %s: status %r" % (delay, status))
                    self.assertEqual(os.WEXITSTATUS(status), 4, "delay %s" % delay)
                    self.assertEqual(open(outfile).read(), "busy: started\nbusy: done\n")
        finally:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class TestAttach(CgTestCase):
    def test_attach_detach_leaves_target_unharmed(self):
        p = self.spawn([PY, BUSY, "3", "7"])
        self.assertEqual(p.stdout.readline().strip(), "busy: started")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("attach", "-d", "1", "-o", out, str(p.pid))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIsNone(p.poll(), "target must run on after detach")
            stacks = parse_collapsed(open(out).read())
            self.assertTrue(any(cgtest.frame_func(s[-1]) == "busy" for s in stacks), stacks)
        rest, err = p.communicate(timeout=20)
        self.assertEqual(rest.strip(), "busy: done")
        self.assertEqual(p.returncode, 7)
        self.assertEqual(err, "")

    def test_sigint_stops_attach_and_writes(self):
        p = self.spawn([PY, BUSY, "10"])
        p.stdout.readline()
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            c = subprocess.Popen([CGPROF, "attach", "-o", out, str(p.pid)],
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            c.send_signal(signal.SIGINT)
            _, err = c.communicate(timeout=20)
            self.assertEqual(c.returncode, 0, err)
            self.assertTrue(os.path.getsize(out) > 0)
        self.assertIsNone(p.poll())

    def test_target_exit_ends_attach(self):
        p = self.spawn([PY, BUSY, "1"])
        p.stdout.readline()
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            t0 = time.monotonic()
            r = cgprof("attach", "-o", out, str(p.pid), timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(time.monotonic() - t0, 10)


class TestDump(CgTestCase):
    def test_dump_shows_thread_and_frames(self):
        p = self.spawn([PY, BUSY, "10"])
        p.stdout.readline()
        r = cgprof("dump", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Thread %d" % p.pid, r.stdout)
        self.assertRegex(r.stdout, r"busy \(.*busy\.py:\d+\)")
        self.assertRegex(r.stdout, r"<module> \(.*busy\.py:\d+\)")
        self.assertIsNone(p.poll())


def scratch_for_nobody(test):
    """An output path in a directory anyone may write, removed after test."""
    d = tempfile.mkdtemp(prefix="cgprof-nobody-")
    os.chmod(d, 0o777)
    test.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
    return os.path.join(d, "p.txt")


def kernel_thread():
    """A PID whose /proc stat flags carry PF_KTHREAD, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[6]) & 0x00200000:
            return int(d)
    return None


NOBODY = lambda: (os.setgid(65534), os.setuid(65534))
NOT_DUMPABLE = ("import ctypes, sys, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); "
                "print('ready', flush=True); time.sleep(60)")


class TestAttachRefusalReason(CgTestCase):
    """attach names the cause that holds for the user at hand, never a
    generic "run as root" to root."""

    def refused(self, args, text, **kw):
        r = cgprof("attach", "-d", "1", "-o", "/dev/null", *args, **kw)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(text, lines[0])
        return lines[0]

    def test_kernel_thread(self):
        pid = kernel_thread()
        if pid is None:
            self.skipTest("no kernel thread visible in this PID namespace")
        self.refused([str(pid)], "is a kernel thread")

    def test_other_user_namespace(self):
        if subprocess.run(["unshare", "-U", "-r", "true"]).returncode != 0:
            self.skipTest("unshare -U is not allowed here")
        p = self.spawn([PY, BUSY, "30"])
        p.stdout.readline()
        # cgprof inside the namespace, the target outside it
        r = subprocess.run(["unshare", "-U", "-r", CGPROF, "attach", "-d", "1", "-o",
                            "/dev/null", str(p.pid)], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("outside cgprof's user namespace", r.stderr)
        self.assertNotIn("as root", r.stderr)
        self.assertIsNone(p.poll())

    def test_not_dumpable(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run the target and cgprof as another user")
        p = self.spawn([PY, "-c", NOT_DUMPABLE], preexec_fn=NOBODY)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        r = cgprof("attach", "-d", "1", "-o", scratch_for_nobody(self), str(p.pid),
                   preexec_fn=NOBODY)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("is not dumpable", r.stderr)
        # root, with CAP_SYS_PTRACE, may: the advice was true
        r = cgprof("dump", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(p.poll())


class TestCpuTime(CgTestCase):
    """CodeGuru's cpuTimeInSeconds is the CPU the target used, which the
    workload measures itself (time.process_time at its end)."""

    SPIN = ("import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.5: pass\n"
            "print(time.process_time())")

    def test_cpu_time_in_codeguru_profile(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.json")
            r = cgprof("run", "-q", "-f", "codeguru", "-o", out, "--", PY, "-c", self.SPIN)
            self.assertEqual(r.returncode, 0, r.stderr)
            own = float(r.stdout)
            with open(out) as f:
                meta = json.load(f)["agentMetadata"]
        self.assertIn("cpuTimeInSeconds", meta)
        # clock ticks (10 ms) and our last reading up to 50 ms before the
        # end: the spread allowed, whatever the machine's load
        self.assertAlmostEqual(meta["cpuTimeInSeconds"], own, delta=0.08 + 0.05 * own)


def codeguru_keys(node):
    """Every call-graph key of a CodeGuru profile."""
    keys = set()
    for k, child in node.get("children", {}).items():
        keys.add(k)
        keys |= codeguru_keys(child)
    return keys


class TestModuleRoot(CgTestCase):
    """CodeGuru names a Python frame module:function, the module relative
    to sys.path (as the official agent does): a package beside the script
    is pkg.mod, not its file's bare name."""

    def test_package_beside_the_script(self):
        with tempfile.TemporaryDirectory() as d:
            app = os.path.join(d, "app")
            os.makedirs(os.path.join(app, "pkg"))
            open(os.path.join(app, "pkg", "__init__.py"), "w").close()
            with open(os.path.join(app, "pkg", "mod.py"), "w") as f:
                f.write("import time\n\ndef spin(s):\n    t = time.monotonic()\n"
                        "    while time.monotonic() - t < s:\n        pass\n")
            with open(os.path.join(app, "main.py"), "w") as f:
                f.write("from pkg.mod import spin\nspin(1.0)\n")
            out = os.path.join(d, "p.json")
            # a relative script path: sys.path[0] is resolved against the cwd
            r = cgprof("run", "-q", "-f", "codeguru", "-o", out, "--", PY, "app/main.py",
                       cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                keys = codeguru_keys(json.load(f)["callgraph"])
        self.assertIn("pkg.mod:spin", keys)
        self.assertIn("main:<module>", keys)
        self.assertNotIn("mod:spin", keys)



class TestManyChildren(CgTestCase):
    """--subprocesses follows a launcher's children however many come
    and go: a dead child's place in the session is given back. The
    session kept every child it had seen in a table of 64, so a launcher
    that ran more than 63 Python children in turn was no longer followed
    (children 64 on had no samples). 100 children, two at a time, each
    burning 0.3 s in a function named after its index (burn_00 ...
    burn_99); each prints its own CPU time, the truth for
    cpuTimeInSeconds, which must still count the children that ended."""

    CHILD = ("import os, sys, time\n"
             "def spin(s):\n    t = time.monotonic()\n    while time.monotonic() - t < s: pass\n"
             + "".join("def burn_%02d(s): spin(s)\n" % i for i in range(100))
             + "globals()['burn_%02d' % int(sys.argv[1])](0.3)\n"
             "os.write(1, b'%f\\n' % time.process_time())\n")  # one write: two share a pipe
    LAUNCHER = ('i=0; while [ $i -lt 100 ]; do %s %s $i & %s %s $((i+1)); wait; '
                'i=$((i+2)); done')

    def test_children_after_the_64th_are_followed(self):
        with tempfile.TemporaryDirectory() as d:
            child, out = os.path.join(d, "child.py"), os.path.join(d, "p.json")
            with open(child, "w") as f:
                f.write(self.CHILD)
            r = cgprof("run", "--subprocesses", "-f", "codeguru", "-o", out, "--", "sh", "-c",
                       self.LAUNCHER % (PY, child, PY, child), timeout=90)
            self.assertEqual(r.returncode, 0, r.stderr)
            own = [float(x) for x in r.stdout.split()]
            self.assertEqual(len(own), 100, r.stdout)
            with open(out) as f:
                doc = json.load(f)
        per_child = [0] * 100

        def walk(node, burn):
            for key, c in node.get("children", {}).items():
                func = key.rpartition(":")[2]
                b = int(func[5:]) if func.startswith("burn_") else burn
                if b is not None:
                    per_child[b] += sum(c.get("counts", {}).values())
                walk(c, b)
        walk(doc["callgraph"], None)
        tens = [sum(per_child[t:t + 10]) for t in range(0, 100, 10)]
        # a child is sampled once a scan (every 200 ms) finds it: ~0.2 s of
        # its 0.3 s, ~200 samples a ten at 100 Hz; a loaded machine loses some
        self.assertTrue(all(n > 40 for n in tens), (tens, r.stderr))
        late = [i for i in range(80, 100) if per_child[i]]
        self.assertGreaterEqual(len(late), 15, (per_child, r.stderr))
        # CPU from when each child was found, the ended ones' included:
        # about two thirds of what the children report
        cpu = doc["agentMetadata"]["cpuTimeInSeconds"]
        self.assertGreater(cpu, 0.4 * sum(own), (cpu, sum(own), r.stderr))
        self.assertLess(cpu, 1.1 * sum(own) + 0.5, (cpu, sum(own), r.stderr))


class TestReusedPid(CgTestCase):
    """A child that ends and a new one given its PID are two processes.
    The session kept the ended child's place, given up on (not Python),
    and skipped the new Python under the same PID as known: no samples.
    In a PID namespace of our own the launcher hands the first child's
    PID to the Python through ns_last_pid."""

    CHILD = ("import os, sys, time\n"
             "def on_reused_pid():\n    t = time.monotonic()\n"
             "    while time.monotonic() - t < 1.0: pass\n"
             "print(os.getpid(), sys.argv[1])\non_reused_pid()\n")
    # the sleep after the first child: time for the session to probe its
    # PID while nobody has it
    LAUNCHER = ("sleep 0.3 & p=$!; wait; sleep 0.5; echo $((p-1)) > /proc/sys/kernel/ns_last_pid; "
                "%s %s $p; true")

    def test_new_process_under_a_reused_pid_is_followed(self):
        unshare = shutil.which("unshare")
        if not unshare or os.geteuid() != 0:
            self.skipTest("need unshare(1) and root for a PID namespace")
        with tempfile.TemporaryDirectory() as d:
            child, out = os.path.join(d, "child.py"), os.path.join(d, "p.txt")
            with open(child, "w") as f:
                f.write(self.CHILD)
            r = cgtest.run([unshare, "-pf", "--mount-proc", CGPROF, "run", "--subprocesses",
                            "-f", "collapsed", "-o", out, "--", "sh", "-c",
                            self.LAUNCHER % (PY, child)], timeout=60)
            if r.returncode and "unshare:" in r.stderr:
                self.skipTest("no PID namespace here: " + r.stderr.strip())
            self.assertEqual(r.returncode, 0, r.stderr)
            got, wanted = r.stdout.split()
            self.assertEqual(got, wanted, "the Python did not get the reused PID")
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        n = sum(c for s, c in stacks.items() if any(frame_func(x) == "on_reused_pid" for x in s))
        # 1 s at 100 Hz, less what a loaded machine loses
        self.assertGreater(n, 40, (stacks, r.stderr))


ASAN_CGPROF = os.environ.get("CGPROF_ASAN", os.path.join(cgtest.ROOT, "build-asan", "cgprof"))


def spooled_profiles(spool):
    """The JSON bodies of the batches in a spool directory, oldest first."""
    bodies = []
    for name in sorted(os.listdir(spool)):
        if not name.endswith(".batch"):
            continue
        with open(os.path.join(spool, name), "rb") as f:
            head, _, body = f.read().partition(b"\n\n")
        bodies.append(json.loads(body))
    return bodies


class TestRuntimeVersionOwned(CgTestCase):
    """The session names the runtime version in every window's profile.
    It used to point into the first sampler's private memory: once that
    child exited (--subprocesses) the next window copied freed memory.
    ASan reports the read; any build must name the version in every
    window, the ones after the first child's exit included."""

    SCRIPT = ('%s -c "import time; time.sleep(0.4)"; '
              '%s -c "import time; t = time.time()\nwhile time.time() - t < 2.6: pass"')

    def check(self, binary):
        ver = subprocess.run([PY, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
        with tempfile.TemporaryDirectory() as d:
            spool = os.path.join(d, "spool")
            r = cgtest.run([binary, "run", "-v", "--subprocesses", "--profiling-group", "g",
                            "--no-upload", "--spool", spool, "--reporting-interval", "1",
                            "--", "sh", "-c", self.SCRIPT % (PY, PY)], timeout=90)
            self.assertNotIn("AddressSanitizer", r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isdir(spool), r.stderr)
            profiles = spooled_profiles(spool)
        # 3 s of windows of 1 s: the later ones come after the first child.
        self.assertGreaterEqual(len(profiles), 2, r.stderr)
        for p in profiles:
            self.assertEqual(p["agentMetadata"]["runtimeVersion"], ver,
                             (p["agentMetadata"], r.stderr))

    def test_version_survives_the_first_sampler(self):
        self.check(CGPROF)

    def test_no_use_after_free_under_asan(self):
        if not os.access(ASAN_CGPROF, os.X_OK):
            self.skipTest("no ASan build at %s (make asan)" % ASAN_CGPROF)
        self.check(ASAN_CGPROF)


class TestChildFoundMidStartup(CgTestCase):
    """A --subprocesses child found after its exec but before its
    interpreter is up must be probed again until it is. The round that
    found it compared its own older clock with the child's newer one,
    read the difference as 584 years and gave the child up at once: a
    Python caught in its first milliseconds was never sampled (1 run in
    ~15 of test_version_survives_the_first_sampler). Here a library's
    constructor holds the new Python 0.8 s before its interpreter."""

    SLOW_C = "#include <unistd.h>\n__attribute__((constructor)) static void slow(void) { usleep(800000); }\n"
    BUSY_CODE = "import time\ndef busy():\n  t = time.time()\n  while time.time() - t < 1.5: pass\nbusy()"

    def test_probed_until_its_runtime_is_up(self):
        cc = shutil.which("cc")
        if not cc:
            self.skipTest("need a C compiler (cc) for the slow-start library")
        with tempfile.TemporaryDirectory() as d:
            src, so = os.path.join(d, "slow.c"), os.path.join(d, "slow.so")
            with open(src, "w") as f:
                f.write(self.SLOW_C)
            subprocess.run([cc, "-shared", "-fPIC", "-o", so, src], check=True, timeout=60)
            out = os.path.join(d, "p.txt")
            # "; true": the shell forks the Python rather than exec it
            r = cgtest.run([CGPROF, "run", "-v", "--subprocesses", "-f", "collapsed", "-o", out,
                            "--", "sh", "-c", "LD_PRELOAD=%s %s -c '%s'; true"
                            % (so, PY, self.BUSY_CODE)], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("profiling python process", r.stderr)
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        busy = sum(c for s, c in stacks.items() if any(fr.startswith("busy") for fr in s))
        # 1.5 s at 100 Hz, less what a loaded machine loses
        self.assertGreater(busy, 50, (stacks, r.stderr))

if __name__ == "__main__":
    unittest.main()

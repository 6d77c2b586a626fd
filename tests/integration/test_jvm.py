"""The JVM sampler and heap summary on real HotSpot JVMs (OpenJDK 17 at
/usr/bin/java, and a JDK 25 under /usr/lib/jvm when there is one): the CPU
split of a self-measuring workload, BLOCKED and WAITING threads at the
right frames, the class histogram's exact instance count, the JVM running
on after detach, and the clear one-line errors (attach disabled, another
user, a JVM that does not answer), also across PID and mount namespaces."""
import atexit
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import cgtest

from cgtest import (BUILD, CGPROF, WORKLOADS, CgTestCase, cgprof, frame_func, lost_kinds,
                    parse_collapsed, steal_s)

JAVA_SRC = os.path.join(WORKLOADS, "java")
JAVAC = "/usr/bin/javac"
RATIO_TOLERANCE = 0.05


def find_jdks():
    """[(label, java)]: OpenJDK 17 first, then a JDK 25 if present."""
    jdks = []
    if os.access("/usr/bin/java", os.X_OK):
        jdks.append(("jdk17", "/usr/bin/java"))
    for d in sorted(glob.glob("/usr/lib/jvm/*25*")):
        exe = os.path.join(d, "bin", "java")
        if os.access(exe, os.X_OK):
            jdks.append(("jdk25", exe))
            break
    return jdks


JDKS = find_jdks()
_classes = None


def classes_dir():
    """Compile the workloads once (class files of release 17 run on every
    JDK here). Outside /tmp: the namespace test hides /tmp from the JVM."""
    global _classes
    if _classes is None:
        base = BUILD if os.path.isdir(BUILD) else None
        d = tempfile.mkdtemp(prefix="cgprof-java-", dir=base)
        os.chmod(d, 0o755)  # readable by the JVM run as nobody
        srcs = sorted(glob.glob(os.path.join(JAVA_SRC, "*.java")))
        r = subprocess.run([JAVAC, "--release", "17", "-d", d] + srcs,
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise AssertionError("javac failed: " + r.stderr)
        for root, dirs, files in os.walk(d):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        _classes = d
        atexit.register(shutil.rmtree, d, True)
    return _classes


def cgprof_has(cmd):
    """Is this subcommand wired in the cgprof binary under test?"""
    if not os.access(CGPROF, os.X_OK):
        return False
    r = cgprof(cmd, "--help", timeout=10)
    return r.returncode == 0 and "unknown command" not in r.stderr


def read_collapsed(path):
    with open(path) as f:
        return parse_collapsed(f.read())


def parse_dump(text):
    """cgprof dump output -> {thread name: (state, [frame funcs])}"""
    threads = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("Thread ") and '"' in line:
            name = line[line.index('"') + 1:line.rindex('"')]
            state = line[line.rindex("(") + 1:line.rindex(")")]
            cur = threads.setdefault(name, (state, []))
        elif line.startswith("    ") and not line.startswith("    ...") and cur is not None:
            cur[1].append(frame_func(line.strip()))
        elif not line.strip():
            cur = None
    return threads


class JvmCase(CgTestCase):
    """Starts workloads; checks each leaves no .attach_pid behind and, when
    asked, that it finished with its normal output."""

    def setUp(self):
        super().setUp()
        if not JDKS:
            self.skipTest("no java found")
        if not os.access(JAVAC, os.X_OK):
            self.skipTest("no javac at %s" % JAVAC)
        if not os.access(CGPROF, os.X_OK):
            self.skipTest("%s not built" % CGPROF)
        self.cwd = tempfile.mkdtemp(prefix="cgprof-jvm-cwd-")
        os.chmod(self.cwd, 0o777)
        # also when a subclass's setUp skips (tearDown does not run then)
        self.addCleanup(shutil.rmtree, self.cwd, True)

    def jdk(self, label):
        for lab, exe in JDKS:
            if lab == label:
                return exe
        self.skipTest("%s not installed (looked under /usr/lib/jvm)" % label)

    def start_split(self, java, jvm_args=(), prefix=(), wait_ready=True, **kw):
        """Split, running until assert_finishes_normally closes its stdin:
        a fixed lifetime raced the profiler's start on a loaded machine."""
        args = list(prefix) + [java] + list(jvm_args) + ["-cp", classes_dir(), "Split", "stdin"]
        p = self.spawn(args, cwd=self.cwd, stdin=subprocess.PIPE, **kw)
        if wait_ready:
            self.wait_for_line(p, "ready")
        return p

    def assert_no_attach_files(self, pid):
        left = glob.glob(os.path.join(self.cwd, ".attach_pid*")) + \
            glob.glob("/tmp/.attach_pid%d" % pid)
        self.assertEqual(left, [], "attach trigger files left behind")

    def assert_finishes_normally(self, p, timeout=30):
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("markers 12345", out)
        self.assertTrue(out.rstrip().endswith("done"), out)
        # a SIGQUIT that did not start the attach listener prints a dump
        self.assertNotIn("Full thread dump", out)
        return out

    def assert_one_line_error(self, r, *words):
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("cgprof: "), r.stderr)
        for w in words:
            self.assertIn(w, lines[0])


class TestJvmHeap(JvmCase):
    def setUp(self):
        super().setUp()
        if not cgprof_has("heap"):
            self.skipTest("cgprof heap is not wired into the CLI yet")

    def check_heap(self, label):
        p = self.start_split(self.jdk(label))
        r = cgprof("heap", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        marker = [l.split() for l in r.stdout.splitlines() if l.endswith(" Split$Marker")]
        self.assertEqual(len(marker), 1, r.stdout)
        self.assertEqual(int(marker[0][0]), 12345)

        r = cgprof("heap", "--format", "json", "--top", "3", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        h = json.loads(r.stdout)
        self.assertEqual(h["pid"], p.pid)
        self.assertLess(abs(h["time_ms"] / 1000 - time.time()), 60)
        self.assertEqual(len(h["classes"]), 3)
        sizes = [c["bytes"] for c in h["classes"]]
        self.assertEqual(sizes, sorted(sizes, reverse=True))
        self.assertGreater(h["classes_total"], 100)
        self.assertGreaterEqual(h["total_bytes"], sum(sizes))

        self.assert_no_attach_files(p.pid)
        self.assert_finishes_normally(p)

    def test_heap_jdk17(self):
        self.check_heap("jdk17")

    def test_heap_jdk25(self):
        self.check_heap("jdk25")

    def test_heap_and_rate_in_a_session(self):
        # attach --heap: the runtime's heap hook fills the profile's
        # summary; its rate hook warns of a rate beyond what it bears
        p = self.start_split(self.jdk("jdk17"))
        out = os.path.join(self.cwd, "prof.json")
        r = cgprof("attach", "-d", "1.5", "-r", "1500", "--heap", "-f", "codeguru", "-o", out,
                   str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("more than this JVM can be sampled at", r.stderr)
        with open(out) as f:
            heap = json.load(f)["heapSummary"]
        sizes = [c["bytes"] for c in heap["classes"]]
        self.assertGreater(len(sizes), 10, heap)
        self.assertEqual(sizes, sorted(sizes, reverse=True))
        self.assertGreaterEqual(heap["totalBytes"], sum(sizes))
        self.assertLess(abs(heap["timestamp"] / 1000 - time.time()), 60)
        self.assert_no_attach_files(p.pid)
        self.assert_finishes_normally(p)

    def test_heap_in_a_python_session(self):
        out = os.path.join(self.cwd, "prof.txt")
        r = cgprof("run", "-d", "0.5", "--heap", "-f", "collapsed", "-o", out, "--",
                   "/usr/bin/python3", "-c", "import time; time.sleep(1)", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("which has no heap summary; none is recorded", r.stderr)

    def test_not_a_jvm(self):
        p = self.spawn_sleeper("/usr/bin/python3")
        r = cgprof("heap", str(p.pid), timeout=30)
        self.assert_one_line_error(r, "not a Java process")

    def test_attach_disabled(self):
        p = self.start_split(self.jdk("jdk17"), jvm_args=["-XX:+DisableAttachMechanism"])
        r = cgprof("heap", str(p.pid), timeout=30)
        self.assert_one_line_error(r, "DisableAttachMechanism")
        self.assert_no_attach_files(p.pid)
        self.assert_finishes_normally(p)

    def test_reduced_signals(self):
        # -Xrs: the JVM does not catch SIGQUIT (one would kill it) and
        # starts its attach listener at start-up instead
        p = self.start_split(self.jdk("jdk17"), jvm_args=["-Xrs"])
        r = cgprof("heap", str(p.pid), timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Split$Marker", r.stdout)
        self.assert_no_attach_files(p.pid)
        self.assert_finishes_normally(p)

    def test_other_user(self):
        # The JVM runs as nobody; root (us) switches to the JVM's ids to
        # connect; an unrelated unprivileged user gets a one-line refusal.
        if os.geteuid() != 0:
            self.skipTest("needs root to start a JVM as another user")
        p = self.start_split(self.jdk("jdk17"), user=65534, group=65534,
                             extra_groups=[])
        r = cgprof("heap", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Split$Marker", r.stdout)
        r = subprocess.run([CGPROF, "heap", str(p.pid)], capture_output=True, text=True,
                           timeout=60, user=1, group=1, extra_groups=[])
        self.assert_one_line_error(r)
        self.assertRegex(r.stderr, "(?i)permission|user|denied|not permitted")
        self.assert_no_attach_files(p.pid)
        self.assert_finishes_normally(p)

    def test_hung_jvm_times_out(self):
        p = self.start_split(self.jdk("jdk17"))
        r = cgprof("heap", "--top", "1", str(p.pid), timeout=60)  # listener now up
        self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(p.pid, signal.SIGSTOP)
        try:
            env = dict(os.environ, CGPROF_JVM_TIMEOUT_MS="1500")
            t0 = time.monotonic()
            r = cgprof("heap", str(p.pid), timeout=60, env=env)
            took = time.monotonic() - t0
        finally:
            os.kill(p.pid, signal.SIGCONT)
        self.assert_one_line_error(r, "did not answer")
        self.assertLess(took, 10)
        self.assert_finishes_normally(p)

    def test_other_namespaces(self):
        # A private PID namespace and a private /tmp: the socket and the
        # trigger are only reachable through /proc/PID/root, under the
        # JVM's own pid (NSpid).
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare")
        probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c",
                                "mount -t tmpfs tmpfs /tmp"], capture_output=True, text=True,
                               timeout=30)
        if probe.returncode:
            self.skipTest("cannot create namespaces here: " + probe.stderr.strip()[:100])
        java = self.jdk("jdk17")
        # Classes by the cwd: when the checkout lives under /tmp its path
        # is covered by the new tmpfs, but /proc/self/cwd still leads there.
        cmd = ("cd %s && mount -t tmpfs tmpfs /tmp && exec %s -cp /proc/self/cwd Split 5"
               % (classes_dir(), java))
        p = self.spawn(["unshare", "--mount", "--pid", "--fork", "--mount-proc",
                        "sh", "-c", cmd], cwd=self.cwd)
        self.wait_for_line(p, "ready")
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            jvm = int(f.read().split()[0])
        with open("/proc/%d/status" % jvm) as f:
            nspid = [l.split()[1:] for l in f if l.startswith("NSpid:")][0]
        self.assertEqual(len(nspid), 2)  # really in its own namespace
        r = cgprof("heap", str(jvm), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Split$Marker", r.stdout)
        self.assertEqual(glob.glob("/proc/%d/root/tmp/.attach_pid*" % jvm), [])
        self.assertEqual(glob.glob(os.path.join(self.cwd, ".attach_pid*")), [])
        self.assert_finishes_normally(p)


class TestJvmSampler(JvmCase):
    def setUp(self):
        super().setUp()
        if not cgprof_has("attach") or not cgprof_has("dump"):
            self.skipTest("cgprof attach/dump are not available in this build yet")

    def check_profile(self, label):
        java = self.jdk(label)
        p = self.start_split(java)
        # states at the right frames, from one dump
        r = cgprof("dump", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        threads = parse_dump(r.stdout)
        for name in ("blocked", "waiter", "holder", "main", "deep"):
            self.assertIn(name, threads, r.stdout)
        self.assertEqual(threads["blocked"][0], "BLOCKED", r.stdout)
        self.assertEqual(threads["blocked"][1][0], "Split.blockedHere")
        self.assertEqual(threads["waiter"][0], "WAITING", r.stdout)
        self.assertIn("Split.waitHere", threads["waiter"][1])
        self.assertEqual(threads["holder"][0], "TIMED_WAITING")
        self.assertIn(threads["main"][0], ("RUNNABLE", "RUNNABLE, in native code"))
        self.assertIn("Split.main", threads["main"][1])
        self.assertNotIn("VM Thread", threads)  # no Java frames: skipped
        deep = threads["deep"][1]
        self.assertEqual(deep.count("Split.deep"), 1000, deep[:5])  # whole
        r = cgprof("dump", "--max-depth", "50", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        cut = parse_dump(r.stdout)["deep"][1]
        self.assertEqual(len(cut), 50)  # leaf side kept, the cut is said
        self.assertTrue(cut[0].startswith("java.lang.Object.wait"), cut[:3])
        self.assertEqual(cut[-1], "Split.deep")
        self.assertIn("deeper frames cut", r.stdout)

        out = os.path.join(self.cwd, "prof.txt")
        # threads in Java are sampled per CPU time (perf): at 250 Hz even a
        # thread that gets half a CPU on a busy machine gives ~700
        cpu0 = task_schedstat(p.pid)
        tids = {thread_comm(p.pid, t): t for t in cpu0}
        r = cgprof("attach", "-d", "5.5", "-r", "250", "-f", "collapsed", "-o", out,
                   "--threads", str(p.pid), timeout=60)
        cpu1 = task_schedstat(p.pid)
        self.assertEqual(r.returncode, 0, r.stderr)
        stacks = read_collapsed(out)
        roots = {s[0] for s in stacks}
        # without --idle only CPU time: main's, never a waiting thread's
        self.assertTrue(any(r.startswith("thread main ") for r in roots), roots)
        for idle in ("waiter", "holder"):
            self.assertFalse(any(r.startswith("thread %s " % idle) for r in roots), roots)
        # The BLOCKED thread is not idle to the kernel: HotSpot has the one
        # thread responsible for a contended monitor wake about once a
        # second (a timed park) to try it again, some 40 us on a CPU here.
        # A CPU-clock sample that lands there is true CPU time: never more
        # of them than it ran, and at its real frame.
        mine = {s: c for s, c in stacks.items() if s[0].startswith("thread blocked ")}
        ran = cpu1[tids["blocked"]][0] - cpu0[tids["blocked"]][0]
        self.assertLessEqual(sum(mine.values()), int(ran * 250 / 1e9) + 1, (ran, mine))
        for s in mine:
            self.assertIn("Split.blockedHere", map(frame_func, s), s)

        idle_out = os.path.join(self.cwd, "idle.txt")
        r = cgprof("attach", "-d", "1", "-r", "20", "-f", "collapsed", "-o", idle_out,
                   "--idle", "--threads", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        istacks = read_collapsed(idle_out)
        for name, fn in (("blocked", "Split.blockedHere"), ("waiter", "Split.waitHere")):
            mine = [s for s in istacks if s[0].startswith("thread %s " % name)]
            self.assertTrue(mine, "%s missing with --idle" % name)
            self.assertTrue(all(fn in map(frame_func, s) for s in mine), mine)

        self.assertIsNone(p.poll(), "Split ended under the profiles")
        got = self.assert_finishes_normally(p)
        line = [l for l in got.splitlines() if l.startswith("split ")][0]
        truth = dict(kv.split("=") for kv in line.split()[1:])
        a, b = int(truth["alpha"]), int(truth["beta"])
        want = a / (a + b)

        def has(fn):
            return lambda s: any(frame_func(f) == fn for f in s)
        na = sum(c for s, c in stacks.items() if has("Split.alpha")(s))
        nb = sum(c for s, c in stacks.items() if has("Split.beta")(s))
        self.assertGreater(na + nb, 200, stacks)
        share = na / (na + nb)
        self.assertLess(abs(share - want), RATIO_TOLERANCE,
                        "alpha share %.3f, workload measured %.3f" % (share, want))
        self.assert_no_attach_files(p.pid)

    def test_dump_lists_a_thread_in_and_out_of_the_vm(self):
        # A thread forever entering and leaving the VM went missing from
        # about 1 dump in 50 (its state and anchor read apart; paused in a
        # native wrapper's transition, where no walk starts): a dump
        # lists every Java thread, every time.
        for label in ("jdk17", "jdk25"):
            with self.subTest(jdk=label):
                p = self.spawn([self.jdk(label), "-cp", classes_dir(), "InOutVm"],
                               cwd=self.cwd, stdin=subprocess.PIPE)
                self.wait_for_line(p, "ready")
                missing = []
                for i in range(150):
                    r = cgprof("dump", str(p.pid), timeout=60)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    caller = parse_dump(r.stdout).get("caller")
                    if not caller or "InOutVm.call" not in caller[1]:
                        missing.append(i)
                self.assertEqual(missing, [], "dumps without the caller thread")
                out, err = p.communicate(timeout=30)
                self.assertEqual((p.returncode, out), (0, "done\n"), err)

    def test_profile_jdk17(self):
        self.check_profile("jdk17")

    def test_profile_jdk25(self):
        self.check_profile("jdk25")

    def test_run_waits_for_jvm(self):
        # `run` must not send SIGQUIT before the JVM handles it: a JVM
        # killed by it would exit 131 instead of 0. Repeat for timing luck.
        if not cgprof_has("run"):
            self.skipTest("cgprof run not available in this build yet")
        for label, java in JDKS:
            for i in range(2):
                # the second time without perf data: readiness must not need it
                extra = ["-XX:-UsePerfData"] if i else []
                out = os.path.join(self.cwd, "run%s%d.txt" % (label, i))
                r = cgprof("run", "-f", "collapsed", "-o", out, "--", java, *extra, "-cp",
                           classes_dir(), "Split", "1.5", timeout=60, cwd=self.cwd)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("done", r.stdout)
                self.assertNotIn("Full thread dump", r.stdout)
                stacks = read_collapsed(out)
                self.assertTrue(any("Split.alpha" in map(frame_func, s) for s in stacks),
                                "%s: no Split.alpha in %r" % (label, stacks))
                self.assertEqual(glob.glob(os.path.join(self.cwd, ".attach_pid*")), [])
            # a JVM that ends while cgprof attaches: its status, no trigger file left
            for i in range(3):
                r = cgprof("run", "-f", "collapsed", "-o", os.path.join(self.cwd, "v.txt"), "--",
                           java, "-version", timeout=60, cwd=self.cwd)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("version", r.stderr)
                self.assertEqual(glob.glob(os.path.join(self.cwd, ".attach_pid*")), [])


# JDK 21 lives in the Debian unstable root the rig builds once per machine
# (tests/rig/sid-root.sh); tests/rig/sid-run starts it there, as in a
# container (its own root and /proc, this checkout and /tmp shared), and it
# is profiled from outside.
SID_JAVA21 = "/usr/lib/jvm/java-21-openjdk-amd64/bin/java"


def sid_java21():
    """(argv prefix, classes dir as the JVM sees it), or a reason to skip."""
    java = cgtest.sid_program(SID_JAVA21)
    if not java:
        return cgtest.sid_missing() or "no JDK 21 in %s (tests/rig/sid-root.sh builds it)" \
            % cgtest.SID_ROOT
    inside = "/tmp/cgprof-java-classes"  # /tmp is the same inside the root
    if os.path.isdir(inside):
        shutil.rmtree(inside)
    shutil.copytree(classes_dir(), inside)
    return ([java], inside)


def split_lines():
    """Ground truth for line numbers: where alpha() and spin()'s body are
    in Split.java."""
    with open(os.path.join(JAVA_SRC, "Split.java")) as f:
        src = f.read().splitlines()
    alpha = [i + 1 for i, l in enumerate(src) if "static void alpha()" in l]
    start = [i + 1 for i, l in enumerate(src) if "static long spin(" in l][0]
    end = start + [i for i, l in enumerate(src[start:]) if l.strip() == "}"][0] + 1
    return alpha[0], set(range(start, end + 1))


class TestJvmWalker(JvmCase):
    """The default sampler reads HotSpot's VMStructs from outside: no
    safepoint per sample, exact lines on interpreted and compiled frames,
    inlined callees under their callers, on JDK 17, 21 and 25."""

    def java_cmd(self, label):
        if label == "jdk21":
            got = sid_java21()
            if isinstance(got, str):
                self.skipTest(got)
            return got
        return ([self.jdk(label)], classes_dir())

    def safepoints(self, path):
        try:
            with open(path) as f:
                return sum(1 for l in f if 'Safepoint "' in l)
        except FileNotFoundError:
            return 0

    def check_walker(self, label):
        java, cp = self.java_cmd(label)
        log = os.path.join(self.cwd, "sp.log")
        # the chrooted JVM writes its log where it sees our cwd's path, so
        # give it one inside its root when it has one
        log_arg = log_host = log if label != "jdk21" else "/tmp/cgprof-sp.log"
        if os.path.exists(log_host):
            os.unlink(log_host)
        p = self.spawn(java + ["-Xlog:safepoint:file=%s" % log_arg, "-cp", cp, "Split", "16"],
                       cwd=self.cwd)
        self.wait_for_line(p, "ready")
        # what the JVM does on its own in 3 s, then 6 s of profiling at 100 Hz
        time.sleep(0.5)
        b0 = self.safepoints(log_host)
        time.sleep(3)
        b1 = self.safepoints(log_host)
        out = os.path.join(self.cwd, "walk.txt")
        r = cgprof("attach", "-d", "6", "-r", "100", "-f", "collapsed", "-o", out,
                   "--threads", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("falling back", r.stderr)
        during = self.safepoints(log_host) - b1
        unprofiled = 2 * (b1 - b0)
        # thread dumps cost three safepoints per sample (1,800 in 6 s)
        self.assertLessEqual(during, unprofiled + 5,
                             "%d safepoints while profiling, %d in as long without"
                             % (during, unprofiled))
        stacks = read_collapsed(out)
        total = sum(stacks.values())
        self.assertGreater(total, 150, r.stderr)  # a loaded machine runs late
        alpha_line, spin_lines = split_lines()
        seen_alpha = seen_spin = 0
        for s, c in stacks.items():
            for f in s:
                fn, _, loc = f.partition(" (")
                line = int(loc.rstrip(")").rpartition(":")[2]) if ":" in loc else 0
                if fn == "Split.alpha":
                    self.assertEqual(line, alpha_line, s)
                    seen_alpha += c
                elif fn == "Split.spin":
                    self.assertIn(line, spin_lines, s)
                    seen_spin += c
        # alpha and spin are compiled by now: their lines come from the
        # nmethods' scope data, every sample of them has one
        self.assertGreater(seen_alpha, total // 4, stacks)
        self.assertGreater(seen_spin, total // 4, stacks)
        self.assertTrue(any(s[0].startswith("thread main ") for s in stacks), stacks)
        r = cgprof("dump", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        threads = parse_dump(r.stdout)
        for name in ("blocked", "waiter", "holder", "main", "deep"):
            self.assertIn(name, threads, r.stdout)
        self.assertEqual(threads["blocked"][0], "BLOCKED", r.stdout)
        self.assertEqual(threads["waiter"][0], "WAITING", r.stdout)
        self.assertEqual(threads["holder"][0], "TIMED_WAITING", r.stdout)
        p.kill()
        p.communicate(timeout=30)

    def test_walker_jdk17(self):
        self.check_walker("jdk17")

    def test_walker_jdk21(self):
        self.check_walker("jdk21")

    def test_walker_jdk25(self):
        self.check_walker("jdk25")

    def check_inlined(self, label):
        java, cp = self.java_cmd(label)
        # Non-safepoint debug info so a pc inside inlined code has its own
        # scope (async-profiler asks for the same through JVMTI).
        p = self.spawn(java + ["-XX:+UnlockDiagnosticVMOptions", "-XX:+PrintInlining",
                               "-XX:+DebugNonSafepoints", "-cp", cp, "Inline", "8"], cwd=self.cwd)
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line or line.startswith("ready"):
                break
            seen.append(line)
        # ground truth from the JIT itself: C2 inlined leaf into caller
        self.assertTrue(any("Inline::leaf" in l and "inline (hot)" in l for l in seen),
                        "".join(seen)[-2000:])
        time.sleep(1)
        out = os.path.join(self.cwd, "inl.txt")
        r = cgprof("attach", "-d", "2", "-r", "100", "-f", "collapsed", "-o", out,
                   "--threads", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        stacks = read_collapsed(out)
        mine = {s: c for s, c in stacks.items() if s[0].startswith("thread main ")}
        total = sum(mine.values())
        self.assertGreater(total, 50, stacks)
        under = sum(c for s, c in mine.items()
                    if len(s) >= 3 and frame_func(s[-1]) == "Inline.leaf"
                    and frame_func(s[-2]) == "Inline.caller")
        # nearly all the time is in leaf's loop
        self.assertGreater(under / total, 0.8, mine)
        p.kill()
        p.communicate(timeout=30)

    def test_inlined_jdk17(self):
        self.check_inlined("jdk17")

    def test_inlined_jdk21(self):
        self.check_inlined("jdk21")

    def test_inlined_jdk25(self):
        self.check_inlined("jdk25")


def thread_comm(pid, tid):
    try:
        with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
            return f.read().strip()
    except OSError:
        return None


def task_schedstat(pid):
    """{tid: (ns on a CPU, ns runnable waiting for one)} of pid's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                run, wait = f.read().split()[:2]
            out[int(tid)] = (int(run), int(wait))
        except (OSError, ValueError):
            pass
    return out


def summary_line(err):
    lines = [l for l in err.splitlines() if " samples in " in l and "achieved" in l]
    return lines[-1] if lines else ""


def ptrace_stops(pid, until):
    """Poll every thread of pid until until() is true: [(tid, what)] for
    each time one was found traced (TracerPid) or ptrace-stopped ('t')."""
    seen = []
    while not until():
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            break
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    st = dict(l.split(":", 1) for l in f if ":" in l)
            except OSError:
                continue
            if st.get("TracerPid", "0").strip() != "0":
                seen.append((tid, "TracerPid " + st["TracerPid"].strip()))
            if st.get("State", "").strip().startswith("t"):
                seen.append((tid, "State " + st["State"].strip()))
        time.sleep(0.002)
    return seen


class TestJvmPerfSamples(JvmCase):
    """Threads running Java code are sampled by the kernel's per-thread
    CPU clock (registers and a stack copy from the sample instant): no
    thread is ever stopped, the count follows each thread's CPU time, and
    the split agrees with the workload's own measurement within 2 points;
    where perf events are refused, one warning and pauses."""

    java_cmd = TestJvmWalker.java_cmd

    def profile_split(self, label, rate, wrap=(), seconds=8):
        java, cp = self.java_cmd(label)
        p = self.spawn(java + ["-cp", cp, "Split", "stdin"], cwd=self.cwd, stdin=subprocess.PIPE)
        self.wait_for_line(p, "ready")
        time.sleep(0.5)
        out = os.path.join(self.cwd, "perf.txt")
        cpu0, steal0 = task_schedstat(p.pid), steal_s()
        prof = subprocess.Popen(list(wrap) + [CGPROF, "attach", "-v", "-d", str(seconds), "-r",
                                              str(rate), "-f", "collapsed", "-o", out,
                                              "--threads", str(p.pid)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(prof)
        stops = ptrace_stops(p.pid, lambda: prof.poll() is not None)
        _, err = prof.communicate(timeout=60)
        cpu1, steal1 = task_schedstat(p.pid), steal_s()
        self.assertEqual(prof.returncode, 0, err)
        stacks = read_collapsed(out)
        got = self.assert_finishes_normally(p, timeout=60)
        line = [l for l in got.splitlines() if l.startswith("split ")][0]
        truth = dict(kv.split("=") for kv in line.split()[1:])
        a, b = int(truth["alpha"]), int(truth["beta"])
        main = [s for s in stacks if s[0].startswith("thread main (")]
        self.assertTrue(main, stacks)
        tid = int(main[0][0].rpartition("(")[2].rstrip(")"))
        main_cpu = (cpu1.get(tid, (0, 0))[0] - cpu0.get(tid, (0, 0))[0]) / 1e9

        def has(s, fn):
            return any(frame_func(f) == fn for f in s)
        na = sum(c for s, c in stacks.items() if has(s, "Split.alpha"))
        nb = sum(c for s, c in stacks.items() if has(s, "Split.beta"))
        nmain = sum(stacks[s] for s in main)
        return dict(stops=stops, err=err, share=na / max(1, na + nb), want=a / (a + b),
                    n=na + nb, nmain=nmain, main_cpu=main_cpu, steal=steal1 - steal0,
                    stacks=stacks)

    def check_not_stopped(self, label):
        # 1 kHz for 8 s: a few thousand samples of the main thread, so the
        # binomial spread of its share is well under a point
        got = self.profile_split(label, 1000)
        self.assertEqual(got["stops"], [], "the JVM was ptrace-stopped while sampled")
        self.assertIn("sampled by perf CPU-clock events", got["err"])
        self.assertNotIn("paused", summary_line(got["err"]))
        self.assertNotIn("warning", got["err"])
        # one sample per ms of the thread's CPU time (schedstat's)
        self.assertGreater(got["main_cpu"], 1.0, got)
        why = "%d samples of main, %.2f s of CPU, %.2f s stolen from the VM\n%s" % (
            got["nmain"], got["main_cpu"], got["steal"], got["err"])
        self.assertGreater(got["nmain"], 0.9 * 1000 * got["main_cpu"] - 30, why)
        # The CPU clock runs on the host's time: while the hypervisor has
        # the thread's vCPU it runs on, yet the guest's accounting (stat,
        # schedstat) leaves that steal out. A fresh-clone run with 2789
        # late rounds had 6451 samples in Java for 5.69 s of stat time.
        # The steal of all vCPUs bounds what this thread's clock gained.
        self.assertLess(got["nmain"], 1.1 * 1000 * (got["main_cpu"] + got["steal"]) + 30, why)
        self.assertGreater(got["n"], 1000, got["err"])
        self.assertLess(abs(got["share"] - got["want"]), 0.02,
                        "alpha share %.3f, workload measured %.3f (%d samples)"
                        % (got["share"], got["want"], got["n"]))

    def test_not_stopped_jdk17(self):
        self.check_not_stopped("jdk17")

    def test_time_in_the_vm_is_its_cpu_time_not_its_waits(self):
        """A thread inside the VM is sampled by the kernel there like
        anywhere else: each sample's native frames are unwound over its
        stack copy to the Java frame that called into the VM, and the
        Java stack is walked from there. Here it shares one CPU with a
        busy loop, so it waits for the CPU about half the time, mostly
        preempted in its system call: it is runnable (R) all that time.
        Its samples must follow its CPU time (schedstat), not its time
        runnable (counting the rounds it was R gave 1.87 samples per ms
        of CPU), and nearly none may be lost: its calls are short, so a
        round mostly finds it back in Java (weighing a walk from its
        anchor by its samples outside Java lost 6-12% of them)."""
        java, cp = self.java_cmd("jdk17")
        hog = self.spawn(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"])
        self.addCleanup(hog.kill)
        p = self.spawn(["taskset", "-c", "0"] + java + ["-cp", cp, "VmCalls", "8"],
                       cwd=self.cwd)
        self.wait_for_line(p, "ready")
        time.sleep(0.3)
        before = task_schedstat(p.pid)
        out = os.path.join(self.cwd, "vm.txt")
        r = subprocess.run([CGPROF, "attach", "-v", "-d", "5", "-r", "1000", "-f", "collapsed",
                            "-o", out, "--threads", str(p.pid)],
                           capture_output=True, text=True, timeout=60)
        after = task_schedstat(p.pid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sampled by perf CPU-clock events", r.stderr)
        stacks = read_collapsed(out)
        main = {s: c for s, c in stacks.items() if s[0].startswith("thread main (")}
        self.assertTrue(main, stacks)
        tid = int(next(iter(main))[0].rpartition("(")[2].rstrip(")"))
        cpu = (after[tid][0] - before[tid][0]) / 1e9
        wait = (after[tid][1] - before[tid][1]) / 1e9
        nmain = sum(main.values())
        in_call = sum(c for s, c in main.items()
                      if any(frame_func(f) == "sun.management.ThreadImpl.getCurrentThreadCpuTime"
                             for f in s))
        got = "%d samples of main, %.2f s on CPU, %.2f s waiting for one\n%s" % (
            nmain, cpu, wait, r.stderr)
        # the setting holds: it waited for a CPU much of the time
        self.assertGreater(wait, 1.5, got)
        self.assertGreater(cpu, 1.0, got)
        self.assertGreater(in_call, 0.9 * nmain, got)
        self.assertLess(nmain, 1.1 * 1000 * cpu + 30, got)
        self.assertGreater(nmain, 0.9 * 1000 * cpu, got)
        # its samples outside Java code were walked from the sample
        m = re.search(r"(\d+) of them outside Java code \((\d+) walked from the Java frame",
                      r.stderr)
        self.assertTrue(m, got)
        outside, walked = int(m.group(1)), int(m.group(2))
        self.assertGreater(outside, 0.8 * nmain, got)
        self.assertGreater(walked, 0.98 * outside, got)
        lost = lost_kinds(r.stderr)
        self.assertLess(lost.get("partial", 0) + lost.get("torn", 0), 0.02 * nmain, got)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(out.rstrip().endswith("done"), out)

    def check_native_method(self, label):
        """A thread inside a JNI native method (Deflater's, which runs
        zlib without calling back into the VM) is sampled there by the
        kernel: the sample's native frames are unwound to the native
        method's wrapper, which is the leaf Java frame (an nmethod named
        "native nmethod" up to JDK 22, a kind byte since), and the state
        is NATIVE, as HotSpot has it."""
        java, cp = self.java_cmd(label)
        p = self.spawn(java + ["-cp", cp, "Deflate", "4"], cwd=self.cwd)
        self.wait_for_line(p, "ready")
        out = os.path.join(self.cwd, "deflate.json")
        r = subprocess.run([CGPROF, "attach", "-v", "-d", "3", "-r", "500", "-f", "codeguru",
                            "-o", out, str(p.pid)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sampled by perf CPU-clock events", r.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        by = {}  # (leaf Java frame, state) -> samples of Deflate.main's stacks

        def walk(node, path):
            for state, n in node.get("counts", {}).items():
                if "Deflate.main" in path:
                    key = (path[-1], state)
                    by[key] = by.get(key, 0) + n
            for k, child in node.get("children", {}).items():
                walk(child, path + (k,))
        walk(doc["callgraph"], ())
        total = sum(by.values())
        native = by.get(("java.util.zip.Deflater.deflateBytesBytes", "NATIVE"), 0)
        got = "%s\n%s" % (sorted(by.items(), key=lambda x: -x[1])[:6], r.stderr)
        self.assertGreater(total, 600, got)
        self.assertGreater(native, 0.95 * total, got)
        lost = lost_kinds(r.stderr)
        self.assertLess(lost.get("partial", 0) + lost.get("torn", 0), 0.02 * total, got)
        p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0)

    def test_native_method_jdk17(self):
        self.check_native_method("jdk17")

    def test_native_method_jdk21(self):
        self.check_native_method("jdk21")

    def test_native_method_jdk25(self):
        self.check_native_method("jdk25")

    def test_not_stopped_jdk21(self):
        self.check_not_stopped("jdk21")

    def test_not_stopped_jdk25(self):
        self.check_not_stopped("jdk25")

    def test_perf_refused_falls_back_to_pausing(self):
        # a seccomp filter refusing perf_event_open, as in a container
        deny = os.path.join(BUILD, "tests", "programs", "deny_perf")
        if not os.access(deny, os.X_OK):
            self.skipTest("%s not built (make testprogs)" % deny)
        got = self.profile_split("jdk17", 200, wrap=[deny], seconds=6)
        warnings = [l for l in got["err"].splitlines() if "warning" in l]
        self.assertEqual(len(warnings), 1, got["err"])
        for word in ("perf sampling", "not permitted", "paused", "system calls"):
            self.assertIn(word, warnings[0])
        self.assertIn("paused", summary_line(got["err"]))  # the summary's pause times
        self.assertTrue(got["stops"], "pausing was asked for but never seen")
        self.assertGreater(got["n"], 150, got["err"])
        self.assertLess(abs(got["share"] - got["want"]), RATIO_TOLERANCE,
                        "alpha share %.3f, workload measured %.3f" % (got["share"], got["want"]))


if __name__ == "__main__":
    unittest.main()

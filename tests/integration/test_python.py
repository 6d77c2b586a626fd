"""The CPython sampler against ground truth, on every CPython found:
pyenv 3.6-3.13, Debian's 3.14, 3.15 and 3.14 debug build in the sid root
(profiled from outside it, as a container), plus /usr/bin/python3 (a
static build). A version that is not installed is reported as skipped,
with the reason.

The workload measures its own CPU split between alpha() and beta(); the
profile must agree within 5 percentage points. An idle thread is absent
without --idle and present with it; the hot loop's line is the reported
line; a 500-deep recursion appears whole; dump names the frames.

Thread names: each thread of threadnames.py burns CPU in a function of
its own and the workload says which name it gave each; dump, --threads
roots and speedscope profile names must carry those names (read from
threading), not the OS name."""
import json
import os
import re
import tempfile
import time
import unittest

import cgtest
from cgtest import WORKLOADS, CgTestCase, cgprof, frame_func, parse_collapsed

SPLIT = os.path.join(WORKLOADS, "python", "split.py")
TNAMES = os.path.join(WORKLOADS, "python", "threadnames.py")
STEADY = os.path.join(WORKLOADS, "python", "steady.py")
SYSCALL_LINE = os.path.join(WORKLOADS, "python", "syscall_line.py")
CHURN_SPLIT = os.path.join(WORKLOADS, "python", "churn_split.py")
HOT_LINE = next(i + 1 for i, l in enumerate(open(SPLIT)) if "HOT-ALPHA" in l)
PYTHONS = {ver: (label, exe) for label, exe, ver in cgtest.find_pythons()
           if label.startswith(("pyenv", "sid"))}
DEBUG = cgtest.sid_pythons(debug=True)
SYSTEM = [(label, exe) for label, exe, ver in cgtest.find_pythons() if label == "system-python3"]


def profile_split(case, exe, extra=()):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "p.txt")
        r = cgprof("run", "-r", "250", "-f", "collapsed", "-o", out, *extra, "--",
                   exe, SPLIT, "2.5", timeout=120)
        case.assertEqual(r.returncode, 0, r.stderr)
        truth = json.loads(r.stdout.strip().splitlines()[-1])
        with open(out) as f:
            return parse_collapsed(f.read()), truth, r.stderr


class PerInterpreter:
    """Mixed into one TestCase per interpreter (see below): skipped, with
    the reason, where that interpreter is not installed."""
    exe = None
    label = None
    sid = False

    def setUp(self):
        super().setUp()
        if not self.exe:
            self.skipTest("%s is not installed%s" % (
                self.label, "" if not self.sid else " (%s)" % cgtest.sid_missing()))


class PythonVersionTests(PerInterpreter):

    def test_split_matches_ground_truth(self):
        stacks, truth, err = profile_split(self, self.exe)
        funcs = lambda s: [frame_func(f) for f in s]
        a = sum(c for s, c in stacks.items() if "alpha" in funcs(s))
        b = sum(c for s, c in stacks.items() if "beta" in funcs(s) and "deep" not in funcs(s))
        self.assertGreater(a + b, 200, "too few samples: %s" % err)
        measured = a / (a + b)
        expected = truth["alpha"] / (truth["alpha"] + truth["beta"])
        self.assertLess(abs(measured - expected), 0.05,
                        "alpha share %.3f, workload measured %.3f (%s)" % (measured, expected, err))
        # without --idle the sleeping thread is all but absent: it blocks
        # in one wait and is runnable only when told to stop at the end
        idle = sum(c for s, c in stacks.items() if "idle_wait" in funcs(s))
        self.assertLess(idle / sum(stacks.values()), 0.02, "idle thread counted without --idle")
        # the hot statement of alpha is the line reported for most alpha leaves
        leaves = {}
        for s, c in stacks.items():
            if frame_func(s[-1]) == "alpha":
                line = int(re.search(r":(\d+)\)$", s[-1]).group(1))
                leaves[line] = leaves.get(line, 0) + c
        self.assertEqual(max(leaves, key=leaves.get), HOT_LINE, leaves)
        # the 500-deep recursion appears whole, below main and <module>
        deepest = max((sum(1 for f in s if frame_func(f) == "deep"), s) for s in stacks)
        self.assertEqual(deepest[0], 500, "deepest recursion seen: %d" % deepest[0])
        self.assertEqual(frame_func(deepest[1][0]), "<module>")

    def test_idle_thread_with_idle(self):
        stacks, truth, err = profile_split(self, self.exe, ("--idle", "--threads"))
        funcs = lambda s: [frame_func(f) for f in s]
        idle = [s for s in stacks if "idle_wait" in funcs(s)]
        # the sleeper is sampled every round, as often as the busy main thread
        n_idle = sum(stacks[s] for s in idle)
        n_main = sum(c for s, c in stacks.items() if "main" in funcs(s))
        self.assertGreater(n_idle, 0.8 * n_main, "sleeper thread missing with --idle")
        # it is its own thread, rooted at a thread frame, under sleeper()
        for s in idle:
            self.assertTrue(s[0].startswith("thread "), s)
            self.assertIn("sleeper", funcs(s))
            self.assertNotIn("alpha", funcs(s))

    def test_dump_names_frames(self):
        p = self.spawn([self.exe, SPLIT, "20"])
        time.sleep(1.0)
        r = cgprof("dump", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"CPython 3\.\d+")
        # the busy main thread: in alpha, beta or cpu under main, or in
        # main itself between those calls (its own share of the loop)
        m = re.search(r'"MainThread" \(running\)\n((?:    .*\n)+)', r.stdout)
        self.assertTrue(m, r.stdout)
        frames = re.findall(r"    (\S+) \(.*split\.py:(\d+)\)", m.group(1))
        self.assertEqual([f for f, _ in frames[-2:]], ["main", "<module>"], r.stdout)
        if len(frames) > 2:
            self.assertIn(frames[-3][0], ("alpha", "beta", "cpu"), r.stdout)
        else:
            with open(SPLIT) as f:
                src = f.read().splitlines()
            loop = src.index("    while time.monotonic() < deadline:") + 1
            body = src.index('        spent["beta"] += t2 - t1') + 1
            self.assertTrue(loop <= int(frames[-2][1]) <= body, r.stdout)
        # the sleeper: threading's wait frames, then idle_wait <- sleeper
        self.assertRegex(r.stdout, r"\(idle\)\n(    \S*wait \(.*threading\.py:\d+\)\n)+"
                                   r"    idle_wait \(.*split\.py:\d+\)\n    sleeper")
        self.assertIsNone(p.poll())


    def test_attach_detach_leaves_it_unharmed(self):
        """Five attach/detach cycles in the middle of a run: the target
        is never left stopped or traced and ends with its normal output."""
        p = self.spawn([self.exe, SPLIT, "4"])
        time.sleep(0.5)
        for i in range(5):
            r = cgprof("attach", "-d", "0.3", "-f", "collapsed", "-o", "-", str(p.pid))
            self.assertEqual(r.returncode, 0, "cycle %d: %s" % (i, r.stderr))
            self.assertIn("main (", r.stdout, "cycle %d" % i)
            with open("/proc/%d/status" % p.pid) as f:
                status = f.read()
            self.assertRegex(status, r"TracerPid:\s+0\n", "cycle %d" % i)
            self.assertNotRegex(status, r"State:\s+[tT]", "cycle %d" % i)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        truth = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(sorted(truth), ["alpha", "beta", "deep"])


def count_syscalls(path):
    """{syscall: calls} from the table `strace -c -o path` writes."""
    calls = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls


class SampleCostTests:
    """Mixed into the per-interpreter cases: what one sample costs in
    system calls, counted by strace, on a stack that stays put."""

    def test_a_sample_costs_a_handful_of_system_calls(self):
        """steady.py: one thread 30 frames deep in a loop of bytecode, one
        asleep. Per round the thread states come in one process_vm_readv
        and the busy thread's whole stack in one more (its plan: frames,
        head and code objects, twice over to verify), besides the exec
        check every 10 ms; /proc costs a stat read a thread and a run-time
        read at most every 2 ms. Before plans it was 7 reads a sample;
        every kept stack must still be whole, and the busy thread be
        sampled in as many rounds as it ran."""
        with tempfile.TemporaryDirectory() as d:
            counts = os.path.join(d, "strace.txt")
            res = busy_share(self, self.exe, 30, cgwrap=[
                "strace", "-f", "-c", "-o", counts,
                "-e", "trace=process_vm_readv,pread64,openat,getdents64"])
            calls = count_syscalls(counts)
        rounds, err = res["rounds"], res["err"]
        self.assertGreater(rounds, 600, err)
        per = {k: v / rounds for k, v in calls.items()}
        self.assertLess(per.get("process_vm_readv", 0), 2.6, (per, err))
        self.assertLess(per.get("pread64", 0), 3.2, (per, err))
        # the thread list and the files are opened once, not each round
        self.assertLess(per.get("getdents64", 0) + per.get("openat", 0), 0.25, (per, err))
        self.assertGreater(res["whole"], 0.99, err)
        # a thread on a CPU whenever it is not preempted: sampled each
        # round but those it spent waiting for a CPU (a loaded machine)
        self.assertGreater(res["share"], res["truth"] - 0.1, (res, err))


def busy_share(case, exe, depth, cgwrap=()):
    """Profile steady.py (DEPTH frames) with `cgprof attach` at 500 Hz for
    3 s (under cgwrap): {share: of rounds with the busy stack, whole: of
    those with all DEPTH frames, truth: the workload's own CPU share of
    its loop, rounds, err: cgprof's stderr}."""
    p = case.spawn([exe, STEADY, "4", str(depth)])
    case.wait_for_line(p, "ready")
    time.sleep(0.3)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "p.txt")
        env = dict(os.environ)
        if cgwrap and "ASAN_OPTIONS" in env:
            # LeakSanitizer cannot run under a tracer (strace): it would
            # end an ASan build with an error of its own
            env["ASAN_OPTIONS"] += ":detect_leaks=0"
        r = cgtest.run(list(cgwrap) + [cgtest.CGPROF, "attach", "-r", "500", "-d", "3",
                                       "-f", "collapsed", "-o", out, str(p.pid)], timeout=120,
                       env=env)
        case.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            stacks = parse_collapsed(f.read())
    m = re.search(r"(\d+) samples in ([\d.]+) s, ([\d.]+) Hz achieved", r.stderr)
    case.assertIsNotNone(m, r.stderr)
    rounds = float(m.group(2)) * float(m.group(3))
    funcs = lambda s: [frame_func(f) for f in s]
    busy = sum(c for s, c in stacks.items() if "spin" in funcs(s))
    whole = sum(c for s, c in stacks.items()
                if funcs(s)[-1] == "spin" and funcs(s).count("descend") == depth)
    out, err = p.communicate(timeout=60)
    case.assertEqual(p.returncode, 0, err)
    truth = json.loads(out.strip().splitlines()[-1])
    return {"share": busy / rounds, "whole": whole / max(1, busy), "rounds": rounds,
            "truth": truth["cpu_s"] / truth["wall_s"], "err": r.stderr}


def dump_threads(text):
    """[(tid, name, [frame functions, leaf first])] of a `cgprof dump`."""
    out = []
    for m in re.finditer(r'^Thread (\d+) "(.*)" \(\w+\)\n((?:    .*\n?)*)', text, re.M):
        out.append((int(m.group(1)), m.group(2),
                    [frame_func(l.strip()) for l in m.group(3).splitlines()]))
    return out


def os_thread_name(pid, tid):
    with open("/proc/%d/task/%d/comm" % (pid, tid), encoding="utf-8", errors="replace") as f:
        return f.read().rstrip("\n")


class ThreadNameTests(PerInterpreter):

    def test_dump_prints_interpreter_names(self):
        p = self.spawn([self.exe, TNAMES, "30"])
        names = json.loads(self.wait_for_line(p, "{"))
        time.sleep(0.3)
        r = cgprof("dump", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        threads = dump_threads(r.stdout)
        for func, want in names.items():
            got = [(tid, name) for tid, name, funcs in threads if func in funcs]
            self.assertEqual(len(got), 1, "%s: %s\n%s" % (func, got, r.stdout))
            tid, name = got[0]
            self.assertEqual(name, want, r.stdout)
            # the OS knows the thread by another name (python3.x, or on
            # 3.14+ the first 15 bytes of the original name): the
            # interpreter's own one won
            if want != "MainThread":
                self.assertNotEqual(os_thread_name(p.pid, tid), want)
        self.assertIn("stopper", [name for _, name, _ in threads])
        self.assertIsNone(p.poll())

    def profile_names(self, fmt):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p")
            r = cgprof("run", "-r", "100", "--threads", "-f", fmt, "-o", out, "--",
                       self.exe, TNAMES, "2.5", timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            names = json.loads(r.stdout.strip().splitlines()[0])
            with open(out, encoding="utf-8") as f:
                return names, f.read(), r.stderr

    def test_thread_roots_carry_interpreter_names(self):
        names, text, err = self.profile_names("collapsed")
        stacks = parse_collapsed(text)
        seen = {}
        tids = {}
        for s, c in stacks.items():
            funcs = [frame_func(f) for f in s]
            if "spin_unregistered" in funcs:
                # before threading knows the thread: its OS name
                root = re.match(r"thread (.*) \((\d+)\)$", s[0])
                self.assertTrue(root, s[0])
                self.assertNotIn(root.group(1), names.values(), s)
                tids.setdefault("spin_unregistered", set()).add(root.group(2))
                seen[("spin_unregistered", "")] = seen.get(("spin_unregistered", ""), 0) + c
            for func, want in names.items():
                if func not in funcs:
                    continue
                root = re.match(r"thread (.*) \((\d+)\)$", s[0])
                self.assertTrue(root, s[0])
                # until the next read of the registry (at most a second),
                # the renamed thread may still show its first name
                # the thread that registered late has its name from the
                # first sample after (no fallback to the OS name)
                ok = [want] + (["before-rename"] if func == "spin_renamed" else [])
                self.assertIn(root.group(1), ok, s)
                seen[(func, root.group(1))] = seen.get((func, root.group(1)), 0) + c
                tids.setdefault(func, set()).add(root.group(2))
        for func, want in names.items():
            self.assertGreater(seen.get((func, want), 0), 10, "%s as %r: %s (%s)" % (
                func, want, seen, err))
        # 0.4 s of CPU unknown at 100 Hz, then the same thread known
        self.assertGreater(seen.get(("spin_unregistered", ""), 0), 10, seen)
        self.assertEqual(tids["spin_unregistered"], tids["spin_late"], tids)
        self.assertEqual(len(tids["spin_late"]), 1, tids)

    def test_speedscope_profiles_named_after_threads(self):
        names, text, err = self.profile_names("speedscope")
        doc = json.loads(text)
        profiles = [re.match(r"thread (.*) \(\d+\)$", pr["name"]) for pr in doc["profiles"]]
        self.assertTrue(all(profiles), [pr["name"] for pr in doc["profiles"]])
        got = set(m.group(1) for m in profiles)
        self.assertLessEqual(set(names.values()), got, err)


class TestLayouts(unittest.TestCase):
    NOT_UNDER_ASAN = "checks the committed layout table against the headers; runs no cgprof"

    def test_committed_table_is_what_the_headers_give(self):
        """src/python/layouts.gen.c is exactly what the generator makes
        from the CPython headers on this machine (for the versions here)."""
        gen = os.path.join(cgtest.ROOT, "scripts", "gen-python-layouts.py")
        r = cgtest.run(["/usr/bin/python3", gen], timeout=300)
        if r.returncode and "no CPython" in r.stderr:
            self.skipTest(r.stderr.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(cgtest.ROOT, "src", "python", "layouts.gen.c")) as f:
            committed = f.read()
        self.assertEqual(r.stdout.strip(), committed.strip(),
                         "run `make layouts` and commit the result")


class TestPythonOptions(CgTestCase):
    def setUp(self):
        super().setUp()
        if not SYSTEM:
            self.skipTest("no /usr/bin/python3")
        self.exe = SYSTEM[0][1]

    def test_nonblocking_never_pauses_and_keeps_the_split(self):
        stacks, truth, err = profile_split(self, self.exe, ("--nonblocking",))
        self.assertNotIn("paused", err)
        a = sum(c for s, c in stacks.items() if any(frame_func(f) == "alpha" for f in s))
        b = sum(c for s, c in stacks.items()
                if any(frame_func(f) == "beta" for f in s) and not any(frame_func(f) == "deep" for f in s))
        expected = truth["alpha"] / (truth["alpha"] + truth["beta"])
        self.assertLess(abs(a / (a + b) - expected), 0.05, err)

    def test_subprocesses_follows_python_children(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            # the command is a shell; the Python work happens in its child
            r = cgprof("run", "--subprocesses", "-f", "collapsed", "-o", out, "--", "sh", "-c",
                       "%s %s 2 >/dev/null" % (self.exe, SPLIT), timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        roots = {s[0] for s in stacks}
        self.assertTrue(roots, r.stderr)
        # program and script name only: arguments may hold secrets
        self.assertTrue(all(re.match(r"process \d+ \(python[\d.]* split\.py\)$", x) for x in roots),
                        roots)
        self.assertTrue(any("alpha" in map(frame_func, s) for s in stacks))

    def test_max_depth_cuts_and_says_so(self):
        stacks, truth, err = profile_split(self, self.exe, ("--max-depth", "50"))
        self.assertTrue(all(len(s) <= 51 for s in stacks), max(map(len, stacks)))
        cut = [s for s in stacks if s[0] == "<Truncated>"]
        self.assertTrue(cut and all(len(s) == 51 for s in cut))
        self.assertTrue(all(frame_func(f) == "deep" for s in cut for f in s[1:-2]))
        self.assertRegex(err, r"\d+ stacks cut at --max-depth")

    def test_max_depth_from_config_and_option_beats_it(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "cgprof.conf")
            with open(conf, "w") as f:
                f.write("max_depth = 30\n")
            stacks, _, err = profile_split(self, self.exe, ("--config", conf))
            self.assertEqual(max(map(len, stacks)), 31, err)
            self.assertRegex(err, r"\d+ stacks cut at --max-depth")
            stacks, _, err = profile_split(self, self.exe, ("--config", conf, "--max-depth", "60"))
            self.assertEqual(max(map(len, stacks)), 61, err)


class TestLaunchers(CgTestCase):
    """run follows a launcher to the interpreter it starts, whether it
    execs it (env, nice, chroot, a shell's exec) or runs it as a child
    (timeout, a shell script): the profile is the script's, the exit
    status the launcher's."""

    def setUp(self):
        super().setUp()
        if not SYSTEM:
            self.skipTest("no /usr/bin/python3")
        self.exe = SYSTEM[0][1]

    def check(self, argv, status=0):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("run", "-r", "200", "-f", "collapsed", "-o", out, "--", *argv, timeout=120)
            self.assertEqual(r.returncode, status, r.stderr)
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        funcs = lambda s: [frame_func(f) for f in s]
        a = sum(c for s, c in stacks.items() if "alpha" in funcs(s))
        b = sum(c for s, c in stacks.items() if "beta" in funcs(s) and "deep" not in funcs(s))
        self.assertGreater(a + b, 100, "%s: %s" % (argv[0], r.stderr))
        self.assertGreater(a, b, argv[0])
        return r

    def test_exec_launchers(self):
        for pre in (["env", "X=1"], ["nice", "-n", "1"], ["sh", "-c", 'exec "$0" "$@"']):
            with self.subTest(launcher=pre[0]):
                self.check(pre + [self.exe, SPLIT, "1.5"])

    def test_launchers_that_fork(self):
        self.check(["timeout", "60", self.exe, SPLIT, "1.5"])
        # a shell that runs it as a child, then exits with its own status
        self.check(["sh", "-c", '"$0" "$@" >/dev/null; exit 7', self.exe, SPLIT, "1.5"], status=7)

    def test_chroot_into_another_root(self):
        """`cgprof run -- chroot ROOT python3.14 ...`: the interpreter's
        files are found through /proc/PID/root and the chroot's paths."""
        why = cgtest.sid_missing()
        if why:
            self.skipTest(why)
        code = ("import time\n"
                "def spin_in_root():\n"
                "    t = time.time()\n"
                "    while time.time() - t < 1.5: pass\n"
                "spin_in_root()\n")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("run", "-r", "200", "-f", "collapsed", "-o", out, "--", "chroot",
                       cgtest.SID_ROOT, "python3.14", "-c", code, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        spin = sum(c for s, c in stacks.items() if frame_func(s[-1]) == "spin_in_root")
        self.assertGreater(spin, 0.8 * sum(stacks.values()), stacks)


class TestVersionLimits(CgTestCase):
    def test_unsupported_version_is_named_with_the_range(self):
        py27 = os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python")
        if not os.access(py27, os.X_OK):
            self.skipTest("no CPython 2.7 on this machine")
        p = self.spawn_sleeper(py27)
        r = cgprof("attach", "-d", "1", str(p.pid))
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r"CPython 2\.7, which is not supported; "
                                   r"cgprof reads CPython 3\.6-3\.15$")
        self.assertIsNone(p.poll())


class SyscallLineTests(PerInterpreter):
    """The default mode's share of samples on a system call's line against
    the CPU share the workload measures for it, at 1 kHz: alone on a CPU,
    and sharing one with a busy loop. There the scheduler preempts the
    thread at the call's return (the call brings its run time up to date)
    and it waits for milliseconds at that line: a sampler that took /proc's
    R for "on a CPU" counted the wait as CPU time there (measured: 45% of
    the samples on a line of 1.5%; austin 3.7 does the same)."""

    def line_share(self, contended):
        cpu = min(os.sched_getaffinity(0))
        extra = []
        if contended:
            hog = self.spawn(["sh", "-c", "while :; do :; done"])
            os.sched_setaffinity(hog.pid, {cpu})
            extra = ["--pin", str(cpu)]
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgprof("run", "-r", "1000", "-f", "collapsed", "-o", out, "--",
                       self.exe, SYSCALL_LINE, "5", *extra, timeout=120)
            if contended:
                hog.kill()
            self.assertEqual(r.returncode, 0, r.stderr)
            truth = json.loads(r.stdout.strip().splitlines()[-1])
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        in_loop = {s: c for s, c in stacks.items() if frame_func(s[-1]) == "loop"}
        total = sum(in_loop.values())
        on_line = sum(c for s, c in in_loop.items() if s[-1].endswith(":%d)" % truth["line"]))
        # samples are CPU time: one per millisecond the thread ran, not
        # one per millisecond it was runnable
        self.assertGreater(total, 0.75 * 1000 * truth["cpu_s"], r.stderr)
        self.assertLess(total, 1.15 * 1000 * truth["cpu_s"], r.stderr)
        got, own = on_line / total, truth["syscall_share"]
        self.assertLessEqual(got, max(1.5 * own, own + 0.01),
                             "%d of %d samples (%.2f%%) on the system call's line, its CPU "
                             "share %.2f%% (%s)" % (on_line, total, 100 * got, 100 * own,
                                                    "contended" if contended else "alone"))

    def test_syscall_line_gets_its_share(self):
        self.line_share(contended=False)

    def test_syscall_line_gets_its_share_on_a_busy_cpu(self):
        self.line_share(contended=True)


class ChurnSplitTests(PerInterpreter):
    """A thread whose stack changes faster than a read from outside takes
    (a generator resumed and a function called every few hundred
    nanoseconds), in random turns with one that holds still: the default
    mode's split between the two against the CPU time the workload
    measures for each, with cgprof and the workload on different CPUs so
    the reads and the stack's changes overlap for real. Dropping the reads
    that tore - they are of the churning code - put churn 17-20 points
    under its share (measured on 3.10 and 3.13)."""

    def test_churning_stack_gets_its_share(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("needs two CPUs: reads overlapping the stack's changes")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.txt")
            r = cgtest.run([cgtest.CGPROF, "run", "-r", "1000", "-f", "collapsed", "-o", out, "--",
                            self.exe, CHURN_SPLIT, "4", "--pin", str(cpus[1])], timeout=120,
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpus[0]}))
            self.assertEqual(r.returncode, 0, r.stderr)
            truth = json.loads(r.stdout.strip().splitlines()[-1])
            with open(out) as f:
                stacks = parse_collapsed(f.read())
        funcs = lambda s: [frame_func(f) for f in s]
        churn = sum(c for s, c in stacks.items() if "churn" in funcs(s))
        steady = sum(c for s, c in stacks.items() if "steady" in funcs(s))
        self.assertGreater(churn + steady, 0.75 * 1000 * truth["cpu_s"], r.stderr)
        got = churn / (churn + steady)
        self.assertLess(abs(got - truth["churn"]), 0.03,
                        "churn %.1f%% of %d samples, its CPU share %.1f%% (%s)"
                        % (100 * got, churn + steady, 100 * truth["churn"], r.stderr))
        # and whole: every churn sample under main, its leaf one of the
        # functions the phase runs
        for s, c in stacks.items():
            f = funcs(s)
            if "churn" in f:
                self.assertEqual(f[f.index("churn") - 1], "main", s)
                self.assertIn(f[-1], ("churn", "relay", "hop"), s)


def make_case(label, exe):
    return type("TestPython" + re.sub(r"\W", "_", label),
                (PythonVersionTests, SampleCostTests, CgTestCase), {"exe": exe, "label": label})


def make_tn_case(label, exe):
    return type("TestThreadNames" + re.sub(r"\W", "_", label),
                (ThreadNameTests, CgTestCase), {"exe": exe, "label": label})


for minor in range(6, 16):
    label, exe = PYTHONS.get((3, minor), ("CPython 3.%d" % minor, None))
    globals()["TestPython3_%d" % minor] = make_case("3_%d" % minor, exe)
    globals()["TestPython3_%d" % minor].label = label
    globals()["TestPython3_%d" % minor].sid = minor >= 14
    globals()["TestThreadNames3_%d" % minor] = make_tn_case("3_%d" % minor, exe)
    globals()["TestThreadNames3_%d" % minor].label = label
    globals()["TestThreadNames3_%d" % minor].sid = minor >= 14
# The system-call line: the on-CPU test is the target's, not a layout's;
# one interpreter of each frame reader (3.11-3.13 and 3.14+ chunks) and
# the 3.11 where the bias was first seen.
for minor in (11, 13, 14):
    label, exe = PYTHONS.get((3, minor), ("CPython 3.%d" % minor, None))
    globals()["TestSyscallLine3_%d" % minor] = type(
        "TestSyscallLine3_%d" % minor, (SyscallLineTests, CgTestCase),
        {"exe": exe, "label": label, "sid": minor >= 14})
# The churning stack: one interpreter of each frame reader (<= 3.10 heap
# frames, 3.11-3.12 through the cframe, 3.13, 3.14+).
for minor in (10, 11, 13, 14):
    label, exe = PYTHONS.get((3, minor), ("CPython 3.%d" % minor, None))
    globals()["TestChurnSplit3_%d" % minor] = type(
        "TestChurnSplit3_%d" % minor, (ChurnSplitTests, CgTestCase),
        {"exe": exe, "label": label, "sid": minor >= 14})
# A debug build: other struct sizes, so its layout must come from the
# target's _Py_DebugOffsets, not from the release row.
label, exe, _ = (DEBUG or [("CPython 3.14 debug build", None, None)])[0]
TestPython3_14_debug = make_case("3_14_debug", exe)
TestPython3_14_debug.label = label
TestPython3_14_debug.sid = True
TestThreadNames3_14_debug = make_tn_case("3_14_debug", exe)
TestThreadNames3_14_debug.label = label
TestThreadNames3_14_debug.sid = True
for label, exe in SYSTEM:
    globals()["TestPython_system"] = make_case("system", exe)
    globals()["TestPython_system"].label = label
    globals()["TestThreadNames_system"] = make_tn_case("system", exe)
    globals()["TestThreadNames_system"].label = label
# The sanitized rerun reads each frame reader through its versions at the
# ends of its range (3.6 and 3.10 the frame chain, 3.11 and 3.12 the
# cframe; 3.13, 3.14 and 3.15 each their own): the versions between
# those, and Debian's own 3.11, give the same code other offsets only.
for minor in (7, 8, 9):
    for kind in ("TestPython3_%d", "TestThreadNames3_%d"):
        globals()[kind % minor].NOT_UNDER_ASAN = (
            "3.6-3.10 read through the same frame chain; 3.6 and 3.10 run under ASan")
for kind in ("TestPython_system", "TestThreadNames_system"):
    if kind in globals():
        globals()[kind].NOT_UNDER_ASAN = (
            "the 3.11 layout of the pyenv 3.11 run under ASan, from Debian's build")

if __name__ == "__main__":
    unittest.main()

"""`cgprof top` in a real terminal: tmux runs it in a pane, send-keys
presses its keys and capture-pane reads the screen. Python and Java
workloads that measure their own CPU split give the shares the screen
must show; every key is checked for what it says; quitting, Ctrl-C,
SIGTERM and the target's exit must leave the terminal in its normal
modes and the target running to its normal end. Also --once (what
scripts read) and the refusals without a terminal."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from cgtest import CGPROF, WORKLOADS, CgTestCase, cgprof

TOP_HOT = os.path.join(WORKLOADS, "python", "top_hot.py")
TOP_EXEC = os.path.join(WORKLOADS, "python", "top_exec.py")
PYTHON = sys.executable if sys.executable else "/usr/bin/python3"
TMUX = shutil.which("tmux")
# Share of the hot function in its thread's split, screen against the
# workload's own CPU clock: ~300 samples at 100 Hz in 3 s (binomial sd
# ~2.5%); the JVM's thread dumps come at ~20 Hz, so it gets more room.
PY_TOLERANCE = 0.10
JAVA_TOLERANCE = 0.15
KEYS_LINE = ("keys: 1-5 < > sort  p pause  i idle  t T thread  a all threads  s stack  "
             "w window  q quit")

ROW = re.compile(r"^\s*(\d+\.\d)\s+(\d+\.\d)\s+(\S+)\s+(\S+)  (.+)$")


def parse_rows(screen):
    rows = []
    for line in screen.splitlines():
        m = ROW.match(line)
        if m:
            label = m.group(5).rstrip()
            rows.append({"own": float(m.group(1)), "total": float(m.group(2)),
                         "label": label, "func": label.split(" (", 1)[0]})
    return rows


def samples_of(screen):
    m = re.search(r"^samples (\d+) in", screen, re.M)
    return int(m.group(1)) if m else None


def row(rows, func):
    for r in rows:
        if r["func"] == func:
            return r
    return None


def terminal_modes_ok(stty):
    """The shell's terminal after cgprof: line editing and echo back on."""
    words = set(stty.split())
    return "icanon" in words and "echo" in words and "-icanon" not in words


class Tmux:
    """A private tmux server (its own socket, not the user's), started in
    the foreground (-D) so it does not depend on daemon()."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "tmux.sock")
        conf = os.path.join(tmp, "tmux.conf")
        with open(conf, "w") as f:
            f.write("set -g history-limit 1000\n")
        self.server = subprocess.Popen([TMUX, "-D", "-S", self.sock, "-f", conf],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise AssertionError("tmux server did not start")
            time.sleep(0.05)
        self.n = 0

    def tmux(self, *args):
        r = subprocess.run([TMUX, "-S", self.sock] + list(args), capture_output=True,
                           text=True, timeout=30)
        if r.returncode:
            raise AssertionError("tmux %s: %s" % (args[0], r.stderr.strip()))
        return r.stdout

    def start(self, cmd, x=130, y=40):
        """Run cmd in a new session; after it the pane's shell writes the
        exit status to rc and the terminal's modes to stty."""
        self.n += 1
        self.name = "top%d" % self.n
        self.rc = os.path.join(self.tmp, "rc%d" % self.n)
        self.stty = os.path.join(self.tmp, "stty%d" % self.n)
        # job control (set -m) makes cgprof a foreground job, as from a
        # login shell: the terminal's Ctrl-C and Ctrl-Z go to its process
        # group alone (a shell without it shares an orphaned group, where
        # the kernel drops Ctrl-Z); the trap keeps the shell alive anyway
        script = "set -m; trap : INT; %s; echo $? > %s.tmp; stty -a > %s; mv %s.tmp %s; sleep 600" % (
            cmd, self.rc, self.stty, self.rc, self.rc)
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(x), "-y", str(y),
                  "sh", "-c", script)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def frame(self, timeout=3):
        """The screen once a frame is whole. ncurses paints one in many
        writes, and capture-pane can land between them (a CI run saw the
        header sorted by name over rows still sorted by total). top parks
        its hidden cursor at home when a frame is done; the screen and
        the cursor are read in one tmux command, so no output is taken
        in between. After timeout: the last screen, whatever it is."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.tmux("capture-pane", "-p", "-t", self.name, ";",
                            "display-message", "-p", "-t", self.name,
                            "#{cursor_x},#{cursor_y}")
            screen, _, cursor = out.rstrip("\n").rpartition("\n")
            if cursor == "0,0" or time.monotonic() > deadline:
                return screen + "\n"
            time.sleep(0.01)

    def keys(self, *k):
        self.tmux("send-keys", "-t", self.name, *k)

    def pane_pid(self):
        return int(self.tmux("display-message", "-p", "-t", self.name, "#{pane_pid}"))

    def exit_status(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.rc):
                with open(self.rc) as f:
                    rc = int(f.read().strip())
                with open(self.stty) as f:
                    return rc, f.read()
            time.sleep(0.05)
        raise AssertionError("cgprof top did not exit; screen:\n" + self.screen())

    def close(self):
        try:
            self.tmux("kill-server")
        except (AssertionError, subprocess.TimeoutExpired):
            pass
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()


class TopCase(CgTestCase):
    def setUp(self):
        super().setUp()
        if not os.access(CGPROF, os.X_OK):
            self.skipTest("%s not built" % CGPROF)
        self.tmp = tempfile.mkdtemp(prefix="cgprof-top-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def term(self):
        if not TMUX:
            self.skipTest("tmux not installed (scripts/deps.sh installs it)")
        t = Tmux(self.tmp)
        self.addCleanup(t.close)
        return t

    def wait_screen(self, term, pred, timeout, what):
        """Poll the screen until pred(screen) holds; return that screen."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = term.frame(max(0.0, deadline - time.monotonic()))
            if pred(screen):
                return screen
            time.sleep(0.1)
        self.fail("%s: not on screen within %.0f s:\n%s" % (what, timeout, screen))

    def start_hot(self, seconds=120):
        """top_hot.py, stopped through its stop file; (proc, main, waiter)."""
        self.stop_file = os.path.join(self.tmp, "stop")
        env = dict(os.environ, TOP_HOT_STOP=self.stop_file)
        p = self.spawn([PYTHON, TOP_HOT, str(seconds)], env=env)
        line = self.wait_for_line(p, "ready")
        ids = dict(kv.split("=") for kv in line.split()[1:])
        return p, int(ids["main"]), int(ids["waiter"])

    def finish_hot(self, p):
        """Let the workload end; it must do so normally. Its split."""
        with open(self.stop_file, "w"):
            pass
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out.strip().splitlines()[-1])

    def pick_thread(self, term, tid):
        """Press t until the view is filtered to thread tid."""
        for _ in range(16):
            term.keys("t")
            try:
                return self.wait_screen(term, lambda s: re.search(
                    r"thread: \S+ \(%d\)" % tid, s), 1.5, "thread %d" % tid)
            except AssertionError:
                continue
        self.fail("t never selected thread %d:\n%s" % (tid, term.frame()))


class TestTopPython(TopCase):
    def test_live_view_and_keys(self):
        p, main_tid, waiter_tid = self.start_hot()
        term = self.term()
        t0 = time.monotonic()
        term.start("%s top --idle %d" % (CGPROF, p.pid))
        # --idle: idle threads are sampled and shown; i hides them
        self.wait_screen(term, lambda s: "idle: shown" in s, 3, "idle shown")
        term.keys("i")

        # the hot function, within 3 s, with its share of the split
        screen = self.wait_screen(term, lambda s: row(parse_rows(s), "hot") and
                                  row(parse_rows(s), "cold") and samples_of(s) >= 100 and
                                  "idle: hidden" in s,
                                  3.0 - (time.monotonic() - t0) + 0.5, "hot and cold")
        self.assertLess(time.monotonic() - t0, 3.5)
        rows = parse_rows(screen)
        self.assertEqual(rows[0]["func"], "hot", screen)
        hot, cold = row(rows, "hot"), row(rows, "cold")
        early_share = hot["own"] / (hot["own"] + cold["own"])
        self.assertIn("CPython", screen.splitlines()[0])
        self.assertIn("process %d" % p.pid, screen.splitlines()[0])

        # it refreshes by itself
        n1 = samples_of(screen)
        self.wait_screen(term, lambda s: (samples_of(s) or 0) > n1, 3, "a refresh")

        # sorting: by total, by name, back to own
        term.keys("2")
        s = self.wait_screen(term, lambda s: "*TOTAL%" in s, 3, "sort by total")
        totals = [r["total"] for r in parse_rows(s)]
        self.assertEqual(totals, sorted(totals, reverse=True), s)
        # main's root frames are in all but the waiter's rare on-CPU samples
        self.assertIn(parse_rows(s)[0]["func"], ("<module>", "main"), s)
        self.assertGreater(totals[0], 95.0, s)
        term.keys("5")
        s = self.wait_screen(term, lambda s: "*FUNCTION" in s, 3, "sort by name")
        names = [r["func"] for r in parse_rows(s)]
        self.assertEqual(names, sorted(names), s)
        term.keys("1")
        s = self.wait_screen(term, lambda s: "*OWN%" in s, 3, "sort by own")
        owns = [r["own"] for r in parse_rows(s)]
        self.assertEqual(owns, sorted(owns, reverse=True), s)
        self.assertEqual(parse_rows(s)[0]["func"], "hot")

        # pause freezes the numbers; unpause resumes
        term.keys("p")
        paused = self.wait_screen(term, lambda s: "[PAUSED]" in s, 3, "paused")
        time.sleep(2.5)
        self.assertEqual(term.frame(), paused)
        term.keys("p")
        self.wait_screen(term, lambda s: "[PAUSED]" not in s and
                         (samples_of(s) or 0) > samples_of(paused), 3, "resumed")

        # the main thread alone: hot and cold; its stack: main and a leaf
        s = self.pick_thread(term, main_tid)
        self.assertTrue(row(parse_rows(s), "hot"), s)
        term.keys("s")
        s = self.wait_screen(term, lambda s: "stack of thread" in s, 3, "main's stack")
        frames = [l.strip().split(" (", 1)[0] for l in s.splitlines()[6:] if l.strip()]
        self.assertIn(frames[0], ("hot", "cold", "cpu", "main"), s)
        self.assertEqual(frames[-2:], ["main", "<module>"], s)
        self.assertIn("(%d), RUNNING" % main_tid, s)
        term.keys("s")

        # the waiter: (almost) nothing while idle threads are hidden (the
        # odd sample finds it runnable, ~1% on a busy machine); with them,
        # a sample every round, each in waiter_block; its stack
        s = self.pick_thread(term, waiter_tid)
        hidden = samples_of(s)
        self.assertIsNone(row(parse_rows(s), "hot"), s)
        term.keys("i")
        s = self.wait_screen(term, lambda s: "idle: shown" in s and
                             row(parse_rows(s), "waiter_block"), 3, "waiter_block")
        self.assertGreater(samples_of(s), 400, s)  # ~100 Hz for 5 s and more
        self.assertLess(hidden * 20, samples_of(s), s)
        self.assertGreaterEqual(row(parse_rows(s), "waiter_block")["total"], 99.0, s)
        self.assertIsNone(row(parse_rows(s), "hot"), s)
        term.keys("s")
        s = self.wait_screen(term, lambda s: "stack of thread" in s, 3, "waiter's stack")
        self.assertIn("waiter_block (", s)
        self.assertIn("(%d), IDLE" % waiter_tid, s)
        self.assertNotIn("hot (", s)
        term.keys("s", "i", "a")
        s = self.wait_screen(term, lambda s: "thread: all" in s and "idle: hidden" in s and
                             row(parse_rows(s), "hot"), 3, "all threads again")

        # the last 10 s against since the start
        while time.monotonic() - t0 < 13:
            time.sleep(0.2)
        since = samples_of(term.frame())
        term.keys("w")
        s = self.wait_screen(term, lambda s: "view: last 10 s" in s, 3, "window view")
        m = re.search(r"samples (\d+) in last (\d+) s", s)
        self.assertTrue(m, s)
        self.assertLessEqual(int(m.group(2)), 10)
        self.assertLess(int(m.group(1)), since, s)
        self.assertEqual(parse_rows(s)[0]["func"], "hot", s)
        term.keys("w")
        self.wait_screen(term, lambda s: "view: since start" in s, 3, "since start")

        # a resize redraws at the new size
        term.tmux("resize-window", "-t", term.name, "-x", "60", "-y", "15")
        s = self.wait_screen(term, lambda s: KEYS_LINE[:60] in s, 3, "narrow view")
        self.assertLessEqual(len(s.rstrip("\n").splitlines()), 15)
        term.tmux("resize-window", "-t", term.name, "-x", "140", "-y", "40")
        self.wait_screen(term, lambda s: KEYS_LINE in s, 3, "wide view")

        # q: exit 0, terminal modes back, the target running on
        term.keys("q")
        rc, stty = term.exit_status()
        self.assertEqual(rc, 0)
        self.assertTrue(terminal_modes_ok(stty), stty)
        self.assertNotIn("*OWN%", term.screen())
        self.assertIsNone(p.poll(), "the target ended when top quit")
        split = self.finish_hot(p)
        truth = split["hot"] / (split["hot"] + split["cold"])
        self.assertLess(abs(early_share - truth), PY_TOLERANCE,
                        "screen %.3f, workload %.3f" % (early_share, truth))

    def test_ctrl_c_and_sigterm(self):
        p, _, _ = self.start_hot()
        term = self.term()
        term.start("%s top %d" % (CGPROF, p.pid))
        self.wait_screen(term, lambda s: row(parse_rows(s), "hot"), 5, "hot")
        # without --idle, idle threads are not sampled (as for attach): i
        # has nothing to show, and says so
        term.keys("i")
        time.sleep(1.5)
        s = term.frame()
        self.assertIn("idle: not sampled (--idle)", s)
        self.assertIsNone(row(parse_rows(s), "waiter_block"), s)
        # Ctrl-Z does not stop the view (nor cgprof, mid-sample)
        term.keys("C-z")
        n = samples_of(term.frame())
        self.wait_screen(term, lambda s: (samples_of(s) or 0) > n, 3, "refresh after ^Z")
        term.keys("C-c")
        rc, stty = term.exit_status()
        self.assertEqual(rc, 0)
        self.assertTrue(terminal_modes_ok(stty), stty)
        self.assertIsNone(p.poll(), "Ctrl-C in top reached the target")

        term.start("%s top %d" % (CGPROF, p.pid))
        self.wait_screen(term, lambda s: row(parse_rows(s), "hot"), 5, "hot")
        sh = term.pane_pid()
        with open("/proc/%d/task/%d/children" % (sh, sh)) as f:
            kids = [int(x) for x in f.read().split()]
        self.assertEqual(len(kids), 1, kids)
        os.kill(kids[0], signal.SIGTERM)
        rc, stty = term.exit_status()
        self.assertEqual(rc, 0)
        self.assertTrue(terminal_modes_ok(stty), stty)
        self.assertIsNone(p.poll(), "the target ended with top")
        split = self.finish_hot(p)
        self.assertGreater(split["hot"], 0)

    def test_run_and_target_exit(self):
        """top -- COMMAND: the view while it runs, then its exit status."""
        term = self.term()
        out = os.path.join(self.tmp, "out")
        t0 = time.monotonic()
        term.start("%s top -- %s %s 4 %s 3" % (CGPROF, PYTHON, TOP_HOT, out))
        self.wait_screen(term, lambda s: row(parse_rows(s), "hot"), 3.5, "hot")
        self.assertLess(time.monotonic() - t0, 3.5)
        rc, stty = term.exit_status(timeout=30)
        self.assertEqual(rc, 3)  # the command's own status
        self.assertTrue(terminal_modes_ok(stty), stty)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines[0].startswith("ready main="), lines)
        split = json.loads(lines[-1])  # its last line: it ran to its end
        self.assertGreater(split["hot"], split["cold"])


    def test_messages_wait_for_the_terminal(self):
        """A warning while the view is up (here: the target's exec) is
        held, flagged in the title, and printed once the screen is gone."""
        term = self.term()
        out = os.path.join(self.tmp, "out")
        term.start("%s top -- %s %s %s 3 %s" % (CGPROF, PYTHON, TOP_EXEC, TOP_HOT, out))
        s = self.wait_screen(term, lambda s: "[messages: shown on exit]" in s and
                             row(parse_rows(s), "hot"), 10, "the held message")
        self.assertNotIn("executed a new program", s)
        rc, stty = term.exit_status(timeout=30)
        self.assertEqual(rc, 0)
        self.assertTrue(terminal_modes_ok(stty), stty)
        after = term.screen()
        self.assertIn("executed a new program", after)
        self.assertNotIn("*OWN%", after)
        with open(out) as f:
            self.assertIn('"hot"', f.read().splitlines()[-1])


class TestTopOnce(TopCase):
    def test_once_snapshot(self):
        p, _, _ = self.start_hot()
        r = cgprof("top", "--once", "--duration", "3", str(p.pid), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("cgprof top: process %d" % p.pid), r.stdout)
        # 3 s of rounds, one busy thread: at most a sample per round, and
        # one in every round it got a CPU (on a loaded machine it waits
        # for one in some rounds, and a CPU profile does not count those;
        # the rate achieved depends on the load, the arithmetic not)
        m = re.search(r"^samples (\d+) in ([\d.]+) s, ([\d.]+) Hz", r.stdout, re.M)
        self.assertTrue(m, r.stdout)
        n, span, hz = int(m.group(1)), float(m.group(2)), float(m.group(3))
        self.assertAlmostEqual(span, 3.0, delta=0.3, msg=r.stdout)
        self.assertGreater(n, 30, r.stdout)
        self.assertLessEqual(n, hz * span * 1.1 + 2, r.stdout)
        self.assertGreater(n, 0.5 * hz * span, r.stdout)
        rows = parse_rows(r.stdout)
        self.assertEqual(rows[0]["func"], "hot", r.stdout)
        hot, cold = row(rows, "hot"), row(rows, "cold")
        share = hot["own"] / (hot["own"] + cold["own"])
        # the same snapshot sorted by name, with --format text
        r2 = cgprof("top", "--format", "text", "--sort", "name", "--delay", "1",
                    "--nonblocking", "-r", "50", str(p.pid), timeout=60)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        names = [x["func"] for x in parse_rows(r2.stdout)]
        self.assertEqual(names, sorted(names))
        self.assertIn("hot", names)
        split = self.finish_hot(p)
        truth = split["hot"] / (split["hot"] + split["cold"])
        self.assertLess(abs(share - truth), PY_TOLERANCE, "top %.3f, workload %.3f" %
                        (share, truth))

    def test_refusals(self):
        p, _, _ = self.start_hot()
        for args, word in ((["top", str(p.pid)], "terminal"),
                           (["top", "--format", "json", str(p.pid)], "text"),
                           (["top", "-o", "x.svg", str(p.pid)], "does not apply"),
                           (["top", "--delay", "0", str(p.pid)], "--delay"),
                           (["top", "--sort", "size", str(p.pid)], "--sort"),
                           (["top", "--once", "nope"], "PID"),
                           (["top", "--once"], "PID"),
                           (["top", "--once", "1", "2"], "PID"),
                           (["top", "--once", "--"], "COMMAND"),
                           (["top", "--once", "--bogus", str(p.pid)], "--bogus")):
            r = cgprof(*args, timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertTrue(lines[0].startswith("cgprof: "), r.stderr)
            self.assertIn(word, lines[0])
            self.assertEqual(r.stdout, "")
        self.assertIsNone(p.poll())
        self.finish_hot(p)


def java_setup(case):
    from test_jvm import JAVAC, JDKS, classes_dir
    if not JDKS or not os.access(JAVAC, os.X_OK):
        case.skipTest("no java/javac")
    return JDKS[0][1], classes_dir()


class TestTopJava(TopCase):
    def test_java_live_view(self):
        java, classes = java_setup(self)
        cwd = tempfile.mkdtemp(prefix="cgprof-top-jvm-")
        self.addCleanup(shutil.rmtree, cwd, True)
        # Split runs until its stdin closes (communicate, below): a fixed
        # 16 s raced top's start and the screens' waits on a loaded machine
        p = self.spawn([java, "-cp", classes, "Split", "stdin"], cwd=cwd,
                       stdin=subprocess.PIPE)
        self.wait_for_line(p, "ready")
        term = self.term()
        t0 = time.monotonic()
        term.start("%s top %d" % (CGPROF, p.pid))
        s = self.wait_screen(term, lambda s: row(parse_rows(s), "Split.alpha"), 3.5,
                             "Split.alpha")
        self.assertLess(time.monotonic() - t0, 3.5)
        self.assertRegex(s.splitlines()[0], r"(OpenJDK|HotSpot JVM) 17\.")

        # the main thread: Split's split, from thread dumps at ~20 Hz
        main_tid = None
        for _ in range(40):
            term.keys("t")
            time.sleep(0.3)
            m = re.search(r"thread: main \((\d+)\)", term.frame())
            if m:
                main_tid = int(m.group(1))
                break
        self.assertIsNotNone(main_tid, term.frame())
        s = self.wait_screen(term, lambda s: (samples_of(s) or 0) >= 100 and
                             row(parse_rows(s), "Split.beta"), 15, "100 samples of main")
        rows = parse_rows(s)
        alpha, beta = row(rows, "Split.alpha"), row(rows, "Split.beta")
        share = alpha["total"] / (alpha["total"] + beta["total"])
        self.assertIsNone(row(rows, "java.lang.ref.Reference.waitForReferencePendingList"), s)

        term.keys("s")
        s = self.wait_screen(term, lambda s: "stack of thread main" in s, 3, "main's stack")
        self.assertIn("Split.main (Split.java:", s)
        term.keys("s")

        term.keys("q")
        rc, stty = term.exit_status()
        self.assertEqual(rc, 0)
        self.assertTrue(terminal_modes_ok(stty), stty)
        self.assertIsNone(p.poll(), "the JVM ended when top quit")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(out.rstrip().endswith("done"), out)
        self.assertNotIn("Full thread dump", out)
        m = re.search(r"split alpha=(\d+) beta=(\d+)", out)
        truth = int(m.group(1)) / (int(m.group(1)) + int(m.group(2)))
        self.assertLess(abs(share - truth), JAVA_TOLERANCE,
                        "screen %.3f, JVM %.3f" % (share, truth))


if __name__ == "__main__":
    unittest.main()

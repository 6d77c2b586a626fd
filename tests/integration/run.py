"""Run every tests/integration/test_*.py with unittest and close with one
line: "integration: N passed, N failed, N skipped".

CGPROF_TESTS=substring limits the run to test ids containing it.
CGPROF_PHASE=asan (tests/run-all.sh's sanitized rerun) leaves out the
test classes whose NOT_UNDER_ASAN says why running them again against
the sanitized build would test nothing new (they never run it: they
check the repository, or build a package of their own); each is named
once, and counted in neither total."""
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cgtest  # noqa: E402  (after the path)


def _ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def strays():
    """{pid: command} of processes a test started and left running: a
    workload, a JVM, a cgprof (any whose command line names this suite's
    files or the build), the runner and its parents aside. A process left
    behind takes a CPU from every test after it (on 2 CPUs, enough to
    skew what the timing tests measure) and is a defect of the test."""
    marks = {HERE, os.path.abspath(cgtest.BUILD), os.path.abspath(cgtest.CGPROF)}
    mine = _ancestors()
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if any(m in a for a in argv for m in marks):
            out[int(d)] = " ".join(argv).strip()
    return out


class Result(unittest.TextTestResult):
    leaks = 0

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        left = strays()
        deadline = time.monotonic() + 5  # one on its way out may finish
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = {p: c for p, c in strays().items() if p in left}
        for pid, cmd in sorted(left.items()):
            self.stream.write("LEFT RUNNING after %s: %d %s\n" % (test.id(), pid, cmd[:200]))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if left:
            Result.leaks += 1
            self.stream.flush()

    def _took(self):
        return " (%.1fs)" % (time.monotonic() - self._t0)

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self.stream.write("PASS %s%s\n" % (test.id(), self._took()))
        self.stream.flush()

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self.stream.write("FAIL %s%s\n" % (test.id(), self._took()))
        self.stream.flush()

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self.stream.write("ERROR %s%s\n" % (test.id(), self._took()))
        self.stream.flush()

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self.stream.write("SKIP %s: %s\n" % (test.id(), reason))
        self.stream.flush()


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def main():
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    only = os.environ.get("CGPROF_TESTS")
    tests = [t for t in flatten(suite) if not only or only in t.id()]
    if os.environ.get("CGPROF_PHASE") == "asan":
        left = {}
        for t in tests:
            why = getattr(type(t), "NOT_UNDER_ASAN", None)
            if why:
                left.setdefault(type(t).__module__ + "." + type(t).__name__, why)
        tests = [t for t in tests if not getattr(type(t), "NOT_UNDER_ASAN", None)]
        for name, why in sorted(left.items()):
            print("not rerun under ASan: %s (%s)" % (name, why))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=Result)
    res = runner.run(unittest.TestSuite(tests))
    # a test whose subtests fail is one failed test, however many failed
    base = lambda t: getattr(t, "test_case", t).id()
    failed_ids = {base(t) for t, _ in res.failures + res.errors}
    failed = len(failed_ids) + len(res.unexpectedSuccesses)
    skipped = len({base(t) for t, _ in res.skipped} - failed_ids)
    passed = res.testsRun - failed - skipped
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if Result.leaks:
        print("integration: %d tests left processes running (LEFT RUNNING above)" % Result.leaks)
    return 1 if failed or Result.leaks else 0


if __name__ == "__main__":
    sys.exit(main())

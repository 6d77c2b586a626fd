"""Run every tests/integration/test_*.py with unittest and close with one
line: "integration: N passed, N failed, N skipped".

CGPROF_TESTS=substring limits the run to test ids containing it.
CGPROF_PHASE=asan (tests/run-all.sh's sanitized rerun) leaves out the
test classes whose NOT_UNDER_ASAN says why running them again against
the sanitized build would test nothing new (they never run it: they
check the repository, or build a package of their own); each is named
once, and counted in neither total."""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Ground truth for where samples land around a system call.

One thread runs ~150 us of pure bytecode, then one cheap system call
(reading its own CPU clock, which has no vDSO path), over and over. It
measures the CPU time of the system-call line with that same clock, so
time spent waiting for a CPU (a busy machine) is nobody's. With --pin CPU
it keeps to one CPU (the test puts a busy loop on the same one). At the
end: one JSON line {"syscall_share": s, "line": n, "cpu_s": its CPU time}.
Works on every CPython 3.6+ (no f-strings, no walrus)."""
import json
import os
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
if "--pin" in sys.argv:
    os.sched_setaffinity(0, {int(sys.argv[sys.argv.index("--pin") + 1])})

CLOCK = time.CLOCK_THREAD_CPUTIME_ID


def loop(deadline):
    spent = 0.0
    while time.monotonic() < deadline:
        x = 0
        for i in range(2000):
            x = (x * 7 + i) % 1009
        t0 = time.clock_gettime(CLOCK)
        time.clock_gettime(CLOCK)  # SYSCALL-LINE
        spent += time.clock_gettime(CLOCK) - t0
    return spent


def main():
    start = time.clock_gettime(CLOCK)
    spent = loop(time.monotonic() + SECONDS)
    total = time.clock_gettime(CLOCK) - start
    src = open(__file__).read().splitlines()
    line = next(i + 1 for i, l in enumerate(src) if l.rstrip().endswith("# SYSCALL-LINE"))
    print(json.dumps({"syscall_share": spent / total, "line": line, "cpu_s": total}), flush=True)


if __name__ == "__main__":
    main()

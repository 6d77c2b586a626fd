"""Ground truth for a stack that changes faster than it can be read.

One thread alternates, in chunks of random length, between two phases:
churn() resumes a generator and calls a short function every few hundred
nanoseconds, so its stack changes faster than any read of it from outside
takes; steady() runs pure bytecode in one frame. Each phase's CPU time is
measured with the thread's own CPU clock, read only between chunks. With
--pin CPU it keeps to one CPU (the test runs cgprof on the other, so its
reads and the stack's changes truly overlap). At the end: one JSON line
{"churn": share, "steady": share, "cpu_s": CPU seconds of both}.

    churn_split.py SECONDS [--pin CPU]
Works on every CPython 3.6+ (no f-strings, no walrus)."""
import json
import os
import random
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
if "--pin" in sys.argv:
    os.sched_setaffinity(0, {int(sys.argv[sys.argv.index("--pin") + 1])})

CLOCK = time.CLOCK_THREAD_CPUTIME_ID


def hop(x):
    return x + 1


def relay():
    x = 0
    while True:
        x = yield hop(x)


def churn(n, g):
    for i in range(n):
        g.send(i)
        hop(i)


def steady(n):
    x = 0
    for i in range(n):
        x = (x * 7 + i) % 1009
    return x


def main():
    rng = random.Random(7)
    g = relay()
    next(g)
    spent = {"churn": 0.0, "steady": 0.0}
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        # random order and lengths (~0.1-1 ms): a regular pattern would
        # alias with a regular sampling clock
        which = "churn" if rng.random() < 0.5 else "steady"
        n = rng.randint(200, 2000)
        t0 = time.clock_gettime(CLOCK)
        if which == "churn":
            churn(n, g)
        else:
            steady(2 * n)
        spent[which] += time.clock_gettime(CLOCK) - t0
    tot = spent["churn"] + spent["steady"]
    print(json.dumps({"churn": spent["churn"] / tot, "steady": spent["steady"] / tot,
                      "cpu_s": tot}))


main()

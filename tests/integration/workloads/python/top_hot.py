"""Workload for the `cgprof top` tests: the main thread splits fixed work
between hot() (three parts) and cold() (one part) and measures the CPU
time each took with the thread CPU clock, timing batches so the clock
reads stay a sliver of the samples; a second thread waits in
waiter_block() and never runs.

    top_hot.py SECONDS [OUTFILE [EXIT]]
prints "ready main=TID waiter=TID" at once, and at the end one JSON line
{"hot": s, "cold": s, "main": s} (main: the thread's whole CPU time),
to OUTFILE when given (run under `cgprof top --`, whose terminal is the
view's), then exits with EXIT (default 0). It ends early, the same way,
once the file named by $TOP_HOT_STOP exists."""
import os
import json
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
OUT = sys.argv[2] if len(sys.argv) > 2 else None
EXIT = int(sys.argv[3]) if len(sys.argv) > 3 else 0
BATCH = 10


def cpu():
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


def hot():
    x = 0
    for i in range(60000):
        x = (x * 31 + i) % 1000003
    return x


def cold():
    x = 0
    for i in range(20000):
        x = (x * 17 + i) % 999983
    return x


def waiter_block(ev):
    ev.wait(3600)


def main():
    out = open(OUT, "w") if OUT else sys.stdout
    ready = threading.Event()
    stop = threading.Event()
    ids = {}

    def waiter():
        ids["waiter"] = threading.get_native_id()
        ready.set()
        waiter_block(stop)

    t = threading.Thread(target=waiter, name="waiter")
    t.start()
    ready.wait()
    out.write("ready main=%d waiter=%d\n" % (threading.get_native_id(), ids["waiter"]))
    out.flush()
    spent = {"hot": 0.0, "cold": 0.0}
    start = cpu()
    deadline = time.monotonic() + SECONDS
    stop_file = os.environ.get("TOP_HOT_STOP")
    while time.monotonic() < deadline and not (stop_file and os.path.exists(stop_file)):
        t0 = cpu()
        for _ in range(BATCH):
            hot()
        t1 = cpu()
        for _ in range(BATCH):
            cold()
        t2 = cpu()
        spent["hot"] += t1 - t0
        spent["cold"] += t2 - t1
    spent["main"] = cpu() - start
    stop.set()
    t.join()
    out.write(json.dumps(spent) + "\n")
    out.flush()
    sys.exit(EXIT)


if __name__ == "__main__":
    main()

"""Ground-truth workload for the Python sampler tests.

The main thread alternates between alpha() and beta() so that alpha gets
about 70% of the CPU, measuring each with the thread CPU clock; then it runs
deep() which recurses 500 frames and burns at the bottom. A second thread,
sleeper, only sleeps (idle). At the end it prints one JSON line:
{"alpha": cpu_s, "beta": cpu_s, "deep": cpu_s}.
Works on every CPython 3.6+ (no f-strings, no walrus)."""
import json
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0


def cpu():
    # time.thread_time() is 3.7+; this clock is there since 3.3
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)



# The hot loops check a vDSO clock, not a system call: a sampler that stops
# threads sees them stop at system-call exits more often than elsewhere.
def alpha(ms):
    end = time.monotonic() + ms / 1000.0
    x = 0
    while time.monotonic() < end:
        for i in range(200):
            x = (x * 31 + i) % 1000003  # HOT-ALPHA
    return x


def beta(ms):
    end = time.monotonic() + ms / 1000.0
    x = 0
    while time.monotonic() < end:
        for i in range(200):
            x = (x * 17 + i) % 999983
    return x


def deep(n, ms):
    if n > 1:
        return deep(n - 1, ms)
    return beta(ms)


def idle_wait(stop):
    # one blocking wait, no periodic wake-ups: the thread is never runnable
    # until the end, so without --idle it must not show up at all
    stop.wait(3600)


def sleeper(stop):
    idle_wait(stop)


def main():
    stop = threading.Event()
    t = threading.Thread(target=sleeper, args=(stop,))
    t.start()
    spent = {"alpha": 0.0, "beta": 0.0, "deep": 0.0}
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        t0 = cpu()
        alpha(7)
        t1 = cpu()
        beta(3)
        t2 = cpu()
        spent["alpha"] += t1 - t0
        spent["beta"] += t2 - t1
    t0 = cpu()
    deep(500, 300)
    spent["deep"] = cpu() - t0
    stop.set()
    t.join()
    print(json.dumps(spent), flush=True)


if __name__ == "__main__":
    sys.setrecursionlimit(2000)
    main()

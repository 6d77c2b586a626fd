"""Python workloads for bench/run.py; each mode knows what it does.

  stack  --threads T --depth D --seconds S   T busy threads, each D frames deep
  slow   --units N                            fixed work; prints its own wall time
  split  --seconds S                          a()/b() and b()'s two lines; prints
                                              the split measured with thread CPU clocks
  many   --threads T --seconds S              many distinct stacks (profile growth)
  syscall --seconds S                         ~150 us of bytecode, then one cheap
                                              system call, over and over; prints
                                              the system call's measured CPU share
  pace   --threads T --seconds S              T threads of slow's work units; the
                                              workers print "MONOTONIC UNITS"
                                              (units done so far) every 50 ms

Every mode prints one JSON line on stdout when it ends, and "ready" (flushed)
once its threads are at work, so a profiler can attach to a steady state.
Runs on CPython 3.6+.
"""
import argparse
import json
import os
import sys
import threading
import time


def thread_cpu():
    # time.thread_time() is 3.7+; the clock itself is there since 3.3
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


def ready():
    sys.stdout.write("ready\n")
    sys.stdout.flush()


# --- stack: busy threads at a fixed depth -------------------------------

def spin(deadline):
    # deadline is a one-item list, set once every thread is at depth
    s = 0
    while time.time() < deadline[0]:
        for i in range(200):
            s += i * i
    return s


def descend(k, deadline):
    if k <= 1:
        return spin(deadline)
    return descend(k - 1, deadline)


def mode_stack(a):
    # descend() is called at depth 3 (<module>, mode_stack/worker, descend)
    sys.setrecursionlimit(max(1000, a.depth + 100))
    deadline = [float("inf")]
    barrier = threading.Barrier(a.threads + 1)

    def worker():
        barrier.wait()
        descend(a.depth - 2, deadline)

    ts = [threading.Thread(target=worker, name="w%d" % i) for i in range(a.threads - 1)]
    for t in ts:
        t.start()
    def starter():
        barrier.wait()
        deadline[0] = time.time() + a.seconds
        time.sleep(0.2)
        ready()

    barrier_main = threading.Thread(target=starter)
    barrier_main.start()
    barrier.wait()
    barrier_main.join()
    descend(a.depth - 2, deadline)
    for t in ts:
        t.join()
    print(json.dumps({"mode": "stack", "threads": a.threads, "depth": a.depth}))


# --- slow: a fixed amount of work, timed by the workload itself ---------

def leaf(n):
    s = 0
    for i in range(n):
        s += i % 7
    return s


def level(k, n):
    if k == 0:
        return leaf(n)
    return level(k - 1, n)


def mode_slow(a):
    """Fixed work: --units calls, shared out among --threads threads."""
    level(18, 2000)           # warm up

    def work(units):
        for _ in range(units):
            level(18, 2000)

    n = max(1, a.threads)
    ts = [threading.Thread(target=work, args=(a.units // n + (i < a.units % n),))
          for i in range(n)] if n > 1 else []
    ready()
    t0, c0 = time.perf_counter(), time.process_time()
    if ts:
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    else:
        work(a.units)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"mode": "slow", "units": a.units, "wall_s": wall, "cpu_s": cpu}))


# --- pace: slow's work, its progress on the clock ------------------------

def mode_pace(a):
    """--threads threads doing slow's units for --seconds; the progress
    every 50 ms (CLOCK_MONOTONIC, as the caller's time.monotonic(), and
    the units done at that instant), so windows with and without a
    profiler compare on one process."""
    level(18, 2000)           # warm up
    n = max(1, a.threads)
    done = [0] * n
    go = threading.Event()    # every thread started before any works
    end = [0.0]
    due = [0.0]

    def work(i):
        go.wait()
        while True:
            level(18, 2000)
            done[i] += 1
            now = time.monotonic()
            if now >= end[0]:
                break
            # whichever thread holds the GIL when a line is due writes it
            # (a main thread that waits for the GIL behind 64 busy ones
            # gets it about once a second)
            if now >= due[0]:
                due[0] = now + 0.05
                sys.stdout.write("%.6f %d\n" % (now, sum(done)))
                sys.stdout.flush()

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    end[0] = time.monotonic() + a.seconds
    ready()
    go.set()
    for t in ts:
        t.join()
    print(json.dumps({"mode": "pace", "units": sum(done)}))


# --- split: known function and line split -------------------------------

def a_compute(n):
    s = 0
    for i in range(n):
        s += i * i % 13
    return s


def b_mixed(n, m, acc):
    # Two timed lines: pure bytecode, then system calls. The thread CPU
    # clock around each is the ground truth for the line split.
    t0 = thread_cpu()
    s = 0
    for i in range(n): s += i * 3 % 11  # noqa: E701  LINE_COMPUTE
    t1 = thread_cpu()
    for i in range(m): os.stat("/")  # noqa: E701  LINE_SYSCALL
    t2 = thread_cpu()
    acc[1] += t1 - t0
    acc[2] += t2 - t1
    return s


def mode_split(a):
    acc = [0.0, 0.0, 0.0]  # a(), b() compute line, b() syscall line
    # ~60% in a_compute, ~40% in b_mixed, in chunks of about a millisecond
    deadline = time.time() + a.seconds
    a_compute(1000)
    ready()
    while time.time() < deadline:
        t0 = thread_cpu()
        a_compute(9000)
        acc[0] += thread_cpu() - t0
        b_mixed(3000, 300, acc)
    tot = sum(acc)
    src = open(__file__).read().splitlines()
    lines = {tag: i + 1 for i, l in enumerate(src) for tag in ("LINE_COMPUTE", "LINE_SYSCALL")
             if l.rstrip().endswith(tag) and "for i in range" in l}
    print(json.dumps({"mode": "split", "a_share": acc[0] / tot, "b_share": (acc[1] + acc[2]) / tot,
                      "b_line_compute_share": acc[1] / (acc[1] + acc[2]),
                      "line_compute": lines["LINE_COMPUTE"], "line_syscall": lines["LINE_SYSCALL"]}))


# --- many: a service-like spread of distinct stacks ---------------------

NFUNCS = 400


def make_funcs():
    # Distinct code objects (names, files, lines), so the profile grows the
    # way a large application's does.
    g = {"time": time}
    for i in range(NFUNCS):
        code = ("def f%d(path, k, deadline):\n"
                "    if k >= len(path):\n"
                "        s = 0\n"
                "        for j in range(300):\n"
                "            s += j\n"
                "        return s\n"
                "    return FUNCS[path[k]](path, k + 1, deadline)\n") % i
        exec(compile(code, "/srv/app/module%03d.py" % (i % 60), "exec"), g)
    g["FUNCS"] = [g["f%d" % i] for i in range(NFUNCS)]
    return g["FUNCS"]


def mode_many(a):
    funcs = make_funcs()

    def worker(seed):
        x = seed * 2654435761 % 2 ** 32 or 1
        deadline = time.time() + a.seconds
        while time.time() < deadline:
            path = []
            depth = 8 + x % 30
            for _ in range(depth):
                x ^= (x << 13) & 0xFFFFFFFF
                x ^= x >> 17
                x ^= (x << 5) & 0xFFFFFFFF
                path.append(x % NFUNCS)
            for _ in range(20):
                funcs[path[0]](path, 1, deadline)

    ts = [threading.Thread(target=worker, args=(i + 1,)) for i in range(a.threads)]
    for t in ts:
        t.start()
    ready()
    for t in ts:
        t.join()
    print(json.dumps({"mode": "many"}))


# --- syscall: where a pausing sampler's bias shows ---------------------

def mode_syscall(a):
    # CLOCK_THREAD_CPUTIME_ID is a real system call (no vDSO): the line
    # that reads it is where a thread that a pause reaches late stops, and
    # where a busy machine's scheduler preempts it (the call brings its
    # run time up to date). Its share is CPU time, from the same clock:
    # time spent waiting for a CPU is no one's.
    clock = time.CLOCK_THREAD_CPUTIME_ID
    t_sys = 0.0
    deadline = time.time() + a.seconds
    start = time.clock_gettime(clock)
    ready()
    while time.time() < deadline:
        x = 0
        for i in range(2000): x = (x * 7 + i) % 1009  # noqa: E701  LINE_WORK
        t0 = time.clock_gettime(clock)
        time.clock_gettime(clock)  # LINE_SYSCALL
        t_sys += time.clock_gettime(clock) - t0
    total = time.clock_gettime(clock) - start
    src = open(__file__).read().splitlines()
    line = next(i + 1 for i, l in enumerate(src) if l.rstrip().endswith("# LINE_SYSCALL"))
    print(json.dumps({"mode": "syscall", "syscall_share": t_sys / total, "line_syscall": line}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["stack", "slow", "split", "many", "syscall", "pace"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--units", type=int, default=100)
    a = p.parse_args()
    {"stack": mode_stack, "slow": mode_slow, "split": mode_split, "many": mode_many,
     "syscall": mode_syscall, "pace": mode_pace}[a.mode](a)


if __name__ == "__main__":
    main()

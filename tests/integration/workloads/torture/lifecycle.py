"""Targets that end, fork and exec while cgprof samples them.

    lifecycle.py exit SECONDS CODE      threads come and go (churn), then
                                        os._exit(CODE) from a worker thread
                                        at SECONDS, mid-sample
    lifecycle.py fork N                 forks N children while busy (one from
                                        a non-main thread); each child spins in
                                        child_work for 2 s and exits 10+i;
                                        prints "child I pid P status S"
    lifecycle.py exec PROGRAM ARGV...   spins in before_exec for 0.5 s, then
                                        os.execv(PROGRAM, ARGV)
    lifecycle.py after SECONDS CODE     (what a Python exec lands in) spins in
                                        after_exec, prints a line, exits CODE
Works on every CPython 3.6+."""
import os
import sys
import threading
import time


def spin(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for i in range(300):
            x = (x * 31 + i) % 1000003
    return x


def churn_one():
    spin(0.002)


def churn(stop):
    # Threads that live a few milliseconds each: cgprof meets threads that
    # are gone by the time it pauses or reads them.
    while not stop.is_set():
        ts = [threading.Thread(target=churn_one) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


def exit_worker(seconds, code):
    spin(seconds)
    sys.stdout.write("exiting %d\n" % code)
    sys.stdout.flush()
    os._exit(code)


def main_exit(seconds, code):
    stop = threading.Event()
    threading.Thread(target=churn, args=(stop,), daemon=True).start()
    threading.Thread(target=exit_worker, args=(seconds, code)).start()
    while True:
        spin(0.1)


def child_work(i):
    # Long enough to be found by --subprocesses' scan (every 200 ms) even
    # when a loaded machine stretches cgprof's rounds.
    spin(2.0)
    os._exit(10 + i)


def fork_one(i, pids):
    pid = os.fork()
    if pid == 0:
        child_work(i)
    pids[i] = pid


def main_fork(n):
    pids = {}
    for i in range(n):
        spin(0.15)
        if i == 1:
            # fork from a second thread while the main thread runs
            t = threading.Thread(target=fork_one, args=(i, pids))
            t.start()
            spin(0.05)
            t.join()
        else:
            fork_one(i, pids)
    spin(0.3)
    for i in range(n):
        _, st = os.waitpid(pids[i], 0)
        code = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st)
        sys.stdout.write("child %d pid %d status %d\n" % (i, pids[i], code))
    return 0


def before_exec():
    spin(0.5)


def after_exec(seconds):
    spin(seconds)


def main():
    mode = sys.argv[1]
    if mode == "exit":
        main_exit(float(sys.argv[2]), int(sys.argv[3]))
    elif mode == "fork":
        return main_fork(int(sys.argv[2]))
    elif mode == "exec":
        before_exec()
        sys.stdout.write("exec %s\n" % os.path.basename(sys.argv[2]))
        sys.stdout.flush()
        os.execv(sys.argv[2], sys.argv[3:])
    elif mode == "after":
        after_exec(float(sys.argv[2]))
        sys.stdout.write("after_exec done in %d.%d\n" % sys.version_info[:2])
        return int(sys.argv[3])
    return 2


if __name__ == "__main__":
    sys.exit(main())

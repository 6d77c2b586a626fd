"""500 threads with known roles: BUSY threads spin in f_busy, the others
sleep in f_sleep. Once all are inside them it prints one JSON line
{"busy": [tids], "sleep": [tids]} and keeps them there until its stdin
ends (the test closes it once the profiler is done: a fixed lifetime
raced the profiler's start on a loaded machine, and threads that had
finished were "never sampled"); then every thread checks its own result
and the process prints "ok N" (threads that finished correctly) and
exits 0.

    threads500.py [BUSY] [SLEEPERS]
Works on every CPython 3.6+ (kernel tids via ctypes before 3.8)."""
import ctypes
import json
import sys
import threading
import time

NBUSY = int(sys.argv[1]) if len(sys.argv) > 1 else 250
NSLEEP = int(sys.argv[2]) if len(sys.argv) > 2 else 250
threading.stack_size(256 * 1024)  # 500 default 8 MB stacks are too many


def gettid():
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86-64


lock = threading.Lock()
roles = {"busy": [], "sleep": []}
ok = [0]
started = [0]
go = threading.Event()  # busy threads spin only once all have started
stop = [False]          # set once stdin ends


def arrived():
    with lock:
        started[0] += 1


def f_busy():
    arrived()
    # Spinning threads would hold the GIL against every Thread.start()
    # still to come (each waits for its thread to run): start first.
    go.wait()
    x = 0
    while not stop[0]:
        for i in range(500):
            x = (x * 31 + i) % 1000003
    return x


def f_sleep():
    arrived()
    n = 0
    while not stop[0]:
        time.sleep(0.05)
        n += 1
    return n


def worker(role):
    with lock:
        roles[role].append(gettid())
    r = f_busy() if role == "busy" else f_sleep()
    if r >= 0:
        with lock:
            ok[0] += 1


def main():
    ts = [threading.Thread(target=worker, args=("busy",)) for _ in range(NBUSY)]
    ts += [threading.Thread(target=worker, args=("sleep",)) for _ in range(NSLEEP)]
    for t in ts:
        t.start()
    while started[0] < len(ts):
        time.sleep(0.01)
    go.set()
    sys.stdout.write(json.dumps(roles) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the test closes it (or dies)
    stop[0] = True
    for t in ts:
        t.join()
    sys.stdout.write("ok %d\n" % ok[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""N threads whose stacks change every few hundred nanoseconds: each
calls and returns from a three-deep chain, over and over, so a read of a
running one tears often. Prints "ready" once every thread is in its
loop, runs until a line (or end of file) on stdin, or SECONDS at most,
then prints "ok N" (threads that ended well).

The end is told, not timed: a run window on the clock ends early when the
clock leaps (this VM's wall and monotonic clocks both jump when it is
paused and resumed), and the profile then sees no worker at all.

    churn_threads.py SECONDS N
Works on every CPython 3.6+."""
import select
import sys
import threading
import time

SECONDS = float(sys.argv[1])
N = int(sys.argv[2])
threading.stack_size(256 * 1024)
started = [0]
lock = threading.Lock()
go = threading.Event()
stop = [False]
done = [0]


def c_leaf(i):
    return i + 1


def b_mid(i):
    return c_leaf(i) + 1


def a_top(i):
    return b_mid(i) + 1


def worker():
    with lock:
        started[0] += 1
    go.wait()
    n = 0
    while not stop[0]:
        for i in range(100):
            n += a_top(i)
    with lock:
        done[0] += n > 0


ts = [threading.Thread(target=worker) for _ in range(N)]
for t in ts:
    t.start()
while started[0] < N:
    time.sleep(0.01)
go.set()
print("ready", flush=True)
select.select([sys.stdin], [], [], SECONDS)
stop[0] = True
for t in ts:
    t.join()
print("ok %d" % done[0], flush=True)

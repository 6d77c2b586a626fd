"""A Python stack that never holds still: deep recursion that unwinds and
rewinds all the time (dive), two generators handing over to each other
(ping/pong) and a chain of coroutines driven by hand (co_outer, co_inner,
Tick.__await__), in the main thread and a second one, for SECONDS.

CALLERS is the ground truth for the tests: for each function (and class
body) here, the functions of this file it may be called from ("" means
it is the first frame of this file in a stack). Prints "done" and exits
0.

    churn.py SECONDS
Works on every CPython 3.6+."""
import sys
import threading
import time

CALLERS = {
    "<module>": [""],
    "main": ["<module>"],
    "run_all": ["main", "", "run_all"],  # "": a thread's target
    "dive": ["run_all", "dive"],
    "leaf": ["dive"],
    "ping": ["run_all"],
    "pong": ["run_all"],
    "co_outer": ["run_all"],
    "co_inner": ["co_outer"],
    "__await__": ["co_inner"],
    "Tick": ["<module>"],  # its class body, run once as the module loads
}


def leaf(x):
    return (x * 7 + 3) % 101


def dive(n, x):
    # depth changes on every call: a few microseconds per level
    if n == 0:
        return leaf(x)
    return dive(n - 1, x + n) + 1


def ping():
    x = 0
    while True:
        x = yield x + 1


def pong():
    x = 0
    while True:
        x = yield x * 2


class Tick:
    def __await__(self):
        yield


async def co_inner(n):
    for _ in range(n):
        await Tick()


async def co_outer():
    while True:
        await co_inner(3)


def run_all(seconds):
    end = time.monotonic() + seconds
    depth = 1
    a, b = ping(), pong()
    next(a)
    next(b)
    co = co_outer()
    v = 0
    while time.monotonic() < end:
        depth = (depth * 37 + 11) % 150 + 1
        v = dive(depth, v) % 1000
        for _ in range(100):
            v = b.send(a.send(v)) % 1000
            co.send(None)
    return v


def main():
    seconds = float(sys.argv[1])
    t = threading.Thread(target=run_all, args=(seconds,))
    t.start()
    run_all(seconds)
    t.join()
    sys.stdout.write("done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

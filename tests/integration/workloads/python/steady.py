"""A steady stack, for counting what a sample costs: the main thread
recurses to a known depth and then runs pure bytecode in one loop for
the given seconds; a second thread sleeps all along. Prints "ready" once
both are in place, then a JSON line with the depth and the main thread's
CPU and wall time in the loop when done.

    python steady.py SECONDS [DEPTH]"""
import json
import sys
import threading
import time


def spin(until):
    x = 0
    while time.monotonic() < until:
        for i in range(2000):
            x += i * i
    return x


def descend(n, until):
    if n <= 1:
        return spin(until)
    return descend(n - 1, until)


def main():
    seconds = float(sys.argv[1])
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    stop = threading.Event()
    sleeper = threading.Thread(target=stop.wait, name="sleeper")
    sleeper.start()
    print("ready", flush=True)
    clock = getattr(time, "thread_time", time.process_time)  # 3.7+
    t0, c0 = time.monotonic(), clock()
    descend(depth, t0 + seconds)
    wall, cpu = time.monotonic() - t0, clock() - c0
    stop.set()
    sleeper.join()
    print(json.dumps({"depth": depth, "cpu_s": cpu, "wall_s": wall}), flush=True)


main()

"""A target that knows what it must print: the torture tests compare its
stdout byte for byte with what an unprofiled run prints.

    victim.py BLOCKS        (env CG_ACK_FD: a pipe for the test)

It computes a checksum over BLOCKS fixed blocks of work, then keeps
working (linger) until a line "stop" arrives on stdin. Every SIGUSR1 is
counted and acknowledged at once on CG_ACK_FD ("usr1 N"), so the test can
send the next only after the last arrived and prove none was lost. On the
ack pipe it also says "ready PID" first and, at the end, "stats {json}"
(its own progress: blocks per 0.25 s window, the longest gap between two
blocks). stdout: "checksum X", "usr1 N"; exit status 3.
Works on every CPython 3.6+."""
import json
import os
import signal
import sys
import threading
import time

EXIT_STATUS = 3
ACK = int(os.environ.get("CG_ACK_FD", "-1"))
usr1 = 0


def ack(line):
    if ACK >= 0:
        os.write(ACK, (line + "\n").encode())


def on_usr1(sig, frame):
    global usr1
    usr1 += 1
    ack("usr1 %d" % usr1)


def block(x):
    for i in range(2000):
        x = (x * 1103515245 + 12345 + i) & 0x7FFFFFFF
    return x


def chain(blocks):
    x = 1
    for _ in range(blocks):
        x = block(x)
    return x


def work(blocks, stats):
    x = 1
    for _ in range(blocks):
        x = block(x)
        stats.tick()
    return x


def linger(stop, stats):
    x = 7
    while not stop.is_set():
        x = block(x)
        stats.tick()
    return x


class Stats:
    def __init__(self):
        self.start = self.last = time.monotonic()
        self.max_gap = 0.0
        self.windows = [0]

    def tick(self):
        now = time.monotonic()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        w = int((now - self.start) / 0.25)
        while len(self.windows) <= w:
            self.windows.append(0)
        self.windows[w] += 1


def wait_stop(stop):
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def main():
    blocks = int(sys.argv[1])
    signal.signal(signal.SIGUSR1, on_usr1)
    stop = threading.Event()
    reader = threading.Thread(target=wait_stop, args=(stop,), daemon=True)
    reader.start()
    ack("ready %d" % os.getpid())
    stats = Stats()
    x = work(blocks, stats)
    linger(stop, stats)
    ack("stats " + json.dumps({"max_gap": stats.max_gap, "windows": stats.windows,
                               "elapsed": time.monotonic() - stats.start}))
    sys.stdout.write("checksum %d\nusr1 %d\n" % (x, usr1))
    sys.stdout.flush()
    return EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main())

# A worker thread and the main thread, each spinning in a function of its
# own for argv[1] seconds (the --native thread-root test).
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5


def spin(until):
    while time.time() < until:
        pass


def worker_spin():
    spin(time.time() + SECONDS)


def main_spin():
    spin(time.time() + SECONDS)


t = threading.Thread(target=worker_spin, name="worker")
t.start()
main_spin()
t.join()

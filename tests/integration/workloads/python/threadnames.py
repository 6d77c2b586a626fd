"""Ground truth for Python thread names: threads named the way programs
name them, each burning CPU in a function of its own, so a sample's stack
says which thread it is. Prints one JSON line {function: thread name}
once every thread runs under its final name and stands in its spin
function (the main thread too: it prints from spin_main), then runs
SECONDS more.

- MainThread: threading's default for the main thread
- CustomThreadName-0: a name given at creation
- a name longer than the 15 bytes the OS keeps
- one renamed after it started (the OS name, where set, is the old one)
- one whose name is not Latin-1 (a 2-byte str inside CPython)
- one made with _thread that burns in spin_unregistered for 0.4 s of its
  CPU time before threading knows it, then registers (current_thread()
  makes its Dummy-N) and burns in spin_late: the samples after it
  registers carry the registered name at once, the ones before the OS one
Works on every CPython 3.6+."""
import _thread
import json
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
stop = threading.Event()
inside = threading.Semaphore(0)  # one release per thread in its spin_*


def burn():
    inside.release()
    x = 0
    while not stop.is_set():
        for i in range(2000):
            x = (x * 31 + i) % 1000003
    return x


def spin_main():
    # Every other thread in its spin function first: a dump taken after
    # the line finds each there, main included (a line printed before
    # main got here raced it on a loaded machine: main still starting
    # the timer, in Condition.wait).
    for _ in range(len(NAMES) - 1):
        inside.acquire()
    print(json.dumps(NAMES), flush=True)
    x = 0
    while not stop.is_set():
        for i in range(2000):
            x = (x * 31 + i) % 1000003
    return x


def spin_custom():
    return burn()


def spin_long():
    return burn()


def spin_renamed():
    return burn()


def spin_wide():
    return burn()


def spin_unregistered(seconds):
    # its own CPU time: with every thread burning, 2 CPUs give it a share
    cpu = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID) + seconds
    x = 0
    while time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID) < cpu:
        for i in range(2000):
            x = (x * 31 + i) % 1000003
    return x


late = {}
registered = threading.Event()


def start_late():
    spin_unregistered(0.4)
    late["name"] = threading.current_thread().name
    registered.set()
    spin_late()


def spin_late():
    return burn()


NAMES = {
    "spin_main": "MainThread",
    "spin_custom": "CustomThreadName-0",
    "spin_long": "worker-thread-with-a-long-name-1",
    "spin_renamed": "renamed-after-start",
    "spin_wide": "\u540d\u524d-thread-\u00f1",
}

if __name__ == "__main__":
    threads = []
    for func, name in sorted(NAMES.items()):
        if func == "spin_main":
            continue
        first = "before-rename" if func == "spin_renamed" else name
        t = threading.Thread(target=globals()[func], name=first)
        t.daemon = True
        t.start()
        threads.append((t, name))
    for t, name in threads:
        t.name = name
    _thread.start_new_thread(start_late, ())
    registered.wait()
    NAMES["spin_late"] = late["name"]
    timer = threading.Timer(SECONDS, stop.set)
    timer.name = "stopper"
    timer.daemon = True
    timer.start()
    spin_main()

"""Splits its CPU time between a C extension (burnext.burn, which spins in
burnext_spin) called from py_caller, and pure Python in py_only; prints
the measured split. argv: seconds."""
import os
import random
import sys
import time

sys.path.insert(0, os.environ.get("BURNEXT_DIR", os.path.dirname(os.path.abspath(__file__))))
import burnext  # noqa: E402


def py_caller(chunk):
    return burnext.burn(chunk)


def py_only(chunk):
    t0 = time.thread_time() if hasattr(time, "thread_time") else time.process_time()
    clock = time.thread_time if hasattr(time, "thread_time") else time.process_time
    x = 0
    while clock() - t0 < chunk:
        for i in range(2000):
            x += i
    return clock() - t0


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    clock = time.thread_time if hasattr(time, "thread_time") else time.process_time
    t_c = t_py = 0.0
    print("ready", flush=True)
    end = clock() + seconds
    rng = random.Random(1)
    while clock() < end:
        # About 3:2 C to Python, in random order and lengths so the pattern
        # cannot alias with a regular sampling clock.
        chunk = 0.001 + 0.003 * rng.random()
        if rng.random() < 0.6:
            t_c += py_caller(chunk)
        else:
            t_py += py_only(chunk)
    tot = t_c + t_py
    print("split c=%.4f py=%.4f" % (t_c / tot, t_py / tot), flush=True)


if __name__ == "__main__":
    main()

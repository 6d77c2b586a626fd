"""CPU-bound workload for CLI tests: spins in busy() for SECONDS, writes
its pid to PIDFILE (if given) once started, prints 'busy: done' and exits
with EXIT_CODE. On SIGTERM it prints 'busy: got SIGTERM' and exits 5."""
import os
import signal
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
code = int(sys.argv[2]) if len(sys.argv) > 2 else 0
pidfile = sys.argv[3] if len(sys.argv) > 3 else None


def on_term(sig, frame):
    print("busy: got SIGTERM", flush=True)
    sys.exit(5)


signal.signal(signal.SIGTERM, on_term)


def busy(deadline):
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n


if pidfile:
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
print("busy: started", flush=True)
busy(time.monotonic() + seconds)
print("busy: done", flush=True)
sys.exit(code)

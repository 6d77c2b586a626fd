"""Burns CPU for 2 s, then replaces itself (execv) with the same
interpreter running the rest of its arguments: under `cgprof top --` the
exec draws a warning while the view is up.
    top_exec.py SCRIPT [ARGS...]"""
import os
import sys
import time

end = time.monotonic() + 2.0
x = 0
while time.monotonic() < end:
    x += 1
os.execv(sys.executable, [sys.executable] + sys.argv[1:])

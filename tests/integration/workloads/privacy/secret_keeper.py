"""A target full of secrets, for the privacy test. Every secret is a token
the test chose or can compute, and none may appear in anything cgprof
writes or sends:

  argv        --token TOKEN (the test's random token)
  environment CG_SECRET_ENV
  a file      CG_SECRET_FILE: a file named after a secret holding another,
              kept open for the whole run
  arguments   process_payload(payload): payload = derive(TOKEN, "arg")
  locals      handle_request's hush = derive(TOKEN, "local")

It spins in handle_request -> process_payload for SECONDS in two threads
(the second started from a generator so its locals differ), then prints
"ok" and exits 0.

    secret_keeper.py --token TOKEN SECONDS
Works on every CPython 3.6+."""
import hashlib
import os
import sys
import threading
import time


def derive(token, purpose):
    return "cgs" + hashlib.sha256((token + ":" + purpose).encode()).hexdigest()[:32]


def process_payload(payload, until):
    n = 0
    while time.monotonic() < until:
        for i in range(200):
            n = (n * 31 + len(payload) + i) % 1000003
    return n


def handle_request(token, until):
    hush = derive(token, "local")          # a local that must stay home
    payload = derive(token, "arg")         # an argument, below
    held = [hush, payload, os.environ.get("CG_SECRET_ENV", "")]
    n = process_payload(payload, until)
    return n + len(held)


def main():
    token = sys.argv[sys.argv.index("--token") + 1]
    seconds = float(sys.argv[-1])
    f = open(os.environ["CG_SECRET_FILE"])
    content = f.read()                     # the file's secret, in memory too
    until = time.monotonic() + seconds
    t = threading.Thread(target=handle_request, args=(token, until))
    t.start()
    handle_request(token, until)
    t.join()
    f.close()
    sys.stdout.write("ok\n" if content else "no file\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

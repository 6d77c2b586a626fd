"""A multi-threaded batch job for trying cgprof: a producer fills a queue,
four worker threads each parse (CPU, pure Python) and compress (zlib, which
releases the GIL) the items, and a monitor thread sleeps and reports.

Profile it:  cgprof run --threads -o batch.svg -- python3 examples/python/batch_job.py
The flame graph has one tower per thread: worker-N threads split between
parse_record and compress_record; the monitor thread shows up only with
--idle (it sleeps)."""
import queue
import sys
import threading
import time
import zlib


def make_item(i):
    return ",".join("field%d=%d" % (k, (i * k) % 997) for k in range(40))


def parse_record(line):
    out = {}
    for part in line.split(","):
        k, _, v = part.partition("=")
        out[k] = int(v) * 3 % 101
    return out


def compress_record(rec):
    return zlib.compress(repr(rec).encode() * 20, 9)


def worker(q, done):
    n = 0
    while True:
        item = q.get()
        if item is None:
            break
        compress_record(parse_record(item))
        n += 1
    done.append(n)


def monitor(stop, done):
    while not stop.is_set():
        time.sleep(0.1)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    q = queue.Queue(maxsize=1000)
    done, stop = [], threading.Event()
    workers = [threading.Thread(target=worker, args=(q, done), name="worker-%d" % i)
               for i in range(4)]
    mon = threading.Thread(target=monitor, args=(stop, done), name="monitor")
    for t in workers + [mon]:
        t.start()
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        q.put(make_item(i))
        i += 1
    for _ in workers:
        q.put(None)
    for t in workers:
        t.join()
    stop.set()
    mon.join()
    print("batch_job: %d items by %d workers" % (sum(done), len(done)))


if __name__ == "__main__":
    main()

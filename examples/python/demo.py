"""A small CPU-bound program for `make demo`: about 3 seconds of work,
split roughly 2:1 between building a report (render_report) and
checksumming records (checksum_records), both called from main().
Its flame graph shows main at the root with those two towers."""
import hashlib
import time


def make_records(n):
    return [("user%05d" % i, i * 7 % 1000, "x" * (i % 50)) for i in range(n)]


def format_row(rec):
    name, score, pad = rec
    return "%-12s %6d %s" % (name, score, pad[:10])


def render_report(records):
    lines = [format_row(r) for r in records]
    lines.sort(key=lambda s: s[13:19])
    return "\n".join(lines)


def checksum_records(records):
    h = hashlib.sha256()
    for name, score, pad in records:
        h.update(name.encode())
        h.update(str(score).encode())
    return h.hexdigest()


def main(seconds=3.0):
    records = make_records(20000)
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        render_report(records)
        render_report(records)
        checksum_records(records)
        rounds += 1
    print("demo: %d rounds" % rounds)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How much JVM sampling slows Demo.java down, per rate: the measurement
behind CG_JVM_DEFAULT_RATE_HZ (include/cgprof/jvm.h). Runs Demo with and
without `cgprof attach` interleaved, compares its own throughput line.
--paired runs a sampled and an unsampled Demo side by side instead, which
cancels other load on the machine but overstates the slowdown somewhat
(the unsampled one gets the cores the paused one leaves).

    python3 examples/java/measure_overhead.py [--rates 0,10,20,30] [--reps 6]
        [--paired] [--cgprof ./cgprof] [--java /usr/bin/java]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="0,10,20,30,50")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--paired", action="store_true")
    ap.add_argument("--cgprof", default=os.path.join(HERE, "..", "..", "cgprof"))
    ap.add_argument("--java", default="/usr/bin/java")
    a = ap.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    if 0.0 not in rates:
        rates.insert(0, 0.0)
    classes = tempfile.mkdtemp(prefix="cgprof-demo-")
    javac = os.path.join(os.path.dirname(os.path.realpath(a.java)), "javac")
    subprocess.run([javac, "-d", classes, os.path.join(HERE, "Demo.java")], check=True)
    skip = 1.0  # JIT warm-up and attach happen before Demo starts counting

    def run(rate, n):
        """n Demos at once, the last sampled at rate (0: none); rounds/s."""
        ps = [subprocess.Popen([a.java, "-cp", classes, "Demo", str(a.seconds), str(skip)],
                               stdout=subprocess.PIPE, text=True) for _ in range(n)]
        prof = None
        if rate > 0:
            time.sleep(0.8)
            prof = subprocess.Popen([a.cgprof, "attach", "-q", "-r", str(rate), "-d",
                                     str(a.seconds - 0.8), "-f", "collapsed", "-o",
                                     os.devnull, str(ps[-1].pid)],
                                    stderr=subprocess.DEVNULL)
        outs = [p.communicate()[0] for p in ps]
        if prof:
            prof.wait()
        return [float(re.search(r"([\d.]+) rounds/s", o).group(1)) for o in outs]

    res = {r: [] for r in rates}
    for _ in range(a.reps):
        for r in rates:  # interleaved, so drift in machine load hits all rates
            if a.paired:
                free, sampled = run(r, 2)
                res[r].append(sampled / free)
            else:
                res[r].append(run(r, 1)[0])
    if a.paired:
        for r in rates:
            print("%6g Hz  slowdown vs its unsampled twin: mean %5.2f%%  median %5.2f%%  runs %s" % (
                r, 100 * (1 - statistics.mean(res[r])), 100 * (1 - statistics.median(res[r])),
                [round(100 * (1 - x), 1) for x in res[r]]))
        return
    base = statistics.mean(res[0.0])
    for r in rates:
        print("%6g Hz  slowdown mean %5.2f%%  median %5.2f%%  runs %s" % (
            r, 100 * (1 - statistics.mean(res[r]) / base),
            100 * (1 - statistics.median(res[r]) / statistics.median(res[0.0])),
            [round(x) for x in res[r]]))


if __name__ == "__main__":
    main()

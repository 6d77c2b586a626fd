#!/usr/bin/env python3
"""What sampling a JVM costs it, side by side in one run (issue 16):
`BenchWork fixed` (two threads of fixed CPU work, timed by the workload
itself) unprofiled, under cgprof and under async-profiler, both at 100 Hz
of CPU time, runs interleaved. Per mode: the workload's own wall time
(slowdown against unprofiled), the safepoints the JVM logged during the
work (-Xlog:safepoint), and the rate held: samples of the two work
threads per second of their CPU time (/proc), against 100 Hz.

    CGPROF=build/cgprof ASPROF=/work/peers/async-profiler/build/bin/asprof \\
        python3 bench/jvm_cost.py        # or: make -C bench jvm-cost

async-profiler is built beside the checkout, never committed; without
ASPROF its column is left out, saying so. Writes its section of
bench/RESULTS.md between the jvm-cost markers. BENCH_QUICK=1: shorter."""
import glob
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import write_section  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")
SRC = os.path.join(HERE, "workloads", "BenchWork.java")
CGPROF = os.environ.get("CGPROF", os.path.join(HERE, "..", "build", "cgprof"))
ASPROF = os.environ.get("ASPROF", "")
JAVA = os.environ.get("JAVA", "/usr/bin/java")
QUICK = bool(os.environ.get("BENCH_QUICK"))
UNITS = int(os.environ.get("BENCH_JVM_UNITS", "1500" if QUICK else "6000"))
REPS = int(os.environ.get("BENCH_JVM_REPS", "2" if QUICK else "5"))
RATE = 100
WORK_THREADS = ("java", "worker")  # comm of BenchWork's main and worker threads
BEGIN, END = "<!-- jvm-cost:begin -->", "<!-- jvm-cost:end -->"


def compile_work():
    d = tempfile.mkdtemp(prefix="cgprof-jvmcost-")
    subprocess.run(["javac", "-d", d, SRC], check=True)
    return d


class WorkCpu(threading.Thread):
    """Polls the CPU time of the workload's two threads; the worker ends
    with the work, so its last reading is kept, not its absence."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.last, self.done = pid, {}, threading.Event()
        self.first = work_cpu(pid)
        self.start()

    def run(self):
        while not self.done.wait(0.02):
            self.last.update(work_cpu(self.pid))

    def stop(self):
        self.done.set()
        self.join()
        self.last.update(work_cpu(self.pid))
        return sum(v - self.first.get(t, 0.0) for t, v in self.last.items())


def work_cpu(pid):
    """{tid: CPU seconds} of the workload's two threads now."""
    tick = os.sysconf("SC_CLK_TCK")
    total = {}
    for stat in glob.glob("/proc/%d/task/*/stat" % pid):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rpartition(")")[2].split()
        if comm in WORK_THREADS:
            total[int(stat.split("/")[4])] = (int(fields[11]) + int(fields[12])) / tick
    return total


def safepoints(log):
    try:
        with open(log) as f:
            return sum(1 for l in f if 'Safepoint "' in l)
    except FileNotFoundError:
        return 0


def work_samples(path, mode):
    """Samples of the two work threads in a collapsed file."""
    n = 0
    try:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                root = stack.split(";", 1)[0]
                if mode == "cgprof":
                    mine = root.startswith("thread main (") or root.startswith("thread worker (")
                else:  # async-profiler -t: "[main tid=123]"
                    mine = root.startswith("[main ") or root.startswith("[worker ")
                if mine and count.isdigit():
                    n += int(count)
    except FileNotFoundError:
        pass
    return n


def one_run(cp, mode, tmp):
    log = os.path.join(tmp, "sp-%s.log" % mode)
    out = os.path.join(tmp, "out-%s.txt" % mode)
    for p in (log, out):
        if os.path.exists(p):
            os.unlink(p)
    jvm = subprocess.Popen([JAVA, "-Xlog:safepoint:file=%s" % log, "-cp", cp, "BenchWork",
                            "fixed", str(UNITS), "3"], stdout=subprocess.PIPE, text=True)
    prof = None
    try:
        assert jvm.stdout.readline().strip() == "ready"
        sp0, meter = safepoints(log), WorkCpu(jvm.pid)
        if mode == "cgprof":
            prof = subprocess.Popen([CGPROF, "attach", "-r", str(RATE), "-d", "600", "--threads",
                                     "-f", "collapsed", "-o", out, str(jvm.pid)],
                                    stderr=subprocess.PIPE, text=True)
        elif mode == "async-profiler":
            subprocess.run([ASPROF, "start", "-e", "cpu", "-i", "%dms" % (1000 // RATE), "-t",
                            str(jvm.pid)], check=True, capture_output=True, timeout=60)
        res = json.loads(jvm.stdout.readline())
        sp1, cpu = safepoints(log), meter.stop()
        summary = ""
        if mode == "cgprof":
            prof.send_signal(signal.SIGINT)
            _, err = prof.communicate(timeout=60)
            summary = [l for l in err.splitlines() if " samples in " in l][-1:]
            summary = summary[0] if summary else err.strip()[-200:]
        elif mode == "async-profiler":
            subprocess.run([ASPROF, "stop", "-o", "collapsed", "-f", out, str(jvm.pid)],
                           check=True, capture_output=True, timeout=60)
        n = work_samples(out, mode) if mode != "none" else 0
        return dict(wall=res["wall_s"], safepoints=sp1 - sp0, cpu=cpu, samples=n,
                    held=n / (cpu * RATE) if cpu > 0 and mode != "none" else None,
                    summary=summary)
    finally:
        if prof and prof.poll() is None:
            prof.kill()
        jvm.kill()
        jvm.wait()


def machine():
    load = os.getloadavg()
    return "%s, %d CPUs, load %.1f/%.1f/%.1f at the start" % (
        platform.node(), os.cpu_count(), load[0], load[1], load[2])


def java_version():
    r = subprocess.run([JAVA, "-version"], capture_output=True, text=True)
    return r.stderr.splitlines()[0] if r.stderr else "?"


def main():
    if not os.access(CGPROF, os.X_OK):
        sys.exit("jvm_cost: %s not built" % CGPROF)
    modes = ["none", "cgprof"]
    if ASPROF and os.access(ASPROF, os.X_OK):
        modes.append("async-profiler")
    else:
        print("jvm_cost: ASPROF not set (or not executable): async-profiler left out", file=sys.stderr)
    cp = compile_work()
    where = machine()
    runs = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="cgprof-jvmcost-") as tmp:
        for rep in range(REPS):
            for m in modes:  # interleaved: drift on a shared machine hits all alike
                r = one_run(cp, m, tmp)
                runs[m].append(r)
                print("rep %d %-14s wall %.3f s  safepoints %d  samples %d  held %s" % (
                    rep, m, r["wall"], r["safepoints"], r["samples"],
                    "%.1f%%" % (100 * r["held"]) if r["held"] is not None else "-"),
                    file=sys.stderr)
    base = statistics.median(r["wall"] for r in runs["none"])
    rows = []
    for m in modes:
        walls = [r["wall"] for r in runs[m]]
        wall = statistics.median(walls)
        held = [r["held"] for r in runs[m] if r["held"] is not None]
        rows.append((m, wall, 100 * (wall / base - 1), min(walls), max(walls),
                     statistics.median(r["safepoints"] for r in runs[m]),
                     max(r["safepoints"] for r in runs[m]),
                     100 * statistics.median(held) if held else None))
    cg_summary = runs["cgprof"][-1]["summary"]
    lines = [BEGIN, "## JVM sampling cost (issue 16): `bench/jvm_cost.py`", "",
             "Machine: %s. JVM: %s. cgprof %s; async-profiler %s." % (
                 where, java_version(), os.path.basename(CGPROF),
                 ASPROF if "async-profiler" in modes else "not run (ASPROF unset)"),
             "",
             "Workload: `BenchWork fixed %d` (two threads of integer mixing and HashMap "
             "counting; its own wall time for the fixed work), %d runs per mode, interleaved, "
             "medians. Both profilers attach after the warm-up and sample CPU time at %d Hz "
             "(cgprof's default walker: per-thread perf CPU-clock events; async-profiler "
             "`-e cpu -i 10ms`, its perf_events mode). Held: samples of the two work threads "
             "per second of their CPU time (/proc), against %d Hz. Safepoints: lines "
             "`Safepoint \"...\"` the JVM logged (-Xlog:safepoint) during the fixed work, "
             "the JVM's own included." % (UNITS, REPS, RATE, RATE),
             "",
             "| mode | wall (median) | slowdown | wall min-max | safepoints (median, max) | rate held |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m, wall, slow, lo, hi, spm, spx, held in rows:
        lines.append("| %s | %.3f s | %s | %.3f-%.3f s | %g, %d | %s |" % (
            m, wall, "%+.2f%%" % slow if m != "none" else "-", lo, hi, spm, spx,
            "%.1f%%" % held if held is not None else "-"))
    lines += ["", "cgprof's own summary of its last run: `%s`" % cg_summary.strip(), "",
              "Targets: slowdown < 1%, >= 95% of 100 Hz held, a handful of safepoints at most. "
              "The spread of the unprofiled runs (min-max) is the noise floor of this "
              "machine: a slowdown inside it is not a measured cost.", END]
    write_section(RESULTS, BEGIN, END, lines)
    print("\n".join(lines[3:-1]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Syscall-site bias of native stacks (issue 15): tests/programs/native_syscall
(getppid after every 16 / 165 / 1650 us of computation) profiled by cgprof
--native (the kernel's CPU-clock samples, the default), cgprof --native-pause
(ptrace pauses, the fallback) and perf record -e cpu-clock, side by side in
one run, against the workload's own measurement of its in-call CPU share.
Writes its section of bench/RESULTS.md (between the native-bias markers).

    python3 bench/native_bias.py          # about 1 minute
    BENCH_QUICK=1 python3 bench/native_bias.py

Environment: CGPROF (default build/cgprof), CGPROF_BUILD (default build),
BENCH_RESULTS (default bench/RESULTS.md), BENCH_QUICK. Needs linux-perf.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CGPROF = os.environ.get("CGPROF", os.path.join(ROOT, "build", "cgprof"))
BUILD = os.environ.get("CGPROF_BUILD", os.path.join(ROOT, "build"))
PROG = os.path.join(BUILD, "tests", "programs", "native_syscall")
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(HERE, "RESULTS.md"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
SECONDS = 2 if QUICK else 5
RATE = 2000
CHUNKS_US = [16, 165, 1650]
START, END = "<!-- native-bias:start -->", "<!-- native-bias:end -->"
TARGET = 1.5  # the call's share at most 1.5x the workload's own


def poisson_q95(mean):
    """smallest k with P(X <= k) >= 0.95 for X ~ Poisson(mean)"""
    import math
    k, p, cdf = 0, math.exp(-mean), 0.0
    while True:
        cdf += p
        if cdf >= 0.95 or k > 100000:
            return k
        k += 1
        p *= mean / k


def verdict(inside, total, truth):
    """the target, or a count the target's share would give 1 run in 20"""
    if not total or truth is None:
        return "n/a"
    if inside <= TARGET * truth * total:
        return "yes"
    if inside <= poisson_q95(TARGET * truth * total):
        return "within noise (%d samples, %.1f expected at the target)" % (
            inside, TARGET * truth * total)
    return "**no**"


def truth_of(stdout):
    m = re.search(r"syscall_share=([0-9.]+)", stdout)
    return float(m.group(1)) if m else None


def share_collapsed(path):
    total = inside = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            if "call_kernel " in stack or stack.endswith("call_kernel"):
                inside += int(count)
    return inside, total


def run_cgprof(mode, chunk, tmp):
    out = os.path.join(tmp, "cg.txt")
    r = subprocess.run([CGPROF, "run", mode, "-r", str(RATE), "-f", "collapsed", "-o", out,
                        "--", PROG, str(SECONDS), str(chunk)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit("native_bias: cgprof %s failed: %s" % (mode, r.stderr.strip()))
    inside, total = share_collapsed(out)
    return inside, total, truth_of(r.stdout)


def run_perf(chunk, tmp):
    data = os.path.join(tmp, "perf.data")
    r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(RATE),
                        "--call-graph", "dwarf,16384", "-o", data, "--", PROG, str(SECONDS),
                        str(chunk)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit("native_bias: perf record failed: %s" % r.stderr.strip())
    truth = truth_of(r.stdout)
    s = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True,
                       text=True, timeout=600)
    total = inside = 0
    # samples are blank-line separated blocks of "ip sym" lines
    for block in s.stdout.split("\n\n"):
        if not block.strip():
            continue
        total += 1
        if re.search(r"\scall_kernel\b", block):
            inside += 1
    return inside, total, truth


def main():
    if not os.access(PROG, os.X_OK):
        sys.exit("native_bias: %s not built (make testprogs)" % PROG)
    have_perf = shutil.which("perf") is not None
    rows = []
    tmp = tempfile.mkdtemp(prefix="cgprof-bias-")
    try:
        for chunk in CHUNKS_US:
            row = {"chunk": chunk}
            for key, mode in (("default", "--native"), ("pause", "--native-pause")):
                row[key] = run_cgprof(mode, chunk, tmp)
            row["perf"] = run_perf(chunk, tmp) if have_perf else None
            rows.append(row)
            print("native_bias: %d us done" % chunk, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    L = [START, "## Native stacks: syscall-site bias (issue 15)", "",
         "`tests/programs/native_syscall SECONDS CHUNK_US` calls `getppid` through "
         "`call_kernel()` after every CHUNK_US of computation and measures the share of its "
         "CPU time inside that call (\"own\"). Each column is the share of samples with "
         "`call_kernel` on the stack, %d s at %d Hz, and in brackets its ratio to the "
         "workload's own share measured in the same run. Target: default at most %.1fx. "
         "Load average at the end: %s. Generated by `bench/native_bias.py`."
         % (SECONDS, RATE, TARGET, load), "",
         "| chunk | own (default run) | `--native` (perf samples, default) | "
         "`--native-pause` (ptrace) | `perf record -e cpu-clock` | default within target |",
         "| ---: | ---: | ---: | ---: | ---: | :---: |"]

    def cell(v):
        if v is None:
            return "n/a"
        inside, total, truth = v
        if not total:
            return "no samples"
        s = inside / total
        ratio = " (%.1fx)" % (s / truth) if truth else ""
        return "%.2f%% of %d%s" % (100 * s, total, ratio)

    for row in rows:
        d = row["default"]
        L.append("| %d us | %.2f%% | %s | %s | %s | %s |"
                 % (row["chunk"], 100 * (d[2] or 0), cell(d), cell(row["pause"]),
                    cell(row["perf"]), verdict(*d)))
    L += ["", END]
    section = "\n".join(L) + "\n"
    print(section)
    text = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    if START in text and END in text:
        a = text.index(START)
        b = text.index(END) + len(END)
        text = text[:a] + section.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(RESULTS, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The truthful-default figures (issue 15), side by side with a peer in one
run, written into bench/RESULTS.md between the truth markers:

  * system-call bias: the share of samples on the line of a cheap system
    call the workload makes every ~150 us (its own measured CPU share
    beside it), cgprof default vs --blocking vs --native (which pauses
    each thread for its native stack) vs austin; and with the
    workload sharing one CPU with a busy loop, default vs austin -s;
  * function split at 1 kHz in the default mode against the workload's
    own thread-CPU measurement;
  * deep stacks (150 frames) whole in kept samples;
  * profiler CPU per sample at depth 20 on one thread and depth 150 on 8
    threads, cgprof default against austin -s (both sample the threads on
    a CPU) at the same rate; raw, and above the wake floor: the CPU a
    loop that only sleeps to each tick costs (bench/floor.c), which both
    pay each round before reading a byte;
  * 10 kHz on one thread: achieved rate and lost samples; and apart
    (`truth.py rate`, its own section), the same beside a loop that only
    wakes to each tick (bench/floor: the ticks this machine itself makes
    any sleeping sampler miss) and austin -s at the same interval,
    alternated on one workload, with the hypervisor's steal meanwhile;
  * 64 busy threads at 100 Hz: the wall time of a fixed amount of work
    under `cgprof run` against unprofiled runs, alternated, medians; and
    apart (`truth.py pace`, its own section), the work per second of one
    64-thread process in windows sampled and not, in pairs.

    AUSTIN=/path/to/austin python3 bench/truth.py    # austin 3.x, for 3.11+
    AUSTIN=... python3 bench/truth.py rate           # only the 10 kHz section
    python3 bench/truth.py pace                      # only the 64-thread windows
    BENCH_QUICK=1 ...                                # short runs

Environment: CGPROF (default build/cgprof), AUSTIN (a peer built beside the
checkout; without it the austin columns say "no peer"), BENCH_OUT,
BENCH_RESULTS. Needs root: both profilers attach to workloads they did not
start."""
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import write_section  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CGPROF = os.environ.get("CGPROF", os.path.join(ROOT, "build", "cgprof"))
AUSTIN = os.environ.get("AUSTIN", "")
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "out"))
FLOOR = os.environ.get("BENCH_FLOOR", os.path.join(ROOT, "build", "bench", "floor"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(HERE, "RESULTS.md"))
PYLOAD = os.path.join(HERE, "workloads", "pyload.py")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
S = 2.0 if QUICK else 6.0
BEGIN, END = "<!-- truth:begin -->", "<!-- truth:end -->"
RATE_BEGIN, RATE_END = "<!-- truth-rate:begin -->", "<!-- truth-rate:end -->"
PACE_BEGIN, PACE_END = "<!-- truth-pace:begin -->", "<!-- truth-pace:end -->"


def pythons():
    """(label, exe) of CPython 3.11+ here: pyenv, and the sid root's."""
    found = []
    for d in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[1-9]*"))):
        found.append(("3." + os.path.basename(d).split(".")[1], os.path.join(d, "bin", "python3")))
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import cgtest
    for label, exe, ver in cgtest.sid_pythons():
        found.append(("%d.%d" % ver, exe))
    return found


def older_pythons():
    """(label, exe) of CPython 3.6-3.10 under pyenv: no peer here (austin
    3.7's row starts at 3.11 in this bench), the split and deep stacks only."""
    found = []
    for d in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[6-9].*")) +
                    glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*"))):
        found.append(("3." + os.path.basename(d).split(".")[1], os.path.join(d, "bin", "python3")))
    return found


def start(exe, *args):
    p = subprocess.Popen([exe, PYLOAD] + list(args), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError("workload did not start: %r" % line)
    return p


def finish(p):
    out = p.stdout.read()
    p.wait()
    return json.loads(out.strip().splitlines()[-1])


def timed(argv, timeout):
    """Run a profiler; (stdout, stderr, its CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r.stdout, r.stderr, cpu


def cg_attach(pid, path, hz, seconds, *opts):
    _, err, cpu = timed([CGPROF, "attach", "-r", str(hz), "-d", str(seconds), "-f", "collapsed",
                         "-o", path] + list(opts) + [str(pid)], seconds + 60)
    m = re.search(r"(\d+) samples in ([\d.]+) s, ([\d.]+) Hz achieved of [\d.]+ Hz; (\d+) lost", err)
    if not m:
        raise RuntimeError("cgprof: %s" % err.strip())
    return {"samples": int(m.group(1)), "hz": float(m.group(3)), "lost": int(m.group(4)),
            "cpu": cpu, "stacks": cg_stacks(path)}


def cg_stacks(path):
    """[(frames [(name, line)], count)], root first."""
    out = []
    for line in open(path, errors="replace"):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        frames = []
        for fr in stack.split(";"):
            m = re.match(r"^(.*) \((.*):(\d+)\)$", fr)
            frames.append((m.group(1), int(m.group(3))) if m else (fr, 0))
        out.append((frames, int(n)))
    return out


def austin_attach(pid, path, hz, seconds, sleepless=False):
    """austin 3.x for `seconds` (it has no duration: stopped by SIGINT);
    sleepless: -s, only threads on a CPU (cgprof's default)."""
    if not AUSTIN:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen([AUSTIN, "-i", str(max(1, 1000000 // hz)), "-o", path, "-p", str(pid)]
                         + (["-s"] if sleepless else []),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    p.send_signal(2)
    err = p.communicate(timeout=60)[1]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"Error rate : \S*?(\d+)\S*/\S*?(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", err))
    stacks = []
    for line in open(path, errors="replace"):
        if not line.startswith("P"):
            continue
        stack, _, n = line.rstrip("\n").rpartition(" ")
        frames = []
        for fr in stack.split(";")[2:]:
            parts = fr.rsplit(":", 2)
            if len(parts) == 3 and parts[2].isdigit():
                frames.append((parts[1], int(parts[2])))
        if frames:
            stacks.append((frames, 1))  # one line per sample and thread
    # thread samples, as cgprof counts them (one output line each); a
    # version austin cannot read leaves almost none
    n = len(stacks)
    if n < 10:
        return None
    return {"samples": n, "cpu": cpu, "stacks": stacks, "errors": m.group(0) if m else ""}


def share(stacks, pred):
    tot = sum(n for _, n in stacks)
    return sum(n for fr, n in stacks if pred(fr)) / tot if tot else float("nan")


def med(v):
    """The middle value (the upper one of an even count)."""
    return sorted(v)[len(v) // 2]


def fmt(x, pct=True):
    if x is None or x != x:
        return "—"
    return "%.2f%%" % (100 * x) if pct else "%.2f" % x


def bias(exe, rows):
    line = None
    res = {}
    opts = {"default": [], "blocking": ["--blocking"], "native": ["--native"]}
    for variant in ("default", "blocking", "native", "austin"):
        p = start(exe, "syscall", "--seconds", str(S + 1))
        path = os.path.join(OUT, "truth-bias-%s.txt" % variant)
        if variant == "austin":
            r = austin_attach(p.pid, path, 1000, S)
        else:
            try:
                r = cg_attach(p.pid, path, 1000, S, *opts[variant])
            except RuntimeError:
                if variant != "native":
                    raise
                r = None  # no native stacks here (a stripped interpreter)
        truth = finish(p)
        line = truth["line_syscall"]
        res[variant] = None if r is None else syscall_line_share(r["stacks"], line)
        res["truth"] = truth["syscall_share"]
    rows.append((res["truth"], res["default"], res["blocking"], res["native"], res["austin"],
                 res["default"] / res["austin"] if res.get("austin") else None))


def syscall_line_share(stacks, line):
    """Share of samples whose innermost Python frame is the workload's
    system-call line (with --native, native frames follow it)."""
    def on_line(fr):
        py = [f for f in fr if f[0] == "mode_syscall"]
        return bool(py) and py[-1][1] == line
    return share([(fr, n) for fr, n in stacks if any(f[0] == "mode_syscall" for f in fr)], on_line)


def bias_busy_cpu(exe):
    """The same workload sharing one CPU with a busy loop: (its own share,
    cgprof default, austin -s). The scheduler preempts it at the system
    call's return; a sampler that counts a runnable thread as on a CPU
    puts its wait there."""
    cpu = min(os.sched_getaffinity(0))
    res = {}
    for variant in ("default", "austin"):
        hog = subprocess.Popen(["sh", "-c", "while :; do :; done"])
        try:
            os.sched_setaffinity(hog.pid, {cpu})
            p = start(exe, "syscall", "--seconds", str(S + 1))
            os.sched_setaffinity(p.pid, {cpu})
            path = os.path.join(OUT, "truth-busy-%s.txt" % variant)
            r = (cg_attach(p.pid, path, 1000, S) if variant == "default"
                 else austin_attach(p.pid, path, 1000, S, sleepless=True))
            truth = finish(p)
        finally:
            hog.kill()
            hog.wait()
        res[variant] = None if r is None else syscall_line_share(r["stacks"], truth["line_syscall"])
        res.setdefault("truth", truth["syscall_share"])
    return res["truth"], res["default"], res["austin"]


def split_error(exe):
    p = start(exe, "split", "--seconds", str(S + 1))
    r = cg_attach(p.pid, os.path.join(OUT, "truth-split.txt"), 1000, S)
    truth = finish(p)
    a = share(r["stacks"], lambda fr: any(f[0] == "a_compute" for f in fr))
    b = share(r["stacks"], lambda fr: any(f[0] == "b_mixed" for f in fr))
    return abs(a / (a + b) - truth["a_share"]) * 100


def deep_whole(exe):
    p = start(exe, "stack", "--threads", "1", "--depth", "150", "--seconds", str(S + 1))
    r = cg_attach(p.pid, os.path.join(OUT, "truth-deep.txt"), 1000, S)
    finish(p)
    # whole: <module> at the root, spin at the leaf, 148 descend between
    ok = share(r["stacks"], lambda fr: fr[0][0] == "<module>" and fr[-1][0] == "spin" and
               sum(1 for f in fr if f[0] == "descend") == 148)
    return ok


def floor_us(hz, seconds):
    """CPU µs a round of a sampler that does nothing but wake (bench/floor)."""
    if not os.path.exists(FLOOR):
        return None
    _, _, cpu = timed([FLOOR, str(hz), str(seconds)], seconds + 30)
    return 1e6 * cpu / (hz * seconds)


def cost(exe, threads, depth):
    """µs of CPU per thread sample, raw and above the wake floor, cgprof
    default against austin -s (both sample the threads on a CPU)."""
    out = {"floor": floor_us(1000, S)}
    for variant in ("cgprof", "austin"):
        p = start(exe, "stack", "--threads", str(threads), "--depth", str(depth),
                  "--seconds", str(S + 1))
        path = os.path.join(OUT, "truth-cost-%s.txt" % variant)
        r = (cg_attach(p.pid, path, 1000, S) if variant == "cgprof"
             else austin_attach(p.pid, path, 1000, S, sleepless=True))
        finish(p)
        if not r or not r["samples"]:
            out[variant] = out[variant + "_above"] = None
            continue
        out[variant] = 1e6 * r["cpu"] / r["samples"]
        # the floor of the rounds run (nominal for austin, which does not
        # say), spread over the samples they took
        rounds = r["hz"] * S if "hz" in r else 1000 * S
        out[variant + "_above"] = (None if out["floor"] is None else
                                   (1e6 * r["cpu"] - out["floor"] * rounds) / r["samples"])
    return out


def rate10k(exe):
    p = start(exe, "stack", "--threads", "1", "--depth", "20", "--seconds", str(S + 1))
    r = cg_attach(p.pid, os.path.join(OUT, "truth-10k.txt"), 10000, S)
    finish(p)
    return r["hz"], r["lost"] / max(1, r["samples"] + r["lost"])


def steal_s():
    """Seconds of steal so far, summed over the CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def task_run_ns(pid):
    """CPU time of every thread of pid so far, in ns (schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread gone meanwhile
    return total


def floor_lost(hz, seconds):
    """Share of ticks the wake-only loop missed (bench/floor's own count)."""
    out, err, _ = timed([FLOOR, str(hz), str(seconds)], seconds + 30)
    rounds, lost = (int(x) for x in out.split())
    return lost / max(1, rounds + lost)


def rate10k_beside(exe, pairs):
    """10 kHz on one thread at depth 20, one workload: cgprof, the
    wake-only loop and austin -s -i 100 taken in turn, `pairs` times.
    Lists per variant: cgprof (Hz, lost share), loop lost share, austin
    Hz (its samples over the window: it counts no lost ticks), steal
    as a share of all CPUs' time during cgprof's windows."""
    if not os.path.exists(FLOOR):
        raise RuntimeError("no %s (make -C bench)" % FLOOR)
    p = start(exe, "stack", "--threads", "1", "--depth", "20",
              "--seconds", str(pairs * 3 * (S + 2) + 10))
    out = {"cgprof": [], "floor": [], "austin": [], "steal": []}
    ncpu = os.cpu_count() or 1
    try:
        for _ in range(pairs):
            out["floor"].append(floor_lost(10000, S))
            st = steal_s()
            r = cg_attach(p.pid, os.path.join(OUT, "truth-10k.txt"), 10000, S)
            out["steal"].append((steal_s() - st) / (S * ncpu))
            out["cgprof"].append((r["hz"], r["lost"] / max(1, r["samples"] + r["lost"])))
            a = austin_attach(p.pid, os.path.join(OUT, "truth-10k-austin.txt"), 10000, S,
                              sleepless=True)
            if a:
                out["austin"].append(a["samples"] / S)
    finally:
        p.kill()
        p.wait()
    return out


def rate_section():
    """The 10 kHz figures beside the machine's own floor and the peer."""
    pairs = 2 if QUICK else 3
    load = os.getloadavg()
    lines = [RATE_BEGIN, "## 10 kHz beside the wake floor (issue 15): `bench/truth.py rate`", "",
             "Run %s on %s, load %.1f/%.1f/%.1f; %d rounds of %s s per variant, taken in turn "
             "on one workload (1 thread, depth 20); median (min–max)."
             % (time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename, load[0], load[1], load[2],
                pairs, S), "",
             "| CPython | cgprof achieved | cgprof lost | wake-only loop lost | austin -s -i 100 "
             "achieved | steal during cgprof |", "| --- | --- | --- | --- | --- | --- |"]

    def span(v, f):
        return "%s (%s–%s)" % (f(med(v)), f(min(v)), f(max(v))) if v else "—"
    hz = lambda x: "%.0f Hz" % x
    for label, exe in pythons():
        sys.stderr.write("truth rate: CPython %s\n" % label)
        try:
            r = rate10k_beside(exe, pairs)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
            lines.append("| %s | failed: %s |" % (label, str(e).splitlines()[0][:120]))
            continue
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            label, span([h for h, _ in r["cgprof"]], hz), span([l for _, l in r["cgprof"]], fmt),
            span(r["floor"], fmt), span(r["austin"], hz), span(r["steal"], fmt)))
    lines += ["", "The wake-only loop (bench/floor) reads nothing: it sleeps to each tick with "
              "cgprof's deadlines and timer slack and counts a tick lost by cgprof's rule (its "
              "deadline a whole period past by the time the loop gets to it). What it loses is "
              "what this machine's wake-ups cost any sampler that sleeps between ticks. austin "
              "counts no lost ticks; its achieved rate is its samples over the window. Steal: "
              "time the hypervisor ran something else on our vCPUs, as a share of all of them.",
              RATE_END]
    write_section(RESULTS, RATE_BEGIN, RATE_END, lines)
    print("\n".join(lines))


def pace64(exe, pairs, w, sample=True):
    """100 Hz on 64 busy threads, on one process: the work done per
    second in windows with `cgprof attach` sampling it against windows
    without, taken in pairs (the order alternates, so a drift of the
    machine counts against both). Each window's rate is measured between
    two of the workload's own progress lines inside it, after its first
    0.5 s (attach's start-up: the profile of a running service is the
    steady state). sample=False: the control, both windows unsampled
    (the method's own noise). Beside each sampled window, cgprof's own
    CPU time (from 0.5 s in, as the rate's window) as a share of the
    machine's CPUs over it: on a machine the workload saturates, that is
    CPU the workload loses, a floor of the slowdown the wall figure's
    noise cannot hide. [(slowdown of the pair,
    steal share, cgprof's CPU share or None)]."""
    total = pairs * 2 * (w + 1) + 5
    p = start(exe, "pace", "--threads", "64", "--seconds", str(total))
    lines = []

    def reader():
        for line in p.stdout:
            parts = line.split()
            if len(parts) == 2:
                lines.append((float(parts[0]), int(parts[1])))
    import threading
    th = threading.Thread(target=reader, daemon=True)
    th.start()

    ncpu = os.cpu_count() or 1
    used = []

    def window(profiled):
        t0 = time.monotonic()
        if profiled and sample:
            c = subprocess.Popen([CGPROF, "attach", "-r", "100", "-d", str(w), "-f",
                                  "collapsed", "-o", os.path.join(OUT, "truth-pace.txt"),
                                  str(p.pid)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            # its steady state, as the rate's: from 0.5 s in to just before its end
            time.sleep(0.5)
            a = time.monotonic(), task_run_ns(c.pid)
            time.sleep(max(0.1, w - 0.8))
            b = time.monotonic(), task_run_ns(c.pid)
            err = c.communicate(timeout=w + 60)[1]
            if c.returncode:
                raise RuntimeError("64 threads: %s" % err.strip()[-200:])
            used.append((b[1] - a[1]) / 1e9 / ((b[0] - a[0]) * ncpu))
        else:
            time.sleep(w)
        t1 = time.monotonic()
        time.sleep(0.6)  # the reader has every line of the window
        inside = [x for x in lines if t0 + 0.5 <= x[0] <= t1]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < w / 3:
            raise RuntimeError("64 threads: %d progress lines in a %s s window"
                               % (len(inside), w))
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    out = []
    try:
        for k in range(pairs):
            st, t = steal_s(), time.monotonic()
            order = (False, True) if k % 2 == 0 else (True, False)
            rate = {prof: window(prof) for prof in order}
            out.append((rate[False] / rate[True] - 1,
                        (steal_s() - st) / ((time.monotonic() - t) * ncpu),
                        used[-1] if sample else None))
    finally:
        p.kill()
        p.wait()
    return out


def pace_section():
    """64 threads at 100 Hz in windows on one process, per CPython."""
    pairs, w = (2, 3) if QUICK else (12, 4)
    load = os.getloadavg()
    lines = [PACE_BEGIN, "## 64 threads at 100 Hz, windows on one process (issue 15): "
             "`bench/truth.py pace`", "",
             "Run %s on %s, load %.1f/%.1f/%.1f; %d pairs of %s s windows, sampled and not, "
             "on one `pyload.py pace --threads 64` process; median (min–max)."
             % (time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename, load[0], load[1], load[2],
                pairs, w), "",
             "| CPython | slowdown | cgprof CPU, share of the machine | steal |",
             "| --- | --- | --- | --- |"]
    runs = [(label, exe, True) for label, exe in pythons()]
    if runs:  # the control first, on the first CPython
        runs.insert(0, (runs[0][0] + " control: neither window sampled", runs[0][1], False))
    for label, exe, sample in runs:
        sys.stderr.write("truth pace: CPython %s\n" % label)
        try:
            r = pace64(exe, pairs, w, sample)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
            lines.append("| %s | failed: %s |" % (label, str(e).splitlines()[0][:120]))
            continue
        sl, st, cu = [x[0] for x in r], [x[1] for x in r], [x[2] for x in r if x[2] is not None]
        own = "%s (%s–%s)" % (fmt(med(cu)), fmt(min(cu)), fmt(max(cu))) if cu else "—"
        lines.append("| %s | %+.1f%% (%+.1f%%–%+.1f%%) | %s | %s (%s–%s) |" % (
            label, 100 * med(sl), 100 * min(sl), 100 * max(sl), own, fmt(med(st)),
            fmt(min(st)), fmt(max(st))))
    lines += ["", "Each pair is one window with `cgprof attach -r 100` sampling the 64 threads "
              "and one without, back to back (the order alternates); a window's rate is the "
              "workload's own count of work units between two of its progress lines inside the "
              "window, after its first 0.5 s. Slowdown: the unsampled rate over the sampled one, "
              "less 1. Target: < 2%. The control row takes its pairs the same way with "
              "neither window sampled: its spread is what the method can resolve on this "
              "machine at the time. cgprof CPU: its threads' run time (schedstat) from 0.5 s "
              "into the sampled window to just before its end, as a share of all the "
              "machine's CPUs; the 64 threads keep every CPU busy, so that share is taken "
              "from them whatever the wall figure's noise.",
              PACE_END]
    write_section(RESULTS, PACE_BEGIN, PACE_END, lines)
    print("\n".join(lines))


def slowdown64(exe):
    """% more wall time for fixed work on 64 threads under cgprof at 100 Hz
    (five runs each way, alternated; medians)."""
    walls = {"plain": [], "cgprof": []}
    argv = [exe, PYLOAD, "slow", "--threads", "64", "--units", str(4000 if QUICK else 20000)]
    for _ in range(3 if QUICK else 5):
        for variant in ("plain", "cgprof"):
            pre = ([CGPROF, "run", "-r", "100", "-f", "collapsed", "-o",
                    os.path.join(OUT, "truth-64.txt"), "--"] if variant == "cgprof" else [])
            r = subprocess.run(pre + argv, capture_output=True, text=True, timeout=600)
            if r.returncode:
                raise RuntimeError("64 threads, %s: %s" % (variant, r.stderr.strip()[-200:]))
            walls[variant].append(json.loads(r.stdout.strip().splitlines()[-1])["wall_s"])
    return 100 * (med(walls["cgprof"]) / med(walls["plain"]) - 1)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["rate"]:
        rate_section()
        return
    if sys.argv[1:] == ["pace"]:
        pace_section()
        return
    if sys.argv[1:]:
        sys.exit("usage: truth.py [rate | pace]")
    au = "no peer (set AUSTIN=)"
    if AUSTIN:
        au = subprocess.run([AUSTIN, "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    lines = [BEGIN, "## Truthful default (issue 15): `bench/truth.py`", "",
             "Run %s on %s, load %.1f/%.1f/%.1f; peer: %s; %s s per figure at 1 kHz."
             % (time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename, load[0], load[1], load[2],
                au, S), ""]
    lines += ["| CPython | syscall CPU (own) | cgprof default | cgprof --blocking | cgprof --native | austin | "
              "default/austin | busy CPU: own, cgprof default, austin -s | split error, pts | deep 150 whole | µs CPU/sample d20×1: cgprof, "
              "austin -s, ratio | d150×8: cgprof, austin -s, ratio | wake floor, µs/round | "
              "10 kHz achieved, lost | 64 threads at 100 Hz, slowdown |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, exe in pythons():
        sys.stderr.write("truth: CPython %s\n" % label)
        rows = []
        try:
            bias(exe, rows)
            busy = bias_busy_cpu(exe)
            err = split_error(exe)
            whole = deep_whole(exe)
            c1 = cost(exe, 1, 20)
            c8 = cost(exe, 8, 150)
            hz, lost = rate10k(exe)
            slow64 = slowdown64(exe)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
            lines.append("| %s | failed: %s |" % (label, str(e).splitlines()[0][:120]))
            continue
        t, d, b, nat, a, ratio = rows[0]

        def c(x):
            def pair(k):
                a, b = x[k], x["austin" + k[6:]]
                return ("%.1f, %s, %s" % (a, "%.1f" % b if b else "—", "%.2f×" % (a / b) if b else "—")
                        if a is not None else "—")
            return "%s; above floor: %s" % (pair("cgprof"), pair("cgprof_above"))
        fl = c1["floor"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %.0f Hz, %s | %+.1f%% |" % (
            label, fmt(t), fmt(d), fmt(b), fmt(nat), fmt(a), "%.2f×" % ratio if ratio else "—",
            "%s, %s, %s" % tuple(fmt(x) for x in busy), err,
            fmt(whole), c(c1), c(c8), "%.1f" % fl if fl is not None else "—", hz, fmt(lost),
            slow64))
    lines += ["", "Older CPythons (the frame chain, not the data-stack chunks of 3.11+), default "
              "mode at 1 kHz:", "", "| CPython | split error, pts | deep 150 whole |",
              "| --- | --- | --- |"]
    for label, exe in older_pythons():
        sys.stderr.write("truth: CPython %s (split, deep)\n" % label)
        try:
            lines.append("| %s | %.1f | %s |" % (label, split_error(exe), fmt(deep_whole(exe))))
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
            lines.append("| %s | failed: %s |" % (label, str(e).splitlines()[0][:120]))
    lines += ["", "Busy CPU: the syscall workload and a shell busy loop pinned to one CPU, so the "
              "workload runs about a third to half of the time and the scheduler preempts it at "
              "the system call's return; its own share is CPU time, from its thread CPU clock.",
              "", "Targets: the system-call line at most 1.5× its unpaused share; split within 2 "
              "points; deep stacks whole in ≥ 99% of kept samples; CPU per sample ≤ 0.5× austin "
              "at depth 20 on one thread, ≤ 0.3× at depth 150 on 8 threads; 10 kHz with < 1% "
              "lost; 100 Hz on 64 busy threads at < 2% slowdown.", "",
              "CPU per sample is the profiler's CPU time over the thread samples it took; austin "
              "runs with -s, so both sample only the threads on a CPU. The wake floor is what "
              "bench/floor.c, a loop that only sleeps to each tick at 1 kHz, costs a round on "
              "this machine; \"above floor\" takes it off each profiler's CPU, round by round "
              "(austin's rounds taken as nominal), before dividing by its samples.", END]
    write_section(RESULTS, BEGIN, END, lines)
    print("\n".join(lines))
    rate_section()
    pace_section()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""cgprof against austin (issue 9): runs every figure and writes bench/RESULTS.md.

    python3 bench/run.py            # full run (about 15-20 minutes)
    BENCH_QUICK=1 python3 bench/run.py   # short durations, for development

Environment: CGPROF (binary, default build/cgprof), BENCH_OUT (raw outputs,
default bench/out), BENCH_RESULTS (default bench/RESULTS.md), BENCH_QUICK.
Needs root (austin and cgprof attach to processes they did not start).
"""
import glob
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CGPROF = os.environ.get("CGPROF", os.path.join(ROOT, "build", "cgprof"))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "out"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(HERE, "RESULTS.md"))
NOTES = os.path.join(HERE, "NOTES.md")
PYLOAD = os.path.join(HERE, "workloads", "pyload.py")
JAVA_SRC = os.path.join(HERE, "workloads", "BenchWork.java")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")

# Durations (full / quick). The full run stays under ~20 minutes.
PERSAMPLE_S = 1.0 if QUICK else 3.0
PERSAMPLE_HZ = 1000
SLOW_UNITS = 3000 if QUICK else 16000      # ~0.3 s / ~1.5 s of work
SLOW_REPS = 3 if QUICK else 5
RATE_S = 1.0 if QUICK else 3.0
RATES = [1000, 2000, 5000, 10000, 20000, 50000]
RSS_S = 15 if QUICK else 300
SPLIT_S = 3 if QUICK else 10
SPLIT_HZ = 1000
JVM_UNITS = 600 if QUICK else 3000
JVM_REPS = 3 if QUICK else 5
HEAP_REPS = 3 if QUICK else 5

if os.environ.get("BENCH_SMOKE"):  # only to test the harness itself
    PERSAMPLE_S, SLOW_UNITS, SLOW_REPS, RATE_S, RATES, RSS_S, SPLIT_S = 0.5, 300, 1, 0.5, [1000, 2000], 3, 1
    JVM_UNITS, JVM_REPS, HEAP_REPS = 100, 1, 1

TARGETS = {"slow_nb": 1.0, "slow_b": 3.0, "rate": 10000, "rss_mb": 32.0, "acc_pts": 2.0}

log_lines = []


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# --- processes ------------------------------------------------------------

class Proc:
    """A child we started; wait() gives its rusage (CPU, peak RSS)."""

    def __init__(self, argv, stdout=subprocess.DEVNULL, stderr=None, **kw):
        self.argv = argv
        self.errpath = None
        if stderr is None:
            self.errpath = os.path.join(OUT, "stderr-%d-%d.txt" % (os.getpid(), random.randrange(1 << 30)))
            stderr = open(self.errpath, "w")
        self.p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, **kw)
        if self.errpath:
            stderr.close()
        self.pid = self.p.pid
        self.t0 = time.monotonic()
        self.rc = None
        self.ru = None

    def wait(self, timeout):
        end = time.monotonic() + timeout
        if self.ru is not None:
            return self
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.rc = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
                self.ru = ru
                self.p.returncode = self.rc
                self.wall = time.monotonic() - self.t0
                return self
            if time.monotonic() > end:
                log("timeout: %s" % " ".join(self.argv[:6]))
                self.p.send_signal(signal.SIGINT)
                for _ in range(500):
                    pid, status, ru = os.wait4(self.pid, os.WNOHANG)
                    if pid:
                        break
                    time.sleep(0.01)
                else:
                    self.p.kill()
                    pid, status, ru = os.wait4(self.pid, 0)
                self.p.returncode = -1
                self.ru = ru
                self.rc = -1
                self.wall = time.monotonic() - self.t0
                return self
            time.sleep(0.01)

    def running(self):
        """Still running? (without reaping it: wait() wants its rusage)"""
        if self.ru is not None:
            return False
        r = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return r is None

    def cpu_s(self):
        return self.ru.ru_utime + self.ru.ru_stime

    def maxrss_mb(self):
        return self.ru.ru_maxrss / 1024.0

    def stderr_text(self):
        if not self.errpath:
            return ""
        with open(self.errpath, errors="replace") as f:
            t = f.read()
        os.unlink(self.errpath)
        return t

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Workload:
    """A workload started by us. A thread reads its stdout and reaps it the
    moment it exits (a zombie would keep austin -p sampling); ready() waits
    for its 'ready' line, result() for its JSON line."""

    def __init__(self, argv):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  universal_newlines=True)
        self.pid = self.p.pid
        self.lines = []
        self.is_ready = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            line = line.strip()
            if line == "ready":
                self.is_ready.set()
            self.lines.append(line)
        self.p.wait()
        self.done.set()
        self.is_ready.set()

    def ready(self, timeout=120):
        if not self.is_ready.wait(timeout) or self.done.is_set():
            raise RuntimeError("workload not ready: %s" % " ".join(self.argv))

    def result(self, timeout=600):
        if not self.done.wait(timeout):
            self.kill()
        for line in self.lines[::-1]:
            if line.startswith("{"):
                return json.loads(line)
        return None

    def kill(self):
        if not self.done.is_set():
            try:
                self.p.kill()
            except OSError:
                pass
        self.done.wait(30)


def run_workload(argv, timeout=600):
    """A command that prints one JSON line at the end (maybe under a
    profiler); returns (json, stderr)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    res = None
    for line in p.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            res = json.loads(line)
            break
    return res, p.stderr


# --- output parsers ---------------------------------------------------------

SUMMARY_RE = re.compile(r"cgprof: (\d+) samples in ([\d.]+) s, ([\d.]+) Hz achieved of ([\d.]+) Hz; "
                        r"(\d+) lost(?: \(([^)]*)\))?(?:; paused (?:\d+ times, )?(\d+) us mean, (\d+) us p99)?")


def cg_summary(text):
    m = None
    for m in SUMMARY_RE.finditer(text):
        pass
    if not m:
        raise RuntimeError("no cgprof summary in: %s" % text[-500:])
    return {"samples": int(m.group(1)), "elapsed": float(m.group(2)), "hz": float(m.group(3)),
            "rate": float(m.group(4)), "lost": int(m.group(5)), "lost_why": m.group(6) or "",
            "pause_mean_us": float(m.group(7)) if m.group(7) else None,
            "pause_p99_us": float(m.group(8)) if m.group(8) else None}


def austin_stats(text):
    m = re.search(r"Error rate : (\d+)/(\d+)", text)
    return int(m.group(2)) if m else None


CG_FRAME = re.compile(r"^(.*) \((.*):(\d+)\)$")


def cg_stacks(path):
    """Collapsed cgprof output -> list of (frames [(name, line)], count)."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, n = line.rpartition(" ")
            frames = []
            for fr in stack.split(";"):
                m = CG_FRAME.match(fr)
                frames.append((m.group(1), int(m.group(3))) if m else (fr, 0))
            out.append((frames, int(n)))
    return out


def austin_stacks(path):
    """austin 1.x output: one line per thread per sample,
    'Thread X;name (file);L12;name (file);L34 <usec>'. Count each line
    once; returns (stacks, per-thread sums of the time metric)."""
    out = []
    span = {}
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.startswith("Thread "):
                continue
            stack, _, n = line.rpartition(" ")
            parts = stack.split(";")
            thread = parts[0]
            try:
                span[thread] = span.get(thread, 0) + int(n)
            except ValueError:
                continue
            frames = []
            for p in parts[1:]:
                if p.startswith("L") and p[1:].isdigit() and frames:
                    frames[-1] = (frames[-1][0], int(p[1:]))
                else:
                    frames.append((p.rsplit(" (", 1)[0], 0))
            out.append((frames, 1))
    return out, span


# --- environment --------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return "(%s)" % e


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pythons():
    found = []
    for d in glob.glob(os.path.expanduser("~/.pyenv/versions/3.*")):
        exe = os.path.join(d, "bin", "python")
        m = re.match(r"3\.(\d+)\.", os.path.basename(d) + ".")
        if os.access(exe, os.X_OK) and m:
            found.append((int(m.group(1)), os.path.basename(d), exe))
    return [(v, exe) for _, v, exe in sorted(found)]


def austin_ok(exe):
    """Does austin profile this CPython correctly (the workload's own
    functions show up in most samples)?"""
    path = os.path.join(OUT, "austin-probe.txt")
    try:
        p = subprocess.run(["austin", "-i", "1000", "-o", path, exe, PYLOAD, "split", "--seconds", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if p.returncode != 0:
            return False
        stacks, _ = austin_stacks(path)
    except Exception:  # noqa: BLE001
        return False
    hit = sum(1 for fr, _ in stacks if any(n in ("a_compute", "b_mixed") for n, _ in fr))
    return len(stacks) > 100 and hit > 0.5 * len(stacks)


def cg_cmd(*args):
    return [CGPROF] + list(args)


# --- (1) profiler CPU per sample ----------------------------------------------

def persample(pys, austin_py):
    rows = []
    for threads in (1, 8, 64):
        for depth in (20, 200):
            for ver, exe in pys:
                with_austin = ver == austin_py[0]
                row = {"py": ver, "threads": threads, "depth": depth}
                for variant in ("idle", "default", "austin"):
                    if variant != "idle" and not with_austin:
                        continue
                    w = Workload([exe, PYLOAD, "stack", "--threads", str(threads), "--depth", str(depth),
                                  "--seconds", str(PERSAMPLE_S + 1.0)])
                    try:
                        w.ready()
                        if variant == "austin":
                            apath = os.path.join(OUT, "ps-austin.txt")
                            p = Proc(["austin", "-i", str(1000000 // PERSAMPLE_HZ), "-o", apath,
                                      "-p", str(w.pid)]).wait(PERSAMPLE_S + 120)
                            n = austin_stats(p.stderr_text())
                            if n is None:
                                n = len(austin_stacks(apath)[0])
                            row["au_cpu"] = p.cpu_s()
                            row["au_n"] = n
                            row["au_us"] = 1e6 * p.cpu_s() / n if n else None
                        else:
                            extra = ["--idle"] if variant == "idle" else []
                            p = Proc(cg_cmd("attach", "-r", str(PERSAMPLE_HZ), "-d",
                                            str(PERSAMPLE_S), *extra, "-f", "collapsed", "-o",
                                            os.path.join(OUT, "ps-cgprof.txt"), str(w.pid))).wait(PERSAMPLE_S + 120)
                            s = cg_summary(p.stderr_text())
                            key = "cg" if variant == "idle" else "cgd"
                            row[key + "_cpu"] = p.cpu_s()
                            row[key + "_n"] = s["samples"]
                            row[key + "_hz"] = s["hz"]
                            row[key + "_us"] = 1e6 * p.cpu_s() / s["samples"] if s["samples"] else None
                    except Exception as e:  # noqa: BLE001
                        log("per-sample %s %s T=%d D=%d failed: %s" % (ver, variant, threads, depth, e))
                    finally:
                        w.kill()
                log("per-sample %s T=%d D=%d: %s" % (ver, threads, depth,
                    {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
                rows.append(row)
    return rows


# --- (2) target slowdown --------------------------------------------------------

def slowdown(pys, austin_py):
    res = {}
    for ver, exe in pys:
        if ver < austin_py[0]:
            continue
        configs = [("none", None)]
        for hz in (100, 1000):
            configs.append(("cg_b_%d" % hz, cg_cmd("run", "-r", str(hz), "-f", "collapsed", "-o",
                                                 os.path.join(OUT, "slow.txt"), "--")))
            configs.append(("cg_nb_%d" % hz, cg_cmd("run", "--nonblocking", "-r", str(hz), "-f", "collapsed",
                                                  "-o", os.path.join(OUT, "slow.txt"), "--")))
            if ver == austin_py[0]:
                configs.append(("au_%d" % hz, ["austin", "-i", str(1000000 // hz), "-o",
                                               os.path.join(OUT, "slow-austin.txt")]))
        walls = {k: [] for k, _ in configs}
        cpus = {k: [] for k, _ in configs}
        rng = random.Random(9)
        for rep in range(SLOW_REPS):
            order = list(configs)
            rng.shuffle(order)  # interleaved, in a new order each round
            for name, pre in order:
                argv = (pre or []) + [exe, PYLOAD, "slow", "--units", str(SLOW_UNITS)]
                r, err = run_workload(argv)
                if r is None:
                    log("slowdown %s %s: no result (%s)" % (ver, name, err[-300:]))
                    continue
                walls[name].append(r["wall_s"])
                cpus[name].append(r["cpu_s"])
        base = statistics.median(walls["none"])
        cbase = statistics.median(cpus["none"])
        res[ver] = {name: {"median": statistics.median(w), "pct": 100.0 * (statistics.median(w) / base - 1),
                           "cpu_pct": 100.0 * (statistics.median(cpus[name]) / cbase - 1),
                           "n": len(w), "spread": 100.0 * (max(w) - min(w)) / base}
                    for name, w in walls.items() if w}
        log("slowdown %s: %s" % (ver, {k: round(v["pct"], 2) for k, v in res[ver].items()}))
    return res


# --- (3) highest rate held on one thread -------------------------------------------

def rate_run(exe, variant, hz):
    w = Workload([exe, PYLOAD, "stack", "--threads", "1", "--depth", "20", "--seconds", str(RATE_S + 1.0)])
    try:
        w.ready()
        if variant == "austin":
            apath = os.path.join(OUT, "rate-austin.txt")
            p = Proc(["austin", "-i", str(max(1, 1000000 // hz)), "-o", apath, "-p", str(w.pid)]).wait(RATE_S + 60)
            p.stderr_text()
            stacks, span = austin_stacks(apath)
            # one thread: its summed time metric is the sampling span
            span_s = max(span.values()) / 1e6 if span else 0
            achieved = len(stacks) / span_s if span_s else 0
            return {"hz": achieved, "lost_pct": max(0.0, 100.0 * (1 - achieved / hz)), "own_pct": None}
        extra = ["--nonblocking"] if variant == "nb" else []
        p = Proc(cg_cmd("attach", "-r", str(hz), "-d", str(RATE_S), *extra, "-f", "collapsed", "-o",
                        os.path.join(OUT, "rate.txt"), str(w.pid))).wait(RATE_S + 60)
        s = cg_summary(p.stderr_text())
        rounds = s["hz"] * s["elapsed"]
        return {"hz": s["hz"], "lost_pct": max(0.0, 100.0 * (1 - s["hz"] / hz)),
                "own_pct": 100.0 * s["lost"] / (rounds + s["lost"]) if rounds + s["lost"] else 0,
                "why": s["lost_why"]}
    finally:
        w.kill()


def maxrate(pys, austin_py):
    res = {}
    for ver, exe in pys:
        if ver < austin_py[0]:
            continue
        variants = ["b", "nb"] + (["austin"] if ver == austin_py[0] else [])
        res[ver] = {}
        for v in variants:
            steps = []
            best = 0
            for hz in RATES:
                try:
                    r = rate_run(exe, v, hz)
                except Exception as e:  # noqa: BLE001
                    log("rate %s %s %d failed: %s" % (ver, v, hz, e))
                    r = {"hz": 0.0, "lost_pct": 100.0, "own_pct": None, "why": "failed"}
                steps.append((hz, r))
                log("rate %s %s %d Hz: %.1f Hz achieved, %.2f%% lost" % (ver, v, hz, r["hz"], r["lost_pct"]))
                if r["lost_pct"] < 1.0:
                    best = hz
                else:
                    break
            res[ver][v] = {"best": best, "steps": steps}
    return res


# --- (4) peak RSS over a 5-minute window ---------------------------------------------

def rss(pys, austin_py):
    newest = pys[-1]
    runs = [(austin_py, True)] + ([(newest, False)] if newest[0] != austin_py[0] else [])
    ws, procs = [], []
    try:
        for (ver, exe), with_austin in runs:
            w = Workload([exe, PYLOAD, "many", "--threads", "8", "--seconds", str(RSS_S + 5)])
            ws.append(w)
            w.ready()
            procs.append((ver, "cgprof", Proc(cg_cmd("attach", "-d", str(RSS_S), "-o",
                                                     os.path.join(OUT, "rss-%s.pb.gz" % ver), str(w.pid)))))
            if with_austin:
                procs.append((ver, "austin", Proc(["austin", "-i", "10000", "-o",
                                                   os.path.join(OUT, "rss-austin.txt"), "-p", str(w.pid)])))
        # Peak RSS = VmHWM, read while each profiler lives (ru_maxrss of a
        # child forked from this big Python process starts at our own size).
        hwm = {}
        end = time.monotonic() + RSS_S + 120
        while time.monotonic() < end and any(p.running() for _, _, p in procs):
            for ver, who, p in procs:
                try:
                    with open("/proc/%d/status" % p.pid) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                hwm[(ver, who)] = max(hwm.get((ver, who), 0), int(line.split()[1]))
                except OSError:
                    pass
            time.sleep(0.02)
        res = {}
        for ver, who, p in procs:
            p.wait(RSS_S + 120)
            err = p.stderr_text()
            d = {"mb": hwm.get((ver, who), 0) / 1024.0, "cpu": p.cpu_s()}
            if who == "cgprof":
                s = cg_summary(err)
                d["samples"] = s["samples"]
            else:
                d["samples"] = austin_stats(err)
                d["file_mb"] = os.path.getsize(os.path.join(OUT, "rss-austin.txt")) / 2 ** 20
            res.setdefault(ver, {})[who] = d
            log("rss %s %s: %.1f MB" % (ver, who, d["mb"]))
        return res
    finally:
        for w in ws:
            w.kill()


# --- (5) accuracy against the workload's own split ---------------------------------

def split_of(stacks, truth):
    a = b = lc = ls = 0
    for frames, n in stacks:
        names = [f[0] for f in frames]
        if "a_compute" in names:
            a += n
        elif "b_mixed" in names:
            b += n
            line = [f[1] for f in frames if f[0] == "b_mixed"][-1]
            if line == truth["line_compute"]:
                lc += n
            elif line == truth["line_syscall"]:
                ls += n
    r = {"n": a + b, "a_share": a / (a + b) if a + b else None,
         "line_n": lc + ls, "b_line_compute_share": lc / (lc + ls) if lc + ls else None}
    r["fn_err"] = abs(r["a_share"] - truth["a_share"]) * 100 if r["a_share"] is not None else None
    r["line_err"] = (abs(r["b_line_compute_share"] - truth["b_line_compute_share"]) * 100
                     if r["b_line_compute_share"] is not None else None)
    return r


def accuracy(pys, austin_py):
    res = {}
    for ver, exe in pys:
        if ver < austin_py[0]:
            continue
        variants = ["b", "nb"] + (["austin"] if ver == austin_py[0] else [])
        res[ver] = {}
        for v in variants:
            w = Workload([exe, PYLOAD, "split", "--seconds", str(SPLIT_S)])
            path = None
            try:
                w.ready()
                if v == "austin":
                    path = os.path.join(OUT, "acc-austin.txt")
                    p = Proc(["austin", "-i", str(1000000 // SPLIT_HZ), "-o", path, "-p", str(w.pid)])
                else:
                    path = os.path.join(OUT, "acc-%s-%s.txt" % (ver, v))
                    p = Proc(cg_cmd("attach", "-r", str(SPLIT_HZ), "-f", "collapsed", "-o", path,
                                    *(["--nonblocking"] if v == "nb" else []), str(w.pid)))
                truth = w.result(SPLIT_S + 60)
                p.wait(60)
                p.stderr_text()
            finally:
                w.kill()
            try:
                stacks = austin_stacks(path)[0] if v == "austin" else cg_stacks(path)
                r = split_of(stacks, truth)
            except Exception as e:  # noqa: BLE001
                log("accuracy %s %s failed: %s" % (ver, v, e))
                continue
            r["truth"] = truth
            res[ver][v] = r
            log("accuracy %s %s: truth a=%.3f line=%.3f; profile a=%s line=%s" % (
                ver, v, truth["a_share"], truth["b_line_compute_share"], r["a_share"], r["b_line_compute_share"]))
    return res


# --- JVM row ---------------------------------------------------------------------

def jvm():
    if not shutil.which("javac") or not shutil.which("java"):
        return {"skipped": "no javac/java"}
    jdir = os.path.join(OUT, "java")
    os.makedirs(jdir, exist_ok=True)
    subprocess.run(["javac", "-d", jdir, JAVA_SRC], check=True)
    java = ["java", "-cp", jdir, "BenchWork"]
    configs = [("none", []),
               ("cg", cg_cmd("run", "-f", "collapsed", "-o", os.path.join(OUT, "jvm.txt"), "--")),
               ("cg_heap", cg_cmd("run", "--heap", "-f", "collapsed", "-o", os.path.join(OUT, "jvm-heap.txt"), "--"))]
    walls = {k: [] for k, _ in configs}
    summ = {}
    rng = random.Random(17)
    for _ in range(JVM_REPS):
        order = list(configs)
        rng.shuffle(order)
        for name, pre in order:
            r, err = run_workload(pre + java + ["fixed", str(JVM_UNITS)])
            if r:
                walls[name].append(r["wall_s"])
            if name == "cg":
                summ = cg_summary(err)
    base = statistics.median(walls["none"])
    res = {"slow": {k: {"median": statistics.median(v), "pct": 100 * (statistics.median(v) / base - 1),
                        "n": len(v)} for k, v in walls.items() if v},
           "rate": summ.get("rate"), "hz": summ.get("hz")}
    # Target pauses, from the JVM's own safepoint log: per sample (thread
    # dump) and per heap summary.
    splog = os.path.join(OUT, "safepoint.log")
    if os.path.exists(splog):
        os.unlink(splog)
    w = Workload(["java", "-Xlog:safepoint:file=%s" % splog, "-cp", jdir, "BenchWork", "hold",
                  str(8 + HEAP_REPS * 3)])
    heap_wall, heap_cpu = [], []
    try:
        w.ready()
        time.sleep(1)
        pd = Proc(cg_cmd("attach", "-d", "3", "-f", "collapsed", "-o", os.path.join(OUT, "jvm-attach.txt"),
                         str(w.pid))).wait(60)
        res["attach_summary"] = cg_summary(pd.stderr_text())
        for _ in range(HEAP_REPS):
            time.sleep(1)
            p = Proc(cg_cmd("heap", "--top", "5", str(w.pid))).wait(120)
            p.stderr_text()
            heap_wall.append(p.wall)
            heap_cpu.append(p.cpu_s())
    finally:
        w.kill()
    ops = {}
    with open(splog) as f:
        for line in f:
            m = re.search(r'Safepoint "(\w+)".*Total: (\d+) ns', line)
            if m:
                ops.setdefault(m.group(1), []).append(int(m.group(2)) / 1e6)
    res["heap_wall_ms"] = 1000 * statistics.median(heap_wall)
    res["heap_cpu_ms"] = 1000 * statistics.median(heap_cpu)
    res["safepoints"] = {k: {"n": len(v), "median_ms": statistics.median(v), "max_ms": max(v)}
                         for k, v in ops.items()}
    log("jvm: %s" % res)
    return res


# --- profiles of cgprof itself for the rows that miss --------------------------------

def perf_profile(tag, exe, attach_args, threads=1, depth=20, seconds=None):
    """perf record of cgprof attached to a stack workload; returns the
    report's top lines, plus syscall counts per sample from strace."""
    if not shutil.which("perf"):
        return "perf not installed (apt-get install linux-perf)"
    seconds = seconds or (2 if QUICK else 4)
    w = Workload([exe, PYLOAD, "stack", "--threads", str(threads), "--depth", str(depth),
                  "--seconds", str(seconds + 2)])
    data = os.path.join(OUT, "perf-%s.data" % tag)
    try:
        w.ready()
        p = Proc(["perf", "record", "-q", "-F", "4000", "-g", "-o", data, "--", CGPROF, "attach",
                  "-d", str(seconds), "-f", "collapsed", "-o", os.path.join(OUT, "perf-cg.txt")]
                 + attach_args + [str(w.pid)]).wait(seconds + 60)
        summ = p.stderr_text()
    finally:
        w.kill()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "1.5", "-g", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    top = [l.rstrip() for l in rep.splitlines() if l.strip() and not l.startswith("#")][:18]
    dso = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    dsos = [l.strip() for l in dso.splitlines() if l.strip() and not l.startswith("#")][:5]
    text = "perf (cpu-clock, cgprof %s on %d thread(s), depth %d): by object: %s\n\n```\n%s\n```\n" % (
        " ".join(attach_args), threads, depth, "; ".join(dsos), "\n".join(top))
    if shutil.which("strace"):
        w = Workload([exe, PYLOAD, "stack", "--threads", str(threads), "--depth", str(depth),
                      "--seconds", str(seconds + 2)])
        sfile = os.path.join(OUT, "strace-%s.txt" % tag)
        try:
            w.ready()
            p = Proc(["strace", "-c", "-f", "-o", sfile, CGPROF, "attach", "-d", str(seconds), "-f", "collapsed",
                      "-o", os.path.join(OUT, "perf-cg.txt")] + attach_args + [str(w.pid)]).wait(seconds + 60)
            s = cg_summary(p.stderr_text())
        finally:
            w.kill()
        calls = []
        with open(sfile) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    try:
                        calls.append((parts[-1], int(parts[3])))
                    except ValueError:
                        pass
        rounds = max(1.0, s["hz"] * s["elapsed"])
        calls.sort(key=lambda c: -c[1])
        text += "system calls per sampling round (strace -c, %d rounds): %s\n" % (
            rounds, ", ".join("%s %.1f" % (n, c / rounds) for n, c in calls[:8]))
    return text + ("\ncgprof summary under perf: `%s`\n" % summ.strip().splitlines()[-1] if summ.strip() else "")


# --- report ------------------------------------------------------------------------

def fmt(v, nd=1, unit=""):
    if v is None:
        return "—"
    return ("%." + str(nd) + "f%s") % (v, unit)


def ratio(a, b):
    return "%.2f×" % (a / b) if a is not None and b else "—"


def mark(ok):
    return "met" if ok else "**missed**"


def main():
    global CGPROF
    if os.geteuid() != 0:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f.read().strip()
        if scope != "0":
            sys.exit("bench: run as root (austin and cgprof attach to workloads they did not start; "
                     "kernel.yama.ptrace_scope=%s)" % scope)
    if not shutil.which("austin"):
        sys.exit("bench: austin is missing: run `make bench` as root (it installs the Debian package) "
                 "or apt-get install austin")
    if not os.access(CGPROF, os.X_OK):
        sys.exit("bench: no cgprof binary at %s (run make first)" % CGPROF)
    os.makedirs(OUT, exist_ok=True)
    # Our own copy: a rebuild of build/ during the run must not change
    # (or remove) the binary under test.
    copy = os.path.join(OUT, "cgprof")
    shutil.copy2(CGPROF, copy + ".tmp")
    os.replace(copy + ".tmp", copy)
    CGPROF = copy
    t_start = time.time()
    load_start = loadavg()
    pys = pythons()
    if not pys:
        sys.exit("bench: no CPython under ~/.pyenv/versions")
    austin_py = None
    support = {}
    for ver, exe in pys[::-1]:
        ok = austin_ok(exe)
        support[ver] = ok
        log("austin on %s: %s" % (ver, "ok" if ok else "fails"))
        if ok:
            austin_py = (ver, exe)
            break
    if not austin_py:
        sys.exit("bench: austin profiles none of the CPythons found")
    pys = [p for p in pys if tuple(int(x) for x in p[0].split(".")[:2]) >=
           tuple(int(x) for x in austin_py[0].split(".")[:2])]
    austin_py = (austin_py[0], austin_py[1])
    # versions compare as strings below only among these (3.10 .. 3.13)
    if os.environ.get("BENCH_SMOKE"):
        pys = [pys[0], pys[-1]]
    key = {v: tuple(int(x) for x in v.split(".")) for v, _ in pys}

    class V(str):
        def __lt__(self, o):
            return key[str(self)] < key[str(o)]
    pys = [(V(v), e) for v, e in pys]
    austin_py = (V(austin_py[0]), austin_py[1])

    figures = {}
    phases = [("persample", persample), ("slowdown", slowdown), ("maxrate", maxrate),
              ("accuracy", accuracy), ("rss", rss)]
    for name, fn in phases:
        t0 = time.time()
        log("== %s" % name)
        figures[name] = fn(pys, austin_py)
        figures[name + "_s"] = time.time() - t0
    t0 = time.time()
    log("== jvm")
    try:
        figures["jvm"] = jvm()
    except Exception as e:  # noqa: BLE001
        figures["jvm"] = {"skipped": "error: %s" % e}
    figures["jvm_s"] = time.time() - t0

    # Which targets are missed, and profiles of cgprof for those rows.
    misses = []
    ps = figures["persample"]
    for r in ps:
        if r.get("au_us") and r.get("cg_us") and r["cg_us"] >= r["au_us"]:
            misses.append(("persample-T%d-D%d" % (r["threads"], r["depth"]),
                           "per-sample cost, %d threads, depth %d (%s)" % (r["threads"], r["depth"], r["py"]),
                           dict(threads=r["threads"], depth=r["depth"], attach_args=["-r", "1000", "--idle"])))
    for ver, s in figures["slowdown"].items():
        if s.get("cg_b_100", {}).get("pct", 0) >= TARGETS["slow_b"]:
            misses.append(("slow-b-%s" % ver, "slowdown at 100 Hz blocking (%s)" % ver,
                           dict(attach_args=["-r", "100"], exe_ver=ver)))
        if s.get("cg_nb_100", {}).get("pct", 0) >= TARGETS["slow_nb"]:
            misses.append(("slow-nb-%s" % ver, "slowdown at 100 Hz --nonblocking (%s)" % ver,
                           dict(attach_args=["-r", "100", "--nonblocking"], exe_ver=ver)))
    for ver, m in figures["maxrate"].items():
        if m["b"]["best"] < TARGETS["rate"]:
            misses.append(("rate-%s" % ver, "10 kHz on one thread, blocking (%s)" % ver,
                           dict(attach_args=["-r", "10000"], exe_ver=ver)))
    profiles = []
    if not os.environ.get("BENCH_NO_PERF"):
        done = set()
        for tag, what, kw in misses[:6]:
            exe_ver = kw.pop("exe_ver", austin_py[0])
            k = (tuple(kw.get("attach_args")), kw.get("threads", 1), kw.get("depth", 20))
            if k in done:
                profiles.append((what, "same profile as the row above"))
                continue
            done.add(k)
            exe = dict(pys)[exe_ver]
            try:
                log("profiling cgprof for: %s" % what)
                profiles.append((what, perf_profile(tag, exe, **kw)))
            except Exception as e:  # noqa: BLE001
                profiles.append((what, "profile failed: %s" % e))
    figures["profiles_s"] = 0
    load_end = loadavg()
    total_s = time.time() - t_start
    write_results(figures, pys, austin_py, support, load_start, load_end, total_s, profiles)
    with open(os.path.join(OUT, "figures.json"), "w") as f:
        json.dump(figures, f, indent=1, default=str)
    log("wrote %s (%.0f s)" % (RESULTS, total_s))


def write_results(F, pys, austin_py, support, load_start, load_end, total_s, profiles):
    L = []
    w = L.append
    av = austin_py[0]
    w("# cgprof against austin")
    w("")
    w("Written by `make bench` (bench/run.py)%s on %s in %.0f s. Raw outputs are in bench/out/ "
      "(not committed)." % (" with BENCH_QUICK=1 (short durations: indicative only)" if QUICK else "",
                            time.strftime("%Y-%m-%d %H:%M %Z"), total_s))
    w("")
    w("## Machine")
    w("")
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    w("* CPU: %s, %d cores online; kernel %s" % (cpu, os.cpu_count(), platform.release()))
    w("* load average (1/5/15 min): **%s** at start, **%s** at end" % (load_start, load_end))
    w("")
    w("## Versions")
    w("")
    rev = sh("git -C %s rev-parse --short HEAD" % ROOT)
    dirty = sh("git -C %s status --porcelain --untracked-files=no -- src include Makefile" % ROOT)
    w("* cgprof: %s (git %s%s)" % (sh(CGPROF + " --version"), rev, ", with local changes" if dirty else ""))
    w("* austin: %s (Debian package %s)" % (sh("austin -V"), sh("dpkg-query -W -f='${Version}' austin")))
    w("* austin profiles correctly up to CPython **%s** (newest tried first: %s); "
      "it is the peer on %s, cgprof is measured there and on every newer CPython" % (
          av, ", ".join("%s %s" % (v, "ok" if ok else "fails") for v, ok in support.items()), av))
    w("* CPythons: %s" % ", ".join("%s (%s)" % (v, e) for v, e in pys))
    w("* Java: %s" % sh("java -version 2>&1 | head -1"))
    w("")
    w("## How each figure is measured")
    w("")
    w("* **Profiler CPU per sample**: user+system CPU of the profiler process (getrusage of the child, "
      "`wait4`), from attach to exit, divided by the stack samples it took. A sample is one thread's stack "
      "in both tools: cgprof's count is the `N samples` of its summary line, austin's the `N` of its "
      "`Error rate : x/N` line (equal to its output lines, one per thread per tick). Workload: "
      "`pyload.py stack`, T threads all busy in Python at depth D; each profiler attaches (`cgprof attach -r "
      "%d -d %g --idle`, `austin -i %d -p PID`) once the threads are at depth. cgprof runs with `--idle` so that "
      "it reads every thread every tick as austin does (with the GIL only one thread is running at a time); "
      "the `cgprof default` column is without `--idle` (threads not on CPU are skipped after a look at "
      "/proc), shown for reference. Start-up (finding the interpreter) and writing the output are included "
      "in both." % (PERSAMPLE_HZ, PERSAMPLE_S, 1000000 // PERSAMPLE_HZ))
    w("* **Target slowdown**: `pyload.py slow` does a fixed amount of work (%d units, a depth-20 recursion) "
      "and reports its own wall time (perf_counter, after warm-up, so start-up and attach are outside). "
      "%d runs of each configuration, interleaved in a shuffled order each round to cancel drift; "
      "slowdown = median profiled / median unprofiled − 1. `cgprof run -r HZ [--nonblocking]`, "
      "`austin -i 1e6/HZ` (austin never pauses the target)." % (SLOW_UNITS, SLOW_REPS))
    w("* **Highest rate**: one busy thread at depth 20, attach for %g s at 1k, 2k, 5k, 10k, 20k, 50k Hz, "
      "stopping at the first rate that fails. Lost = expected (rate × sampling span) − taken: for cgprof "
      "`1 − achieved/requested` from its summary (achieved = sampling rounds / elapsed); cgprof's own lost "
      "counter (late ticks, failed pauses and reads) is shown beside it. For austin the span is the sum of "
      "its per-sample time deltas. The highest rate with under 1%% lost is reported." % RATE_S)
    w("* **Peak RSS**: VmHWM of the profiler (the kernel's RSS high-water mark), read from /proc/PID/status "
      "every 20 ms while it runs (ru_maxrss of a child forked from the Python driver would start at the "
      "driver's own size), over a "
      "real %d s run at the default rate (cgprof 100 Hz, writing pprof; austin `-i 10000`, writing its text "
      "file), both attached to the same `pyload.py many` workload: 8 threads walking random paths "
      "through 400 functions in 60 files, depths 8–37, so distinct stacks keep appearing for the whole "
      "window.%s" % (RSS_S, " In this quick run the window is short." if QUICK else ""))
    w("* **Accuracy**: `pyload.py split` alternates `a_compute()` (~60%%) and `b_mixed()` (~40%%) in "
      "millisecond chunks and measures each with the thread CPU clock (`time.thread_time`): its own split. "
      "Inside `b_mixed` one line is pure bytecode, the next one makes system calls (`os.stat`), also timed "
      "apart. Profiles at %d Hz for %d s (~%d samples, so sampling noise is ~0.5 points); error = "
      "|profile share − measured share| in percentage points, for the function split (a vs b) and for "
      "the line split inside b." % (SPLIT_HZ, SPLIT_S, SPLIT_HZ * SPLIT_S))
    w("")

    w("## Results")
    w("")
    w("### Targets")
    w("")
    ps = F["persample"]
    au_rows = [r for r in ps if r.get("au_us")]
    all_below = all(r.get("cg_us") is not None and r.get("au_us") and r["cg_us"] < r["au_us"] for r in au_rows)
    sl = F["slowdown"]
    mr = F["maxrate"]
    acc = F["accuracy"]
    rs = F["rss"]
    w("| target | result | |")
    w("| --- | --- | --- |")
    w("| per-sample cost below austin's on every row (%s) | %s | %s |" % (
        av, ", ".join("T%d/D%d %s×" % (r["threads"], r["depth"], "%.2f" % (r["cg_us"] / r["au_us"]))
                      for r in au_rows), mark(all_below)))
    for ver in sl:
        nb = sl[ver].get("cg_nb_100", {}).get("pct")
        b = sl[ver].get("cg_b_100", {}).get("pct")
        w("| slowdown at 100 Hz < 1%% --nonblocking, < 3%% blocking (%s) | %s / %s | %s |" % (
            ver, fmt(nb, 2, "%"), fmt(b, 2, "%"),
            mark(nb is not None and b is not None and nb < TARGETS["slow_nb"] and b < TARGETS["slow_b"])))
    for ver in mr:
        w("| 10 kHz held on one thread, < 1%% lost (%s) | blocking %s Hz, nonblocking %s Hz | %s |" % (
            ver, mr[ver]["b"]["best"], mr[ver]["nb"]["best"], mark(mr[ver]["b"]["best"] >= TARGETS["rate"])))
    for ver in rs:
        w("| peak RSS < 32 MB over %d s (%s) | %s MB | %s |" % (
            RSS_S, ver, fmt(rs[ver]["cgprof"]["mb"], 1), mark(rs[ver]["cgprof"]["mb"] < TARGETS["rss_mb"])))
    for ver in acc:
        for v in ("b", "nb"):
            e = acc[ver][v]["fn_err"]
            w("| accuracy error < 2 points, function split (%s, %s) | %s points | %s |" % (
                ver, "blocking" if v == "b" else "--nonblocking", fmt(e, 2), mark(e is not None and e < 2)))
    w("")

    w("### (1) Profiler CPU per sample (µs), %d Hz requested" % PERSAMPLE_HZ)
    w("")
    w("| CPython | threads | depth | cgprof | austin | cgprof/austin | cgprof default (no --idle) | "
      "cgprof samples | austin samples | cgprof Hz achieved |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in ps:
        w("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            r["py"], r["threads"], r["depth"], fmt(r.get("cg_us"), 2), fmt(r.get("au_us"), 2),
            ratio(r.get("cg_us"), r.get("au_us")), fmt(r.get("cgd_us"), 2), r.get("cg_n", "—"),
            r.get("au_n", "—"), fmt(r.get("cg_hz"), 0)))
    w("")
    w("### (2) Target slowdown against an unprofiled run (median of %d, %% of wall time)" % SLOW_REPS)
    w("")
    w("Wall time is the figure; the workload's own CPU time (process_time) is shown in brackets: on a "
      "loaded machine it is the steadier of the two, but it does not see time the thread spends paused.")
    w("")
    w("| CPython | rate | cgprof blocking | cgprof --nonblocking | austin | blocking/austin | "
      "nonblocking/austin |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ver, s in sl.items():
        for hz in (100, 1000):
            b = s.get("cg_b_%d" % hz, {}).get("pct")
            nb = s.get("cg_nb_%d" % hz, {}).get("pct")
            au = s.get("au_%d" % hz, {}).get("pct")

            def cell(k):
                d = s.get(k % hz)
                return "%.2f%% (%.2f%%)" % (d["pct"], d["cpu_pct"]) if d else "—"
            w("| %s | %d Hz | %s | %s | %s | %s | %s |" % (
                ver, hz, cell("cg_b_%d"), cell("cg_nb_%d"), cell("au_%d"),
                ratio(b, au) if au and au > 0 else "—", ratio(nb, au) if au and au > 0 else "—"))
    w("")
    w("Unprofiled median wall and the spread (max−min over the unprofiled median) of each cell: %s" % "; ".join(
        "%s: none %.3f s (spread %.1f%%)" % (ver, s["none"]["median"], s["none"]["spread"]) for ver, s in sl.items()))
    w("")
    w("### (3) Highest rate held on one thread with < 1% lost")
    w("")
    w("| CPython | cgprof blocking | cgprof --nonblocking | austin | cgprof blocking/austin |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for ver, m in mr.items():
        au = m.get("austin", {}).get("best")
        w("| %s | %d Hz | %d Hz | %s | %s |" % (ver, m["b"]["best"], m["nb"]["best"],
                                             "%d Hz" % au if au is not None else "—",
                                             ratio(m["b"]["best"], au) if au else "—"))
    w("")
    w("Each step (achieved Hz, lost %; cgprof's own lost counter in brackets):")
    w("")
    for ver, m in mr.items():
        for v, d in m.items():
            w("* %s %s: %s" % (ver, {"b": "cgprof blocking", "nb": "cgprof --nonblocking", "austin": "austin"}[v],
                                ", ".join("%d→%.0f (%.2f%%%s)" % (hz, r["hz"], r["lost_pct"],
                                                                 "" if r.get("own_pct") is None else
                                                                 "; %.2f%%%s" % (r["own_pct"], (" " + r["why"]) if r.get("why") else ""))
                                          for hz, r in d["steps"])))
    w("")
    w("### (4) Peak RSS of the profiler over %d s at the default rate" % RSS_S)
    w("")
    w("| CPython | cgprof | austin | cgprof/austin | cgprof samples | austin samples |")
    w("| --- | ---: | ---: | ---: | ---: | ---: |")
    for ver, d in rs.items():
        au = d.get("austin", {})
        w("| %s | %s MB | %s | %s | %s | %s |" % (
            ver, fmt(d["cgprof"]["mb"], 1), fmt(au.get("mb"), 1, " MB") if au else "—",
            ratio(d["cgprof"]["mb"], au.get("mb")) if au else "—", d["cgprof"]["samples"],
            au.get("samples", "—") if au else "—"))
    if rs.get(av, {}).get("austin", {}).get("file_mb") is not None:
        w("")
        w("austin keeps nothing in memory: it writes every sample to its output file (%.1f MB for this run); "
          "cgprof aggregates in memory and writes once." % rs[av]["austin"]["file_mb"])
    w("")
    w("### (5) Error against the workload's own split (percentage points)")
    w("")
    w("| CPython | profiler | measured a() share | profile a() share | function error | measured compute-line "
      "share in b() | profile | line error | samples |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"b": "cgprof blocking", "nb": "cgprof --nonblocking", "austin": "austin"}
    for ver, d in acc.items():
        for v, r in d.items():
            t = r["truth"]
            w("| %s | %s | %.1f%% | %s | %s | %.1f%% | %s | %s | %d |" % (
                ver, names[v], 100 * t["a_share"], fmt(r["a_share"] and 100 * r["a_share"], 1, "%"),
                fmt(r["fn_err"], 2), 100 * t["b_line_compute_share"],
                fmt(r["b_line_compute_share"] is not None and 100 * r["b_line_compute_share"] or None, 1, "%"),
                fmt(r["line_err"], 2), r["n"]))
    if av in acc and acc[av].get("austin", {}).get("line_n", 0) == 0:
        w("")
        w("austin 1.0.1 reads line numbers with the pre-3.10 `co_lnotab` rules, so on %s its lines "
          "do not match the source: its line split is not comparable (—)." % av)
    w("")

    j = F.get("jvm", {})
    w("### JVM row (cgprof only; %s)" % sh("java -version 2>&1 | head -1"))
    w("")
    if "skipped" in j:
        w("skipped: %s" % j["skipped"])
    else:
        s = j["slow"]
        w("| figure | value |")
        w("| --- | ---: |")
        w("| slowdown at the default JVM rate (%s Hz requested, %s Hz achieved), median of %d | %s |" % (
            fmt(j.get("rate"), 0), fmt(j.get("hz"), 1), s["cg"]["n"], fmt(s["cg"]["pct"], 2, "%")))
        w("| slowdown with `--heap` (one heap summary at the end of the run) | %s |" % fmt(
            s.get("cg_heap", {}).get("pct"), 2, "%"))
        w("| `cgprof heap PID` wall time (median of %d) | %s ms |" % (HEAP_REPS, fmt(j["heap_wall_ms"], 1)))
        w("| `cgprof heap PID` CPU of cgprof | %s ms |" % fmt(j["heap_cpu_ms"], 1))
        sp = j["safepoints"]
        for op, what in (("GC_HeapInspection", "target pause per heap summary (safepoint `GC_HeapInspection`)"),
                         ("PrintThreads", "target pause per sample: safepoint `PrintThreads` (thread dump)"),
                         ("PrintJNI", "… plus safepoint `PrintJNI` per sample"),
                         ("FindDeadlocks", "… plus safepoint `FindDeadlocks` per sample")):
            if op in sp:
                w("| %s | median %.2f ms, max %.2f ms (n=%d) |" % (what, sp[op]["median_ms"], sp[op]["max_ms"],
                                                                  sp[op]["n"]))
        w("")
        w("Workload: `BenchWork fixed %d` (two threads of integer mixing and HashMap counting, own wall time, "
          "%d interleaved runs per configuration); pauses from the JVM's own `-Xlog:safepoint` while "
          "`BenchWork hold` keeps ~200k objects live. The heap summary walks the whole heap without a full GC, "
          "so its pause grows with heap size (here %s)." % (
              JVM_UNITS, JVM_REPS, "a few hundred MB of mostly garbage"))
    w("")
    w("## Where cgprof's time goes (rows that miss a target)")
    w("")
    if not profiles:
        w("No row misses its CPU target in this run.")
    for what, text in profiles:
        w("### %s" % what)
        w("")
        w(text)
        w("")
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            w(f.read().rstrip())
        w("")
    with open(RESULTS, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()

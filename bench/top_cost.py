"""What the live view costs (issue 19): `cgprof top` against `cgprof attach`
at the same rate on the same workload, in turns, so both see the same
machine. Reported per run: the rate each achieved and cgprof's CPU time
per sampling round; then top/attach ratios of the medians. top runs in a
tmux pane (the drawing thread at work), its achieved rate read from the
screen just before --duration ends.

    python3 bench/top_cost.py [RATE_HZ [SECONDS [RUNS]]]   (default 500 5 3)
Needs tmux; CGPROF names the binary (default build/cgprof); `make -C bench
top-cost`. On 2026-12-01, 2 cores at load 15-17 (other builds), 500 Hz, 5 s,
3 runs: achieved rate top/attach 1.02, CPU per round 1.28 (the drawing
thread's share, and noisy at that load)."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CGPROF = os.environ.get("CGPROF", os.path.join(ROOT, "build", "cgprof"))
WORKLOAD = os.path.join(ROOT, "tests", "integration", "workloads", "python", "top_hot.py")
RATE = float(sys.argv[1]) if len(sys.argv) > 1 else 500
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 5
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 3


def cpu_of(path):
    """user+sys seconds from /usr/bin/time -f '%U %S'."""
    with open(path) as f:
        u, s = f.read().split()[-2:]
    return float(u) + float(s)


def run_attach(pid, tmp):
    tf = os.path.join(tmp, "attach.time")
    r = subprocess.run(["/usr/bin/time", "-o", tf, "-f", "%U %S", CGPROF, "attach", "-r",
                        str(RATE), "-d", str(SECONDS), "-f", "collapsed", "-o",
                        os.path.join(tmp, "a.txt"), str(pid)],
                       capture_output=True, text=True)
    m = re.search(r"in ([\d.]+) s, ([\d.]+) Hz achieved", r.stderr)
    if not m:
        raise SystemExit("attach: " + r.stderr)
    hz = float(m.group(2))
    return hz, cpu_of(tf) / (hz * float(m.group(1)))


def run_top(pid, tmp, tmux):
    tf = os.path.join(tmp, "top.time")
    done = os.path.join(tmp, "top.done")
    for f in (tf, done):
        if os.path.exists(f):
            os.unlink(f)
    cmd = "/usr/bin/time -o %s -f '%%U %%S' %s top -r %g -d %g %d; touch %s; sleep 60" % (
        tf, CGPROF, RATE, SECONDS, pid, done)
    tmux("new-session", "-d", "-s", "bench", "-x", "120", "-y", "30", "sh", "-c", cmd)
    screen = ""
    t0 = time.monotonic()
    while not os.path.exists(done):
        if time.monotonic() - t0 < SECONDS - 0.7:
            s = tmux("capture-pane", "-p", "-t", "bench")
            if "Hz of" in s:
                screen = s
        time.sleep(0.2)
    tmux("kill-session", "-t", "bench")
    m = re.search(r"samples \d+ in ([\d.]+) s, ([\d.]+) Hz", screen)
    if not m:
        raise SystemExit("top: no header on screen:\n" + screen)
    hz = float(m.group(2))
    # the whole run's CPU over the whole run's rounds (rate seen late on)
    return hz, cpu_of(tf) / (hz * SECONDS)


def main():
    if not shutil.which("tmux"):
        raise SystemExit("top_cost: needs tmux (scripts/deps.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="cgprof-topbench-")
    sock = os.path.join(tmp, "tmux.sock")
    conf = os.path.join(tmp, "tmux.conf")
    open(conf, "w").close()
    server = subprocess.Popen(["tmux", "-D", "-S", sock, "-f", conf],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.05)

    def tmux(*a):
        return subprocess.run(["tmux", "-S", sock] + list(a), capture_output=True,
                              text=True, check=True).stdout

    stop = os.path.join(tmp, "stop")
    wl = subprocess.Popen([sys.executable, WORKLOAD, "3600"], stdout=subprocess.PIPE,
                          text=True, env=dict(os.environ, TOP_HOT_STOP=stop))
    wl.stdout.readline()
    res = {"attach": [], "top": []}
    try:
        for i in range(RUNS):
            res["attach"].append(run_attach(wl.pid, tmp))
            res["top"].append(run_top(wl.pid, tmp, tmux))
            for k in ("attach", "top"):
                hz, cpu = res[k][-1]
                print("run %d %-6s %7.1f Hz achieved of %g, %6.1f us CPU per round" %
                      (i + 1, k, hz, RATE, cpu * 1e6))
    finally:
        open(stop, "w").close()
        wl.wait()
        tmux("kill-server")
        server.wait()
        shutil.rmtree(tmp, True)
    med = {k: (statistics.median(h for h, _ in v), statistics.median(c for _, c in v))
           for k, v in res.items()}
    print("top/attach: achieved rate %.2f, CPU per round %.2f (medians of %d)" %
          (med["top"][0] / med["attach"][0], med["top"][1] / med["attach"][1], RUNS))


if __name__ == "__main__":
    main()

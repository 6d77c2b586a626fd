"""Shared helpers for the integration tests: where cgprof and the
interpreters are, running cgprof, and reading collapsed stacks."""
import glob
import os
import re
import signal
import subprocess
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CGPROF = os.environ.get("CGPROF", os.path.join(ROOT, "build", "cgprof"))
BUILD = os.environ.get("CGPROF_BUILD", os.path.join(ROOT, "build"))
WORKLOADS = os.path.join(HERE, "workloads")

# Tests never talk to real metadata services.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def find_pythons():
    """Every CPython 3.x under ~/.pyenv/versions, the sid root's 3.14 and
    3.15, and /usr/bin/python3, as (label, path, (major, minor)).
    Unsupported versions are left out."""
    found = []
    home = os.path.expanduser("~")
    for d in sorted(glob.glob(os.path.join(home, ".pyenv/versions/*"))):
        exe = os.path.join(d, "bin", "python3")
        m = re.match(r"(\d+)\.(\d+)", os.path.basename(d))
        if m and os.access(exe, os.X_OK):
            ver = (int(m.group(1)), int(m.group(2)))
            if (3, 6) <= ver <= (3, 13):
                found.append(("pyenv-" + os.path.basename(d), exe, ver))
    found += sid_pythons()
    if os.access("/usr/bin/python3", os.X_OK):
        out = subprocess.run(["/usr/bin/python3", "-c",
                              "import sys;print('%d %d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.split()
        found.append(("system-python3", "/usr/bin/python3", (int(out[0]), int(out[1]))))
    return found


# Today's runtimes live in a Debian unstable root (tests/rig/sid-root.sh,
# built by `make check`); tests/rig/sid-run starts a program inside it,
# which cgprof profiles from outside, through /proc/PID/root.
SID_ROOT = os.environ.get("CGPROF_SID_ROOT", "/var/cache/cgprof/sid-root")
SID_RUN = os.path.join(ROOT, "tests", "rig", "sid-run")
SID_PYTHONS = [("sid-python3.14", "python3.14", (3, 14)), ("sid-python3.15", "python3.15", (3, 15))]
SID_DEBUG_PYTHON = ("sid-python3.14d", "python3.14d", (3, 14))


def sid_missing():
    """Why the sid root cannot be used here, or None."""
    if not os.path.exists(os.path.join(SID_ROOT, ".cgprof-rig")):
        try:
            with open(SID_ROOT + ".failed") as f:
                return "no sid root: " + f.read().strip()
        except OSError:
            return "no sid root at %s (tests/rig/sid-root.sh builds it)" % SID_ROOT
    if os.geteuid() != 0:
        return "the sid root needs root (chroot, mounts)"
    return None


def sid_program(path):
    """An executable on this side that runs `path` (a program of the sid
    root) inside it, or None when the root or the program is missing."""
    if sid_missing() or not os.access(os.path.join(SID_ROOT, path.lstrip("/")), os.X_OK):
        return None
    wrapper = os.path.join(BUILD, "sid-bin", path.strip("/").replace("/", "_"))
    text = "#!/bin/sh\nexec %s %s \"$@\"\n" % (SID_RUN, path)
    try:
        with open(wrapper) as f:
            if f.read() == text:
                return wrapper
    except OSError:
        pass
    os.makedirs(os.path.dirname(wrapper), exist_ok=True)
    with open(wrapper + ".tmp", "w") as f:
        f.write(text)
    os.chmod(wrapper + ".tmp", 0o755)
    os.rename(wrapper + ".tmp", wrapper)
    return wrapper


def sid_pythons(debug=False):
    """[(label, wrapper, ver)] of the sid root's CPythons (3.14, 3.15), or
    with debug=True its 3.14 debug build."""
    found = []
    for label, name, ver in ([SID_DEBUG_PYTHON] if debug else SID_PYTHONS):
        exe = sid_program("/usr/bin/" + name)
        if exe:
            found.append((label, exe, ver))
    return found


# Versions the project promises; a missing one is reported as a skip.
EXPECTED_VERSIONS = [(3, v) for v in range(6, 16)]


def parse_collapsed(text):
    """{stack tuple (root first): count}"""
    stacks = {}
    for line in text.splitlines():
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = tuple(stack.split(";"))
        stacks[frames] = stacks.get(frames, 0) + int(count)
    return stacks


def frame_func(frame):
    """'func (path:line)' -> 'func'"""
    return frame.split(" (", 1)[0]


def share(stacks, pred):
    """Fraction of samples whose stack satisfies pred(frames)."""
    total = sum(stacks.values())
    hit = sum(c for s, c in stacks.items() if pred(s))
    return hit / total if total else 0.0


def run(args, timeout=120, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def cgprof(*args, timeout=120, **kw):
    return run([CGPROF] + list(args), timeout=timeout, **kw)


def ptrace_allowed():
    """phpspy-style: say why integration tests cannot run, or None."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read().strip())
        if scope >= 2 and os.geteuid() != 0:
            return "yama ptrace_scope=%d forbids ptrace for non-root" % scope
        if scope == 3:
            return "yama ptrace_scope=3 forbids all ptrace"
    except OSError:
        pass
    return None


class CgTestCase(unittest.TestCase):
    def setUp(self):
        why = ptrace_allowed()
        if why:
            self.skipTest(why)
        self.procs = []

    def tearDown(self):
        for p in getattr(self, "procs", []):
            # the whole group: a shell's or a wrapper's children too (a
            # busy child of `sh -c` outlived its test and took a CPU from
            # the tests after it for a minute)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            if p.poll() is None:
                p.kill()
            p.wait()

    def spawn(self, args, **kw):
        """A process of the test's, in a process group of its own that
        tearDown ends whole."""
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, **kw)
        self.procs.append(p)
        return p

    def spawn_sleeper(self, exe, seconds=30, **kw):
        """A Python of any version (2.7 too) idle in time.sleep, its
        interpreter up when this returns: it says so on stdout first."""
        p = self.spawn([exe, "-c", "import sys, time; sys.stdout.write('ready\\n'); "
                        "sys.stdout.flush(); time.sleep(%g)" % seconds], **kw)
        self.wait_for_line(p, "ready")
        return p

    def wait_for_line(self, p, prefix, timeout=30):
        """Read p.stdout until a line starting with prefix; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line.strip()
        self.fail("workload never printed %r" % prefix)


def steal_s():
    """CPU time the hypervisor took from this VM's vCPUs, all of them. A
    perf CPU clock runs on while the hypervisor holds the thread's vCPU,
    and the guest's accounting (stat, schedstat, the thread CPU clocks)
    leaves that out: around a profile, this bounds what a thread's
    samples may exceed its measured CPU time by."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def lost_kinds(stderr):
    """{'late': n, ...} from the summary line."""
    m = re.search(r"; \d+ lost \(([^)]*)\)", stderr)
    if not m:
        return {}
    return {k: int(n) for n, k in (x.split(" ", 1) for x in m.group(1).split(", "))}

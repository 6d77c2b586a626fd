"""Every option of every command is honoured or refused: the table below
says which command takes which option (the contract), `cgprof CMD --help`
must list exactly those, each refused one must fail with the usage error
before anything starts, and each taken one must do what it says."""
import base64
import os
import re
import stat
import tempfile
import time
import unittest

from cgtest import WORKLOADS, CgTestCase, cgprof
from test_cli import wait_file

BUSY = os.path.join(WORKLOADS, "cli", "busy.py")
PY = "/usr/bin/python3"

SAMPLING = {"rate", "duration", "output", "format", "idle", "threads", "subprocesses",
            "blocking", "nonblocking", "native", "native-pause", "async", "heap", "max-depth"}
TOP_OWN = {"delay", "window", "once", "sort"}  # parsed by top itself (cmd_top.c)
SETTINGS = {"profiling-group", "region", "endpoint", "reporting-interval", "ca-file",
            "pin-sha256", "no-upload", "spool", "spool-key", "spool-max-mb", "config",
            "syslog"}
GENERAL = {"verbose", "quiet", "help"}
ALL = SAMPLING | SETTINGS | GENERAL

# The contract: which options each command takes.
TAKES = {
    "run": ALL,
    "attach": ALL,
    "dump": {"output", "subprocesses", "blocking", "nonblocking", "native", "async",
             "max-depth", "verbose", "help"},
    "upload": SETTINGS - {"reporting-interval", "no-upload"} | {"verbose", "quiet", "help"},
    "config": SETTINGS | {"rate", "max-depth", "help"},
}


def help_options(*cmd):
    """{long option: takes a value} as `cgprof [CMD] --help` lists them."""
    r = cgprof(*(list(cmd) + ["--help"]))
    assert r.returncode == 0, r.stderr
    opts = {}
    for m in re.finditer(r"^\s+(?:-\w, )?--([a-z][a-z0-9-]*)( [A-Z0-9]+)?", r.stdout, re.M):
        opts[m.group(1)] = bool(m.group(2))
    opts.pop("version", None)  # cgprof --version, not a command's option
    return opts


def pid_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0]


class Values:
    """A valid value for each option that takes one, in a scratch dir."""

    def __init__(self, d):
        self.d = d
        key = os.path.join(d, "spool.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        conf = os.path.join(d, "cgprof.conf")
        with open(conf, "w") as f:
            f.write("# empty\n")
        self.v = {
            "rate": "50", "duration": "0.3", "output": os.path.join(d, "out.txt"),
            "format": "collapsed", "max-depth": "64", "profiling-group": "g",
            "region": "us-east-1", "endpoint": "https://127.0.0.1:9",
            "reporting-interval": "60", "ca-file": "/etc/ssl/certs/ca-certificates.crt",
            "pin-sha256": base64.b64encode(b"\0" * 32).decode(),
            "spool": os.path.join(d, "spool"), "spool-key": key, "spool-max-mb": "10",
            "config": conf,
        }

    def args(self, name, takes_value):
        return ["--" + name] + ([self.v[name]] if takes_value else [])


class TestOptionTable(CgTestCase):
    def setUp(self):
        super().setUp()
        self.all = help_options()
        self.tmp = tempfile.TemporaryDirectory()
        self.values = Values(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()
        super().tearDown()

    def test_global_help_lists_every_option(self):
        self.assertEqual(set(self.all), ALL | TOP_OWN)

    def test_command_help_lists_what_it_takes(self):
        for cmd, takes in TAKES.items():
            self.assertEqual(set(help_options(cmd)), takes, cmd)

    def refused(self, cmd, name, operands, before=None):
        args = [cmd] + self.values.args(name, self.all[name]) + operands
        r = cgprof(*args, timeout=30)
        self.assertEqual(r.returncode, 2, (args, r.stderr))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, (args, r.stderr))
        self.assertEqual(lines[0], "cgprof: option '--%s' does not apply to %s (see cgprof "
                         "%s --help)" % (name, cmd, cmd))
        self.assertEqual(r.stdout, "", args)

    def test_refused_options_fail_before_anything_starts(self):
        marker = os.path.join(self.tmp.name, "started")
        target = self.spawn(["sleep", "60"])
        for cmd, takes in TAKES.items():
            for name in sorted(ALL - takes):
                if cmd == "run":
                    self.refused(cmd, name, ["--", "touch", marker])
                    self.assertFalse(os.path.exists(marker), name)
                elif cmd in ("attach", "dump"):
                    self.refused(cmd, name, [str(target.pid)])
                else:
                    self.refused(cmd, name, [])
        # the PID given was never touched
        self.assertIn(pid_state(target.pid), ("S", "R"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "out.txt")))

    def accepted(self, cmd, name, operands, base=()):
        args = [cmd] + list(base) + self.values.args(name, self.all[name]) + operands
        r = cgprof(*args, timeout=60)
        self.assertNotIn("does not apply", r.stderr, args)
        self.assertNotEqual(r.returncode, 2, (args, r.stderr))
        return r

    def test_taken_options_are_accepted(self):
        """Each option a command takes runs without a usage error (what
        each does is checked by the tests of its feature)."""
        spool = ["--no-upload", "--spool", self.values.v["spool"]]
        for name in sorted(TAKES["run"] - {"help"}):
            out = os.path.join(self.tmp.name, "run-%s.txt" % name)
            r = self.accepted("run", name, ["--", PY, BUSY, "0.1"],
                              base=spool + ["-o", out, "-f", "collapsed"])
            self.assertEqual(r.returncode, 0, (name, r.stderr))
        target = self.spawn([PY, BUSY, "120"])
        self.assertEqual(target.stdout.readline().strip(), "busy: started")
        for name in sorted(TAKES["attach"] - {"help"}):
            out = os.path.join(self.tmp.name, "attach-%s.txt" % name)
            r = self.accepted("attach", name, [str(target.pid)],
                              base=spool + ["-d", "0.1", "-o", out, "-f", "collapsed"])
            self.assertEqual(r.returncode, 0, (name, r.stderr))
        for name in sorted(TAKES["dump"] - {"help"}):
            r = self.accepted("dump", name, [str(target.pid)])
            self.assertEqual(r.returncode, 0, (name, r.stderr))
        self.assertIsNone(target.poll())
        env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
        empty = os.path.join(self.tmp.name, "empty-spool")
        os.makedirs(empty, mode=0o700)
        for name in sorted(TAKES["upload"] - {"help"}):
            r = cgprof("upload", "--spool", empty, "--region", "us-east-1", "--endpoint",
                       "https://127.0.0.1:9", *self.values.args(name, self.all[name]),
                       env=env, timeout=60)
            self.assertEqual(r.returncode, 0, (name, r.stderr))
        for name in sorted(TAKES["config"] - {"help"}):
            r = self.accepted("config", name, [])
            self.assertEqual(r.returncode, 0, (name, r.stderr))
            if name != "config":
                # the setting shows as coming from this option
                self.assertRegex(r.stdout, r"option \(--%s\)" % name, name)

    def test_heap_refuses_the_rest(self):
        """heap parses its own options (--format text|json, --top): every
        other option is refused the same way, on one line."""
        target = self.spawn(["sleep", "60"])
        takes = {"format", "top", "verbose", "help"}
        for name in sorted(ALL - takes):
            args = ["heap"] + self.values.args(name, self.all[name]) + [str(target.pid)]
            r = cgprof(*args, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(r.stderr.strip().splitlines(),
                             ["cgprof: unknown option '--%s' for heap (see cgprof heap "
                              "--help)" % name], args)
        r = cgprof("heap")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        r = cgprof("heap", "--top")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.strip(), "cgprof: option '--top' needs a value")
        self.assertIn(pid_state(target.pid), ("S", "R"))

    def test_command_help_exits_0(self):
        for cmd in TAKES:
            r = cgprof(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertTrue(r.stdout.startswith("usage: cgprof %s" % cmd), r.stdout)


class TestOutputCheckedFirst(CgTestCase):
    """An -o that cannot be written fails before a target is touched or a
    command started: exit 2, the user's path named."""

    BAD = ["/nonexistent/dir/x.svg", "/proc/version", "/etc/passwd/x.svg"]

    def check(self, r, path):
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(path, lines[0])
        self.assertNotIn(".tmp", lines[0])

    def test_run(self):
        with tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "started")
            for path in self.BAD + [d]:
                r = cgprof("run", "-o", path, "--", "touch", marker)
                self.check(r, path)
                self.assertFalse(os.path.exists(marker), path)

    def test_attach_and_dump(self):
        target = self.spawn([PY, BUSY, "60"])
        target.stdout.readline()
        for cmd in ("attach", "dump"):
            for path in self.BAD:
                r = cgprof(cmd, "-o", path, str(target.pid))
                self.check(r, path)
        self.assertIsNone(target.poll())
        # never paused: no ptrace stop was ever seen by the kernel
        with open("/proc/%d/status" % target.pid) as f:
            self.assertIn("TracerPid:\t0", f.read())

    def test_unwritable_directory_as_another_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run cgprof as another user")
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)  # nobody may enter, not create
            path = os.path.join(d, "x.svg")
            r = cgprof("run", "-o", path, "--", "true",
                       preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
            self.check(r, path)
            self.assertIn("Permission denied", r.stderr)
            # no -o: the default file in the current directory, same check
            marker = os.path.join(tempfile.gettempdir(), "cgprof-never-%d" % os.getpid())
            r = cgprof("run", "--", "touch", marker, cwd=d,
                       preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("give -o FILE", r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(marker))

    def test_device_is_written_not_replaced(self):
        """-o /dev/null: temp file + rename would replace the device itself
        (as root). A private null device, so no other run on the machine
        can be harmed or interfere."""
        if os.geteuid() != 0:
            self.skipTest("needs root to make a device node")
        with tempfile.TemporaryDirectory() as d:
            null = os.path.join(d, "null")
            os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            r = cgprof("run", "-q", "-o", null, "--", PY, BUSY, "0.3")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(stat.S_ISCHR(os.stat(null).st_mode), "the device was replaced")
            self.assertEqual(os.listdir(d), ["null"])  # no temp file either


class TestDumpOptions(CgTestCase):
    def setUp(self):
        super().setUp()
        self.target = self.spawn([PY, BUSY, "60"])
        self.assertEqual(self.target.stdout.readline().strip(), "busy: started")

    def test_output_file(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "dump.txt")
            r = cgprof("dump", "-o", out, str(self.target.pid))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "")
            text = open(out).read()
            self.assertIn("Thread %d" % self.target.pid, text)
            self.assertRegex(text, r"busy \(.*busy\.py:\d+\)")
            self.assertEqual(os.listdir(d), ["dump.txt"])  # no temp file left

    def test_max_depth(self):
        r = cgprof("dump", "--max-depth", "1", str(self.target.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        frames = [l for l in r.stdout.splitlines() if l.startswith("    ")]
        self.assertEqual(len(frames), 2, r.stdout)
        self.assertRegex(frames[0], r"^    busy \(")  # the leaf side is kept
        self.assertIn("deeper frames cut", frames[1])

    def test_subprocesses(self):
        with tempfile.TemporaryDirectory() as d:
            pidfile = os.path.join(d, "pid")
            sh = self.spawn(["sh", "-c", "%s %s 60 0 %s; true" % (PY, BUSY, pidfile)])
            child = int(wait_file(pidfile))
            r = cgprof("dump", str(sh.pid))
            self.assertEqual(r.returncode, 1)
            self.assertIn("not a Python or Java process", r.stderr)
            r = cgprof("dump", "--subprocesses", str(sh.pid))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Process %d: python3 busy.py" % child, r.stdout)
            self.assertIn("Thread %d" % child, r.stdout)
            self.assertRegex(r.stdout, r"busy \(.*busy\.py:\d+\)")
            # the target's own stack still starts at the named process
            r = cgprof("dump", "--subprocesses", str(self.target.pid))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Process %d: python3 busy.py" % self.target.pid, r.stdout)

    def test_native(self):
        """A thread in time.sleep is always in libc's clock_nanosleep: the
        leaf with --native, the Python frame's caller's child without."""
        p = self.spawn([PY, "-c", "import time; print('ready', flush=True); time.sleep(60)"])
        self.assertEqual(p.stdout.readline().strip(), "ready")
        frames = {}
        for opts in ([], ["--native"]):
            r = cgprof("dump", *(opts + [str(p.pid)]))
            self.assertEqual(r.returncode, 0, r.stderr)
            frames[bool(opts)] = [l.strip() for l in r.stdout.splitlines()
                                  if l.startswith("    ")]
        self.assertEqual(frames[False], ["<module> (<string>:1)"])
        self.assertRegex(frames[True][0], r"^clock_nanosleep\S* \(libc\.so\.6\)$")
        self.assertIn("<module> (<string>:1)", frames[True])


class TestLabels(CgTestCase):
    def test_python_m_is_named_by_module_not_arguments(self):
        p = self.spawn([PY, "-X", "dev", "-m", "timeit", "-n", "1000000000",
                        "secret_value = 1"])
        time.sleep(0.7)
        r = cgprof("dump", str(p.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        first = r.stdout.splitlines()[0]
        self.assertEqual(first, "Process %d: python3 -m timeit" % p.pid)
        self.assertNotIn("secret", r.stdout)


if __name__ == "__main__":
    unittest.main()

"""Documentation stays in step with the code (every option in `cgprof
--help` is in man/cgprof.1 and the reverse), and the Debian package builds,
installs into a scratch root and works from there."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from cgtest import CGPROF, ROOT, WORKLOADS, CgTestCase, parse_collapsed, run

MAN1 = os.path.join(ROOT, "man", "cgprof.1")


def help_options():
    out = subprocess.run([CGPROF, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out))


def man_options():
    """Options documented in the man page's OPTIONS sections."""
    with open(MAN1) as f:
        text = f.read().replace("\\-", "-")  # roff escapes '-' as '\-'
    sections = re.split(r"^\.SH ", text, flags=re.M)
    opts = "\n".join(s for s in sections if s.split("\n", 1)[0].endswith("OPTIONS"))
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", opts))


class TestDocs(unittest.TestCase):
    def test_help_options_are_in_man(self):
        missing = help_options() - man_options()
        self.assertFalse(missing, "in --help but not in man/cgprof.1: %s" % sorted(missing))

    def test_man_options_are_in_help(self):
        extra = man_options() - help_options()
        self.assertFalse(extra, "in man/cgprof.1 but not in --help: %s" % sorted(extra))

    def test_every_command_in_man(self):
        text = open(MAN1).read()
        for cmd in ("run", "attach", "dump", "heap", "upload", "config"):
            self.assertRegex(text, r"\.B %s\b|\.TP\n\.B %s " % (cmd, cmd), cmd)

    def test_readme_has_the_two_commands(self):
        readme = open(os.path.join(ROOT, "README.md")).read()
        self.assertIn("make demo", readme)
        self.assertIn("make check", readme)
        ci = open(os.path.join(ROOT, ".ci", "run")).read()
        self.assertIn("make check", ci)


class TestPackaging(CgTestCase):
    NOT_UNDER_ASAN = "builds, installs and runs a package of its own plain build"

    def test_deb_builds_installs_and_runs(self):
        for tool in ("dpkg-buildpackage", "dpkg-deb"):
            if not shutil.which(tool):
                self.skipTest("%s not installed" % tool)
        with tempfile.TemporaryDirectory() as d:
            r = run([os.path.join(ROOT, "packaging", "build-deb.sh"), os.path.join(d, "out")],
                    timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            deb = r.stdout.strip().splitlines()[-1]
            # exactly the promised files
            listing = run(["dpkg-deb", "-c", deb]).stdout
            files = sorted(l.split()[-1] for l in listing.splitlines() if not l.startswith("d"))
            expected = {"./usr/bin/cgprof", "./usr/share/man/man1/cgprof.1.gz",
                        "./usr/share/man/man5/cgprof.conf.5.gz",
                        "./etc/cgprof/cgprof.conf.example"}
            for e in expected:
                self.assertIn(e, files)
            root = os.path.join(d, "root")
            r = run(["dpkg-deb", "-x", deb, root])
            self.assertEqual(r.returncode, 0, r.stderr)
            installed = os.path.join(root, "usr", "bin", "cgprof")
            r = run([installed, "--version"])
            self.assertEqual(r.returncode, 0, r.stderr)
            out = os.path.join(d, "p.txt")
            r = run([installed, "run", "-o", out, "--", "/usr/bin/python3",
                     os.path.join(WORKLOADS, "cli", "busy.py"), "1"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            stacks = parse_collapsed(open(out).read())
            self.assertTrue(any(s[-1].startswith("busy (") for s in stacks), stacks)
            if shutil.which("lintian"):
                r = run(["lintian", "--no-tag-display-limit", deb], timeout=300)
                # Justified exceptions: the project has no public mail host
                # yet, so Maintainer and changelog use a placeholder address.
                allowed = ("bogus-mail-host", "bogus-mail-host-in-debian-changelog")
                errors = [l for l in r.stdout.splitlines()
                          if l.startswith("E:") and l.split()[2] not in allowed]
                self.assertFalse(errors, r.stdout)


if __name__ == "__main__":
    unittest.main()

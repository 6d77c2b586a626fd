"""The five encoders, each read back by something that is not cgprof: the
pprof file by protoc against tests/data/profile.proto, speedscope and
CodeGuru JSON against schemas the tests own, the SVG by an XML parser. One
known profile (written by build/tests/unit/test_encode with
CGPROF_ENCODE_OUT) must come out with the same totals and top frames in all
five."""
import collections
import gzip
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import cgtest

DATA = os.path.join(cgtest.ROOT, "tests", "data")
WRITER = os.path.join(cgtest.BUILD, "tests", "unit", "test_encode")

# What test_encode.c puts in the known Python profile (stacks root first,
# thread roots left out) and in the Java one, by state.
PY_STACKS = {
    ("main", "work", "Job.crunch"): 6,
    ("main", "work"): 3,
    ("main", "io_wait", "read"): 3,
    ("<Truncated>", "deep"): 2,
}
PY_CPU = 6 + 2 + 2  # RUNNING samples
JAVA_STATES = {"RUNNABLE": 4, "BLOCKED": 2, "TIMED_WAITING": 3, "NATIVE": 1}
INTERVAL_NS = {"python": 10_000_000, "java": 50_000_000}


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def func_of(label):
    """'work (/app/job.py:12)' -> 'work'"""
    return label.split(" (", 1)[0]


def leaf_totals(stacks):
    """{leaf function: self samples}"""
    out = collections.Counter()
    for stack, n in stacks.items():
        out[stack[-1]] += n
    return out


# ---- protobuf text format, as protoc --decode prints it ----

def parse_text_proto(text):
    """A dict of field -> list of values (scalars as str, messages as dicts)."""
    root = collections.defaultdict(list)
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
            continue
        if line.endswith("{"):
            child = collections.defaultdict(list)
            stack[-1][line[:-1].strip()].append(child)
            stack.append(child)
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if value.startswith('"'):
            value = bytes(value[1:-1], "latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")
        stack[-1][key.strip()].append(value)
    return root


def first(msg, key, default="0"):
    v = msg.get(key)
    return v[0] if v else default


class EncodersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(WRITER, os.X_OK):
            raise unittest.SkipTest("%s not built (make unit-bin)" % WRITER)
        cls.dir = tempfile.mkdtemp(prefix="cgprof-enc-")
        env = dict(os.environ, CGPROF_ENCODE_OUT=cls.dir, CK_FORK="no")
        r = subprocess.run([WRITER], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("test_encode failed:\n" + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "dir", ""), ignore_errors=True)

    def path(self, name):
        p = os.path.join(self.dir, name)
        self.assertTrue(os.path.exists(p), "%s was not written" % name)
        return p

    # ---- one reader per format, each giving {stack of functions: count} ----

    def read_collapsed(self, which):
        stacks = cgtest.parse_collapsed(read_text(self.path(which + ".txt")))
        out = collections.Counter()
        for frames, n in stacks.items():
            funcs = tuple(func_of(f) for f in frames if not f.startswith("thread "))
            out[funcs] += n
        return out, stacks

    def read_pprof(self, which):
        if not shutil.which("protoc"):
            self.skipTest("protoc not installed (Debian: protobuf-compiler)")
        with gzip.open(self.path(which + ".pb.gz")) as f:
            raw = f.read()
        r = subprocess.run(["protoc", "--decode=perftools.profiles.Profile", "-I", DATA,
                            os.path.join(DATA, "profile.proto")],
                           input=raw, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        prof = parse_text_proto(r.stdout.decode())
        strings = prof["string_table"]
        self.assertEqual(strings[0], "", "string_table[0] must be empty")
        types = [(strings[int(first(t, "type"))], strings[int(first(t, "unit"))])
                 for t in prof["sample_type"]]
        self.assertEqual(types, [("samples", "count"), ("cpu", "nanoseconds"),
                                 ("wall", "nanoseconds")])
        funcs = {first(f, "id"): strings[int(first(f, "name"))] for f in prof["function"]}
        locs = {}
        for loc in prof["location"]:
            line = loc["line"][0]
            locs[first(loc, "id")] = (funcs[first(line, "function_id")], int(first(line, "line")))
        out = collections.Counter()
        cpu = wall = 0
        threads = collections.Counter()
        for s in prof["sample"]:
            values = [int(v) for v in s["value"]]
            funcs_leaf_first = [locs[i][0] for i in s.get("location_id", [])]
            out[tuple(reversed(funcs_leaf_first))] += values[0]
            cpu += values[1]
            wall += values[2]
            labels = {strings[int(first(l, "key"))]: l for l in s.get("label", [])}
            if "thread" in labels:
                name = strings[int(first(labels["thread"], "str"))]
                tid = first(labels["thread_id"], "num")
                threads["thread %s (%s)" % (name, tid)] += values[0]
        meta = {"period": int(first(prof, "period")), "cpu": cpu, "wall": wall,
                "threads": threads, "time_nanos": int(first(prof, "time_nanos")),
                "duration_nanos": int(first(prof, "duration_nanos")), "locs": locs}
        return out, meta

    def read_speedscope(self, which):
        try:
            import jsonschema
        except ImportError:
            self.skipTest("python3-jsonschema not installed")
        doc = load_json(self.path(which + ".speedscope.json"))
        schema = load_json(os.path.join(DATA, "speedscope-schema.json"))
        jsonschema.validate(doc, schema)
        frames = doc["shared"]["frames"]
        out = collections.Counter()
        per_profile = {}
        for prof in doc["profiles"]:
            self.assertEqual(len(prof["samples"]), len(prof["weights"]))
            self.assertEqual(prof["endValue"] - prof["startValue"], sum(prof["weights"]))
            for stack, w in zip(prof["samples"], prof["weights"]):
                out[tuple(frames[i]["name"] for i in stack)] += w
            per_profile[prof["name"]] = sum(prof["weights"])
        return out, per_profile

    def read_codeguru(self, which):
        try:
            import jsonschema
        except ImportError:
            self.skipTest("python3-jsonschema not installed")
        doc = load_json(self.path(which + ".json"))
        schema = load_json(os.path.join(DATA, "codeguru-agent-profile.schema.json"))
        jsonschema.validate(doc, schema)
        out = collections.Counter()
        by_counter = collections.Counter()

        def walk(node, path):
            for counter, n in node.get("counts", {}).items():
                out[path] += n
                by_counter[counter] += n
            for key, child in node.get("children", {}).items():
                walk(child, path + (key,))
        walk(doc["callgraph"], ())
        return out, by_counter, doc

    def read_svg(self, which):
        tree = ET.parse(self.path(which + ".svg"))
        ns = {"svg": "http://www.w3.org/2000/svg"}
        root = tree.getroot()
        self.assertTrue(root.tag.endswith("svg"))
        for el in root.iter():
            for attr in ("href", "{http://www.w3.org/1999/xlink}href", "src"):
                self.assertNotIn(attr, el.attrib, "the SVG must not load anything")
        self.assertIsNotNone(root.find("svg:script", ns), "no embedded script")
        nodes = []
        for g in root.iter("{http://www.w3.org/2000/svg}g"):
            if "data-l" in g.attrib:
                nodes.append((int(g.get("data-d")), int(g.get("data-s")), int(g.get("data-n")),
                              g.get("data-l")))
        return nodes, int(root.get("data-total")), root

    # ---- the tests ----

    def test_collapsed_is_the_known_profile(self):
        got, raw = self.read_collapsed("python")
        self.assertEqual(dict(got), PY_STACKS)
        self.assertIn(("thread main (100)", "main (/app/job.py:40)", "io_wait (/app/io.py:3)",
                       "read (libc.so.6)"), raw)

    def test_pprof_decodes_and_agrees(self):
        want, _ = self.read_collapsed("python")
        got, meta = self.read_pprof("python")
        self.assertEqual(dict(got), dict(want))
        self.assertEqual(meta["period"], INTERVAL_NS["python"])
        self.assertEqual(meta["wall"], 14 * INTERVAL_NS["python"])
        self.assertEqual(meta["cpu"], PY_CPU * INTERVAL_NS["python"])
        self.assertEqual(dict(meta["threads"]), {"thread main (100)": 12, "thread io (101)": 2})
        self.assertEqual(meta["duration_nanos"], 60_000 * 1_000_000)
        self.assertIn(("Job.crunch", 7), meta["locs"].values())

    def test_speedscope_validates_and_agrees(self):
        want, _ = self.read_collapsed("python")
        got, per_profile = self.read_speedscope("python")
        self.assertEqual(dict(got), dict(want))
        self.assertEqual(per_profile, {"thread main (100)": 12, "thread io (101)": 2})

    def test_codeguru_validates_and_agrees(self):
        got, by_counter, doc = self.read_codeguru("python")
        self.assertEqual(dict(by_counter), {"WALL_TIME": 14})
        # module.path:Class:function, as the Python agent forms it
        self.assertEqual(got[("job:main", "job:work", "job:Job:crunch")], 6)
        self.assertEqual(got[("<Truncated>", "deep:deep")], 2)
        md = doc["agentMetadata"]
        self.assertEqual(md["numTimesSampled"], 7)
        self.assertEqual(md["durationInMs"], doc["end"] - doc["start"])
        self.assertAlmostEqual(md["sampleWeights"]["WALL_TIME"], 7 / 60.0)
        self.assertEqual(md["runtimeVersion"], "3.12.1")
        self.assertAlmostEqual(md["metrics"]["numThreads"], 2.0)
        # the same stacks, keyed the CodeGuru way
        want, _ = self.read_collapsed("python")
        as_funcs = collections.Counter()
        for path, n in got.items():
            as_funcs[tuple(k.split(":")[-1] for k in path)] += n
        norm = collections.Counter()
        for stack, n in want.items():
            norm[tuple(f.split(".")[-1] for f in stack)] += n
        self.assertEqual(dict(as_funcs), dict(norm))

    def test_codeguru_java_counts_by_thread_state(self):
        got, by_counter, doc = self.read_codeguru("java")
        self.assertEqual(dict(by_counter), JAVA_STATES)
        self.assertEqual(set(doc["agentMetadata"]["sampleWeights"]), set(JAVA_STATES))
        self.assertEqual(got[("java.lang.Thread.run", "com.example.Worker.work",
                              "com.example.Worker.lock")], 2)
        heap = doc["heapSummary"]
        self.assertEqual(heap["classes"][0]["className"], "[B")
        self.assertEqual(heap["totalBytes"], 4826400)

    def test_svg_parses_and_agrees(self):
        nodes, total, root = self.read_svg("python")
        self.assertEqual(total, 14)
        self.assertEqual(sum(n for d, s, n, l in nodes if d == 1), 14)
        crunch = [n for d, s, n, l in nodes if l == "Job.crunch (/app/job.py:7)"]
        self.assertEqual(crunch, [6])
        texts = "".join(root.itertext())
        self.assertIn("known profile", texts)
        _, _, jroot = self.read_svg("java")
        self.assertIn("java.lang.String", "".join(jroot.itertext()))

    def test_svg_script_runs(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            self.skipTest("node not installed: the SVG's script is not exercised")
        r = subprocess.run([node, os.path.join(DATA, "svg-dom-shim.js"), self.path("python.svg")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("details: Job.crunch (/app/job.py:7) (6 samples", out)
        self.assertIn("zoomed width 1180 ", out)       # the clicked frame fills the width
        self.assertIn("after reset width 505.7", out)  # 6/14 of 1180 again
        self.assertIn("matched: Matched: 57.1%", out)  # crunch 6 + deep 2 of 14
        self.assertIn('cleared: " " Search', out)

    def test_all_five_agree_on_totals_and_top_frames(self):
        results = {}
        collapsed, _ = self.read_collapsed("python")
        results["collapsed"] = collapsed
        results["pprof"], _ = self.read_pprof("python")
        results["speedscope"], _ = self.read_speedscope("python")
        cg, _, _ = self.read_codeguru("python")
        # CodeGuru keys are module:Class:function; compare by function name
        results["codeguru"] = collections.Counter(
            {tuple(k.split(":")[-1] for k in p): n for p, n in cg.items()})
        nodes, total, _ = self.read_svg("python")
        # self samples per SVG node: its width minus its children's
        by_pos = {(d, s): (n, func_of(l)) for d, s, n, l in nodes}
        svg = collections.Counter()
        for (d, s), (n, f) in by_pos.items():
            kids = sum(kn for (kd, ks), (kn, _) in by_pos.items()
                       if kd == d + 1 and s <= ks < s + n)
            if n - kids:
                svg[(f,)] += n - kids
        results["flamegraph"] = svg
        totals = {k: sum(v.values()) for k, v in results.items()}
        self.assertEqual(set(totals.values()), {14}, totals)
        tops = {}
        for k, v in results.items():
            leaves = leaf_totals(v)
            tops[k] = [(f.split(".")[-1], n) for f, n in
                       sorted(leaves.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        ref = tops["collapsed"]
        for k, t in tops.items():
            self.assertEqual(t, ref, "%s disagrees: %s" % (k, tops))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Generate src/python/layouts.gen.c: the CPython structure offsets cgprof
reads, one row per minor version, computed by compiling a small C program
against each CPython's own headers (offsetof/sizeof), never typed by hand,
and for 3.13+ where each offset sits inside that version's _Py_DebugOffsets.

The fields are those of src/python/layout_fields.h (the one list the C
code reads too). Headers are looked for under ~/.pyenv/versions (or
PYENV_VERSIONS_DIR) and in the Debian root of tests/rig/sid-root.sh
(CGPROF_SID_ROOT, default /var/cache/cgprof/sid-root) for 3.14+. Versions
whose headers this machine lacks keep the rows already in the file."""
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
FIELDS_H = os.path.join(TOP, "src/python/layout_fields.h")
GEN_C = os.path.join(TOP, "src/python/layouts.gen.c")


def read_fields():
    """[(column, debug member or None)] in the order of layout_fields.h."""
    out = []
    for m in re.finditer(r"PY_FIELD\((\w+),\s*([\w.]+)\)", open(FIELDS_H).read()):
        if m.group(1) == "name":
            continue
        out.append((m.group(1), None if m.group(2) == "NONE" else m.group(2)))
    return out


# Per-version C expressions over the version's own headers. A column a
# version does not list is -1 (it has no such field).
COMMON = {
    "tstate_next": "offsetof(PyThreadState, next)",
    "tstate_interp": "offsetof(PyThreadState, interp)",
    "tstate_thread_id": "offsetof(PyThreadState, thread_id)",
    "code_filename": "offsetof(PyCodeObject, co_filename)",
    "code_name": "offsetof(PyCodeObject, co_name)",
    "code_firstlineno": "offsetof(PyCodeObject, co_firstlineno)",
    "code_flags": "offsetof(PyCodeObject, co_flags)",
    "unicode_state": "offsetof(PyASCIIObject, state)",
    "unicode_length": "offsetof(PyASCIIObject, length)",
    "unicode_ascii_size": "sizeof(PyASCIIObject)",
    "unicode_compact_size": "sizeof(PyCompactUnicodeObject)",
    "bytes_size": "offsetof(PyBytesObject, ob_base.ob_size)",
    "bytes_sval": "offsetof(PyBytesObject, ob_sval)",
    "object_type": "offsetof(PyObject, ob_type)",
    "type_basicsize": "offsetof(PyTypeObject, tp_basicsize)",
    "type_dictoffset": "offsetof(PyTypeObject, tp_dictoffset)",
    "type_flags": "offsetof(PyTypeObject, tp_flags)",
    "heaptype_cached_keys": "offsetof(PyHeapTypeObject, ht_cached_keys)",
    "dict_keys": "offsetof(PyDictObject, ma_keys)",
    "dict_values": "offsetof(PyDictObject, ma_values)",
    "long_digit_size": "sizeof(digit)",
    "long_shift": "PyLong_SHIFT",
}
# 3.6 - 3.10 keep PyDictKeysObject in Objects/dict-common.h, which is not
# installed: its members are Py_ssize_t dk_refcnt, dk_size, a lookup
# function pointer, dk_usable, dk_nentries, then dk_indices; an entry is
# {hash, key, value}; split values are a plain array.
OLD_OBJECTS = {
    "interp_modules": "offsetof(PyInterpreterState, modules)",
    "module_dict": "sizeof(PyObject)",  # md_dict follows the header
    "dictkeys_size": "sizeof(Py_ssize_t)",
    "dictkeys_nentries": "4 * sizeof(Py_ssize_t)",
    "dictkeys_indices": "5 * sizeof(Py_ssize_t)",
    "dict_entry_size": "3 * sizeof(void *)",
    "dictvalues_values": "0",
    "long_size": "offsetof(PyVarObject, ob_size)",
    "long_digit": "offsetof(PyLongObject, ob_digit)",
}
NEW_DICT = {  # 3.11+: pycore_dict.h
    "module_dict": "offsetof(PyModuleObject, md_dict)",
    "dictkeys_log2_size": "offsetof(PyDictKeysObject, dk_log2_size)",
    "dictkeys_log2_index_bytes": "offsetof(PyDictKeysObject, dk_log2_index_bytes)",
    "dictkeys_kind": "offsetof(PyDictKeysObject, dk_kind)",
    "dictkeys_nentries": "offsetof(PyDictKeysObject, dk_nentries)",
    "dictkeys_indices": "offsetof(PyDictKeysObject, dk_indices)",
    "dict_entry_size": "sizeof(PyDictKeyEntry)",
    "dict_unicode_entry_size": "sizeof(PyDictUnicodeEntry)",
    "dictvalues_values": "offsetof(PyDictValues, values)",
    "tpflag_managed_dict": "Py_TPFLAGS_MANAGED_DICT",
}
OLD_FRAMES = {  # 3.6 - 3.10: PyFrameObject chain
    "tstate_frame": "offsetof(PyThreadState, frame)",
    "frame_back": "offsetof(PyFrameObject, f_back)",
    "frame_code": "offsetof(PyFrameObject, f_code)",
    "frame_lasti": "offsetof(PyFrameObject, f_lasti)",
    "frame_size": "sizeof(PyFrameObject)",
    "interp_tstate_head": "offsetof(PyInterpreterState, tstate_head)",
}
NEW_FRAMES = {  # 3.11+: _PyInterpreterFrame chain in data-stack chunks
    "frame_back": "offsetof(_PyInterpreterFrame, previous)",
    "frame_owner": "offsetof(_PyInterpreterFrame, owner)",
    "frame_size": "sizeof(_PyInterpreterFrame)",
    "code_qualname": "offsetof(PyCodeObject, co_qualname)",
    "code_linetable": "offsetof(PyCodeObject, co_linetable)",
    "code_adaptive": "offsetof(PyCodeObject, co_code_adaptive)",
    "tstate_native_thread_id": "offsetof(PyThreadState, native_thread_id)",
    "tstate_datastack_chunk": "offsetof(PyThreadState, datastack_chunk)",
    "interp_tstate_head": "offsetof(PyInterpreterState, threads.head)",
    "runtime_interp_head": "offsetof(_PyRuntimeState, interpreters.head)",
}
RUNTIME = {"runtime_interp_head": "offsetof(_PyRuntimeState, interpreters.head)"}
LNOTAB = {"code_linetable": "offsetof(PyCodeObject, co_lnotab)"}
CFRAME = {  # 3.11 - 3.12
    "tstate_cframe": "offsetof(PyThreadState, cframe)",
    "cframe_current_frame": "offsetof(_PyCFrame, current_frame)",
    "frame_code": "offsetof(_PyInterpreterFrame, f_code)",
    "frame_instr": "offsetof(_PyInterpreterFrame, prev_instr)",
}
CURRENT_FRAME = {  # 3.13+
    "tstate_current_frame": "offsetof(PyThreadState, current_frame)",
    "frame_code": "offsetof(_PyInterpreterFrame, f_executable)",
    "frame_instr": "offsetof(_PyInterpreterFrame, instr_ptr)",
    "interp_threads_main": "offsetof(PyInterpreterState, threads.main)",
}


def merged(*parts):
    out = {}
    for p in parts:
        out.update(p)
    return out


# Instance attributes: 3.11 keeps the dict and the values pointers before
# the object, 3.12 one word that is either (the values pointer less 1),
# 3.13+ the dict before it and the values inline after tp_basicsize.
OBJ311 = merged(NEW_DICT, {
    "interp_modules": "offsetof(PyInterpreterState, modules)",
    "long_size": "offsetof(PyLongObject, ob_base.ob_size)",
    "long_digit": "offsetof(PyLongObject, ob_digit)",
    "managed_dict_before": "3 * sizeof(PyObject *)",
    "managed_values_before": "4 * sizeof(PyObject *)",
})
OBJ312 = merged(NEW_DICT, {
    "interp_modules": "offsetof(PyInterpreterState, imports.modules)",
    "long_lv_tag": "offsetof(PyLongObject, long_value.lv_tag)",
    "long_digit": "offsetof(PyLongObject, long_value.ob_digit)",
    "managed_dict_before": "3 * sizeof(PyObject *)",
    "managed_values_tag": "1",
})
OBJ313 = merged(NEW_DICT, {
    "interp_modules": "offsetof(PyInterpreterState, imports.modules)",
    "long_lv_tag": "offsetof(PyLongObject, long_value.lv_tag)",
    "long_digit": "offsetof(PyLongObject, long_value.ob_digit)",
    "managed_dict_before": "-MANAGED_DICT_OFFSET",
    "tpflag_inline_values": "Py_TPFLAGS_INLINE_VALUES",
})
MODULE310 = {"module_dict": "offsetof(PyModuleObject, md_dict)"}

VERSIONS = {
    (3, 6): merged(OLD_FRAMES, LNOTAB, OLD_OBJECTS),
    (3, 7): merged(OLD_FRAMES, LNOTAB, RUNTIME, OLD_OBJECTS),
    (3, 8): merged(OLD_FRAMES, LNOTAB, RUNTIME, OLD_OBJECTS),
    (3, 9): merged(OLD_FRAMES, LNOTAB, RUNTIME, OLD_OBJECTS),
    (3, 10): merged(OLD_FRAMES, RUNTIME, OLD_OBJECTS, MODULE310,
                    {"code_linetable": "offsetof(PyCodeObject, co_linetable)"}),
    (3, 11): merged(NEW_FRAMES, CFRAME, OBJ311,
                    {"frame_is_entry": "offsetof(_PyInterpreterFrame, is_entry)"}),
    (3, 12): merged(NEW_FRAMES, CFRAME, OBJ312),
    (3, 13): merged(NEW_FRAMES, CURRENT_FRAME, OBJ313),
    (3, 14): merged(NEW_FRAMES, CURRENT_FRAME, OBJ313),
    (3, 15): merged(NEW_FRAMES, CURRENT_FRAME, OBJ313),
}

INTERNAL = {
    (3, 6): ["frameobject.h", "longintrepr.h"],
    (3, 7): ["frameobject.h", "internal/pystate.h", "longintrepr.h"],
    (3, 8): ["frameobject.h", "internal/pycore_pystate.h", "longintrepr.h"],
    (3, 9): ["frameobject.h", "internal/pycore_runtime.h", "internal/pycore_interp.h",
             "longintrepr.h"],
    (3, 10): ["frameobject.h", "internal/pycore_runtime.h", "internal/pycore_interp.h",
              "longintrepr.h", "internal/pycore_moduleobject.h"],
}
NEW_INTERNAL = ["internal/pycore_runtime.h", "internal/pycore_interp.h",
                "internal/pycore_frame.h", "internal/pycore_dict.h",
                "internal/pycore_moduleobject.h", "internal/pycore_object.h"]


def find_headers():
    """{(3, minor): (label, include dir, [extra -I])} on this machine."""
    found = {}
    base = os.environ.get("PYENV_VERSIONS_DIR", os.path.expanduser("~/.pyenv/versions"))
    for d in sorted(glob.glob(os.path.join(base, "3.*"))):
        m = re.match(r"3\.(\d+)\.(\d+)$", os.path.basename(d))
        if not m:
            continue
        ver = (3, int(m.group(1)))
        inc = glob.glob(os.path.join(d, "include", "python%d.%d*" % ver))
        if ver in VERSIONS and inc:
            found[ver] = ("CPython %s" % os.path.basename(d), inc[0], [])
    root = os.environ.get("CGPROF_SID_ROOT", "/var/cache/cgprof/sid-root")
    for ver in VERSIONS:
        inc = os.path.join(root, "usr/include/python%d.%d" % ver)
        arch = os.path.join(root, "usr/include/x86_64-linux-gnu/python%d.%d" % ver)
        if ver in found or not os.path.isdir(inc) or not os.path.isdir(arch):
            continue
        patch = os.path.join(inc, "patchlevel.h")
        m = re.search(r'#define PY_VERSION\s+"([^"]+)"', open(patch).read())
        # Debian's pyconfig.h includes <x86_64-linux-gnu/pythonX.Y/...>:
        # found after this machine's own system headers.
        found[ver] = ("Debian CPython %s" % (m.group(1) if m else "%d.%d" % ver), inc,
                      [os.path.join(root, "usr/include")])
    return found


def compute(ver, inc, extra, fields):
    exprs = merged(COMMON, VERSIONS[ver])
    lines = ['printf("%s=%%zu\\n", (size_t)(%s));' % (c, exprs[c])
             for c, _ in fields if c in exprs]
    if ver >= (3, 13):
        lines.append('printf("dbg_struct_size=%zu\\n", sizeof(_Py_DebugOffsets));')
        lines.append('printf("dbg_version=%zu\\n", offsetof(_Py_DebugOffsets, version));')
        lines.append('printf("dbg_free_threaded=%zu\\n", '
                     'offsetof(_Py_DebugOffsets, free_threaded));')
    incs = "".join("#include <%s>\n" % h for h in INTERNAL.get(ver, NEW_INTERNAL))
    body = ("#define Py_BUILD_CORE 1\n#include <Python.h>\n#include <stddef.h>\n"
            "#include <stdio.h>\n%s" % incs)
    probes = []
    if ver >= (3, 13):
        # A member this version's _Py_DebugOffsets lacks is absent (0):
        # each is probed by compiling it alone.
        for c, member in fields:
            if member:
                probes.append((c, 'printf("dbg_%s=%%zu\\n", offsetof(_Py_DebugOffsets, %s));'
                               % (c, member)))
    vals = {}
    with tempfile.TemporaryDirectory() as d:
        def build_run(stmts):
            src, exe = os.path.join(d, "l.c"), os.path.join(d, "l")
            with open(src, "w") as f:
                f.write(body + "int main(void) {\n%s\nreturn 0;\n}\n" % "\n".join(stmts))
            cmd = ["cc", "-w", "-I", inc, "-I", os.path.join(inc, "internal")]
            for e in extra:
                cmd += ["-idirafter", e]
            r = subprocess.run(cmd + [src, "-o", exe], capture_output=True, text=True)
            if r.returncode:
                return None, r.stderr
            out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
            return dict(l.split("=") for l in out.split()), None

        got, err = build_run(lines)
        if got is None:
            sys.exit("compiling against %s failed:\n%s" % (inc, err[-3000:]))
        vals.update(got)
        for c, stmt in probes:
            got, _ = build_run([stmt])
            if got:
                vals.update(got)
    return vals


def parse_existing(fields):
    """Rows and maps already in the generated file: {minor: (comment, {col: v})}."""
    rows, maps = {}, {}
    if not os.path.exists(GEN_C):
        return rows, maps
    text = open(GEN_C).read()
    for m in re.finditer(r"\{\.major = 3, \.minor = (\d+), /\* from (.*?) headers \*/(.*?)\}",
                         text, re.S):
        rows[int(m.group(1))] = (m.group(2), dict(
            (k, int(v)) for k, v in re.findall(r"\.(\w+) = (-?\d+)", m.group(3))))
    for m in re.finditer(r"\{\.minor = (\d+), /\* from (.*?) headers \*/(.*?)\}", text, re.S):
        maps[int(m.group(1))] = (m.group(2), dict(
            (k, int(v)) for k, v in re.findall(r"\.(\w+) = (\d+)", m.group(3))))
    return rows, maps


def main():
    fields = read_fields()
    rows, maps = parse_existing(fields)
    found = find_headers()
    if not found and not rows:
        sys.exit("no CPython headers found (pyenv versions or the sid root)")
    for ver in sorted(found):
        label, inc, extra = found[ver]
        vals = compute(ver, inc, extra, fields)
        rows[ver[1]] = (label, {c: int(vals.get(c, -1)) for c, _ in fields})
        if ver >= (3, 13):
            dm = {"struct_size": int(vals["dbg_struct_size"]),
                  "version": int(vals["dbg_version"]),
                  "free_threaded": int(vals["dbg_free_threaded"])}
            for c, member in fields:
                if member and "dbg_" + c in vals:
                    dm[c] = int(vals["dbg_" + c])
            maps[ver[1]] = (label, dm)
    cols = [c for c, _ in fields]
    out = ["/* GENERATED by scripts/gen-python-layouts.py from each CPython's own",
           " * headers (offsetof/sizeof); regenerate with `make layouts`. */",
           '#include "layout.h"', "",
           "/* -1: the version has no such field. */",
           "const struct py_layout py_layouts[] = {"]
    for minor in sorted(rows):
        label, vals = rows[minor]
        cells = ["%s = %d" % (c, vals.get(c, -1)) for c in cols]
        out.append("\t{.major = 3, .minor = %d, /* from %s headers */\n\t %s}," % (
            minor, label, ",\n\t ".join("." + c for c in cells)))
    out += ["};", "const unsigned py_layouts_len = sizeof(py_layouts) / sizeof(py_layouts[0]);",
            "", "/* Where each offset sits inside each version's _Py_DebugOffsets; 0: that",
            " * version's struct has no such member. */",
            "const struct py_debug_offsets_map py_debug_maps[] = {"]
    for minor in sorted(maps):
        label, dm = maps[minor]
        keys = ["struct_size", "version", "free_threaded"] + [c for c in cols if dm.get(c)]
        out.append("\t{.minor = %d, /* from %s headers */\n\t %s}," % (
            minor, label, ",\n\t ".join(".%s = %d" % (k, dm[k]) for k in keys)))
    out += ["};",
            "const unsigned py_debug_maps_len = sizeof(py_debug_maps) / sizeof(py_debug_maps[0]);",
            ""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()

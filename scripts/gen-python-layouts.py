#!/usr/bin/env python3
"""Generate src/python/layouts.gen.c: the CPython structure offsets cgprof
reads, one row per minor version, computed by compiling a small C program
against each CPython's own headers (offsetof/sizeof), never typed by hand.

Looks for CPythons under ~/.pyenv/versions (or PYENV_VERSIONS_DIR). For
3.13+ the row is the fallback: at run time the offsets come from the
target's _Py_DebugOffsets."""
import glob
import os
import re
import subprocess
import sys
import tempfile

# Per-version C expressions. "-" means: the version has no such field.
# Names on the left are the columns of struct py_layout.
COMMON = {
    "tstate_next": "offsetof(PyThreadState, next)",
    "tstate_interp": "offsetof(PyThreadState, interp)",
    "tstate_thread_id": "offsetof(PyThreadState, thread_id)",
    "code_filename": "offsetof(PyCodeObject, co_filename)",
    "code_name": "offsetof(PyCodeObject, co_name)",
    "code_firstlineno": "offsetof(PyCodeObject, co_firstlineno)",
    "unicode_state": "offsetof(PyASCIIObject, state)",
    "unicode_length": "offsetof(PyASCIIObject, length)",
    "unicode_ascii_size": "sizeof(PyASCIIObject)",
    "unicode_compact_size": "sizeof(PyCompactUnicodeObject)",
    "bytes_size": "offsetof(PyBytesObject, ob_base.ob_size)",
    "bytes_sval": "offsetof(PyBytesObject, ob_sval)",
}

OLD_FRAMES = {  # 3.6 - 3.10: PyFrameObject chain
    "tstate_frame": "offsetof(PyThreadState, frame)",
    "frame_back": "offsetof(PyFrameObject, f_back)",
    "frame_code": "offsetof(PyFrameObject, f_code)",
    "frame_lasti": "offsetof(PyFrameObject, f_lasti)",
    "frame_size": "sizeof(PyFrameObject)",
}

NEW_FRAMES = {  # 3.11+: _PyInterpreterFrame chain
    "frame_back": "offsetof(_PyInterpreterFrame, previous)",
    "frame_owner": "offsetof(_PyInterpreterFrame, owner)",
    "frame_size": "sizeof(_PyInterpreterFrame)",
    "code_qualname": "offsetof(PyCodeObject, co_qualname)",
    "code_linetable": "offsetof(PyCodeObject, co_linetable)",
    "code_adaptive": "offsetof(PyCodeObject, co_code_adaptive)",
    "tstate_native_thread_id": "offsetof(PyThreadState, native_thread_id)",
}

VERSIONS = {
    (3, 6): dict(OLD_FRAMES, code_linetable="offsetof(PyCodeObject, co_lnotab)",
                 interp_tstate_head="offsetof(PyInterpreterState, tstate_head)"),
    (3, 7): dict(OLD_FRAMES, code_linetable="offsetof(PyCodeObject, co_lnotab)",
                 interp_tstate_head="offsetof(PyInterpreterState, tstate_head)",
                 runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)"),
    (3, 8): dict(OLD_FRAMES, code_linetable="offsetof(PyCodeObject, co_lnotab)",
                 interp_tstate_head="offsetof(PyInterpreterState, tstate_head)",
                 runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)"),
    (3, 9): dict(OLD_FRAMES, code_linetable="offsetof(PyCodeObject, co_lnotab)",
                 interp_tstate_head="offsetof(PyInterpreterState, tstate_head)",
                 runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)"),
    (3, 10): dict(OLD_FRAMES, code_linetable="offsetof(PyCodeObject, co_linetable)",
                  interp_tstate_head="offsetof(PyInterpreterState, tstate_head)",
                  runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)"),
    (3, 11): dict(NEW_FRAMES, interp_tstate_head="offsetof(PyInterpreterState, threads.head)",
                  runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)",
                  tstate_cframe="offsetof(PyThreadState, cframe)",
                  cframe_current_frame="offsetof(_PyCFrame, current_frame)",
                  frame_code="offsetof(_PyInterpreterFrame, f_code)",
                  frame_instr="offsetof(_PyInterpreterFrame, prev_instr)",
                  frame_is_entry="offsetof(_PyInterpreterFrame, is_entry)"),
    (3, 12): dict(NEW_FRAMES, interp_tstate_head="offsetof(PyInterpreterState, threads.head)",
                  runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)",
                  tstate_cframe="offsetof(PyThreadState, cframe)",
                  cframe_current_frame="offsetof(_PyCFrame, current_frame)",
                  frame_code="offsetof(_PyInterpreterFrame, f_code)",
                  frame_instr="offsetof(_PyInterpreterFrame, prev_instr)"),
    (3, 13): dict(NEW_FRAMES, interp_tstate_head="offsetof(PyInterpreterState, threads.head)",
                  runtime_interp_head="offsetof(_PyRuntimeState, interpreters.head)",
                  tstate_current_frame="offsetof(PyThreadState, current_frame)",
                  frame_code="offsetof(_PyInterpreterFrame, f_executable)",
                  frame_instr="offsetof(_PyInterpreterFrame, instr_ptr)"),
}

COLUMNS = ["runtime_interp_head", "interp_tstate_head", "tstate_next", "tstate_interp",
           "tstate_frame", "tstate_cframe", "tstate_current_frame", "tstate_thread_id",
           "tstate_native_thread_id", "cframe_current_frame", "frame_back", "frame_code",
           "frame_lasti", "frame_instr", "frame_owner", "frame_is_entry", "frame_size",
           "code_filename", "code_name", "code_qualname", "code_firstlineno",
           "code_linetable", "code_adaptive", "unicode_state", "unicode_length",
           "unicode_ascii_size", "unicode_compact_size", "bytes_size", "bytes_sval"]

# Where each field of _Py_DebugOffsets (3.13+) lives inside that struct, so
# the run-time reader is data too. name -> C member path.
DEBUG_OFFSETS = {
    "version": "version",
    "runtime_interp_head": "runtime_state.interpreters_head",
    "interp_tstate_head": "interpreter_state.threads_head",
    "tstate_next": "thread_state.next",
    "tstate_interp": "thread_state.interp",
    "tstate_current_frame": "thread_state.current_frame",
    "tstate_thread_id": "thread_state.thread_id",
    "tstate_native_thread_id": "thread_state.native_thread_id",
    "frame_back": "interpreter_frame.previous",
    "frame_code": "interpreter_frame.executable",
    "frame_instr": "interpreter_frame.instr_ptr",
    "frame_owner": "interpreter_frame.owner",
    "frame_size": "interpreter_frame.size",
    "code_filename": "code_object.filename",
    "code_name": "code_object.name",
    "code_qualname": "code_object.qualname",
    "code_linetable": "code_object.linetable",
    "code_firstlineno": "code_object.firstlineno",
    "code_adaptive": "code_object.co_code_adaptive",
    "unicode_state": "unicode_object.state",
    "unicode_length": "unicode_object.length",
    "unicode_ascii_size": "unicode_object.asciiobject_size",
    "bytes_size": "bytes_object.ob_size",
    "bytes_sval": "bytes_object.ob_sval",
}

HEADER = """
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
%s
"""

INTERNAL = {
    (3, 6): "#include <frameobject.h>\n",
    (3, 7): "#include <frameobject.h>\n#include <internal/pystate.h>\n",
    (3, 8): "#include <frameobject.h>\n#include <internal/pycore_pystate.h>\n",
    (3, 9): "#include <frameobject.h>\n#include <internal/pycore_runtime.h>\n#include <internal/pycore_interp.h>\n",
    (3, 10): "#include <frameobject.h>\n#include <internal/pycore_runtime.h>\n#include <internal/pycore_interp.h>\n",
    (3, 11): "#include <internal/pycore_runtime.h>\n#include <internal/pycore_interp.h>\n#include <internal/pycore_frame.h>\n",
    (3, 12): "#include <internal/pycore_runtime.h>\n#include <internal/pycore_interp.h>\n#include <internal/pycore_frame.h>\n",
    (3, 13): "#include <internal/pycore_runtime.h>\n#include <internal/pycore_interp.h>\n#include <internal/pycore_frame.h>\n",
}


def find_cpythons():
    base = os.environ.get("PYENV_VERSIONS_DIR", os.path.expanduser("~/.pyenv/versions"))
    found = {}
    for d in sorted(glob.glob(os.path.join(base, "3.*"))):
        m = re.match(r"3\.(\d+)\.(\d+)$", os.path.basename(d))
        if not m:
            continue
        ver = (3, int(m.group(1)))
        inc = glob.glob(os.path.join(d, "include", "python%d.%d*" % ver))
        if ver in VERSIONS and inc:
            found[ver] = (os.path.basename(d), inc[0])
    return found


def compute(ver, inc):
    fields = dict(COMMON)
    fields.update(VERSIONS[ver])
    lines = []
    for col in COLUMNS:
        if col in fields:
            lines.append('printf("%s=%%zu\\n", (size_t)(%s));' % (col, fields[col]))
    body = HEADER % INTERNAL[ver]
    if ver >= (3, 13):
        for name, path in DEBUG_OFFSETS.items():
            if path:
                lines.append('printf("dbg_%s=%%zu\\n", offsetof(_Py_DebugOffsets, %s));'
                             % (name, path))
        lines.append('printf("dbg_struct_size=%zu\\n", sizeof(_Py_DebugOffsets));')
    body += "int main(void) {\n%s\nreturn 0;\n}\n" % "\n".join(lines)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "l.c")
        exe = os.path.join(d, "l")
        with open(src, "w") as f:
            f.write(body)
        r = subprocess.run(["cc", "-w", "-I", inc, "-I", os.path.join(inc, "internal"),
                            src, "-o", exe], capture_output=True, text=True)
        if r.returncode:
            sys.exit("compiling against %s failed:\n%s" % (inc, r.stderr[-3000:]))
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    return dict(l.split("=") for l in out.split())


def main():
    found = find_cpythons()
    if not found:
        sys.exit("no CPython 3.6-3.13 headers found under ~/.pyenv/versions")
    rows, dbg = [], None
    for ver in sorted(found):
        name, inc = found[ver]
        vals = compute(ver, inc)
        cells = ["%s = %s" % (c, vals.get(c, "-1")) for c in COLUMNS]
        rows.append("\t{.major = %d, .minor = %d, /* from CPython %s headers */\n\t %s},"
                    % (ver[0], ver[1], name, ",\n\t ".join(".%s" % c for c in cells)))
        if ver >= (3, 13):
            dbg = {k[4:]: v for k, v in vals.items() if k.startswith("dbg_")}
    out = ["/* GENERATED by scripts/gen-python-layouts.py from each CPython's own",
           " * headers (offsetof/sizeof); regenerate with `make layouts`. */",
           '#include "layout.h"', "",
           "/* -1: the version has no such field. */",
           "const struct py_layout py_layouts[] = {"]
    out += rows
    out += ["};", "const unsigned py_layouts_len = sizeof(py_layouts) / sizeof(py_layouts[0]);", ""]
    if dbg:
        out.append("/* Where each offset sits inside _Py_DebugOffsets (3.13 headers). */")
        out.append("const struct py_debug_offsets_map py_debug_map = {")
        out += ["\t.%s = %s," % (k, v) for k, v in dbg.items()]
        out.append("};")
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seeds for fuzz_pyasync: for CPython 3.14 and 3.15 (their rows of
src/python/layouts.gen.c) a well-formed image in the harness's input format
(see tests/fuzz/fuzz_pyasync.c): _Py_DebugOffsets -> _asyncio offsets ->
a thread state whose task list holds two tasks, one awaiting the other's
coroutine chain, named by a str and by an int; the same with a task list
that loops; and the same with the first task named running while the
thread's stack holds another frame (the task yielded after the loop
named it).
    python3 tests/fuzz/seeds/pyasync_seeds.py tests/fuzz/corpus/pyasync"""
import os
import re
import struct
import sys

GEN = "src/python/layouts.gen.c"


def rows():
    """The generated layout rows of 3.14 and 3.15: {minor: {field: value}}."""
    table = open(GEN).read().split("py_debug_maps[]")[0]
    out = {}
    for m in re.finditer(r"\{\.major = 3, \.minor = (\d+),(.*?)\}", table, re.S):
        if int(m.group(1)) in (14, 15):
            out[int(m.group(1))] = {k: int(v) for k, v in
                                    re.findall(r"\.(\w+) = (-?\d+)", m.group(2))}
    return out


class Region:
    def __init__(self, size):
        self.b = bytearray(size)

    def u64(self, off, v):
        self.b[off:off + 8] = struct.pack("<Q", v)

    def i32(self, off, v):
        self.b[off:off + 4] = struct.pack("<i", v)

    def u8(self, off, v):
        self.b[off] = v

BASE = lambda i: 0x100000 * (i + 1)
PYCODE_TYPE = 0xC0DE000
GEN_TYPE, STR_TYPE_FLAGS, LONG_TYPE_FLAGS = 0x6E0000, 1 << 28, 1 << 24
# where asyncio.c reads each value inside _Py_DebugOffsets (its pa_versions)
DBG_AT = {
    14: dict(gen_iframe=680, gen_frame_state=688, frame_stackpointer=296, ob_type=408,
             tp_name=424, tp_flags=440, set_used=504, set_table=512, set_mask=520,
             long_tag=576, long_digit=584, llist_next=696),
    15: dict(gen_iframe=808, gen_frame_state=816, frame_stackpointer=360, ob_type=472,
             tp_name=488, tp_flags=504, set_used=600, set_table=608, set_mask=616,
             long_tag=672, long_digit=680, llist_next=824),
}
STATES = {14: dict(suspended=-2, yield_from=-1), 15: dict(suspended=1, yield_from=2)}
TASK = dict(size=168, name=136, awaited_by=96, is_task=108, ab_is_set=109, coro=128, node=152)
TS_SIZE, TS_LOOP, TS_TASK, TS_HEAD = 1024, 864, 872, 880
INTERP_SIZE, INTERP_HEAD = 8192, 7400


def image(L, minor, loop=False, moved=False):
    owner = L["frame_owner"]
    sp_off = (max(L["frame_code"], L["frame_back"], L["frame_instr"], owner) + 8) & ~7
    ob = dict(gen_iframe=80, gen_frame_state=72, frame_stackpointer=sp_off, ob_type=8,
              tp_name=24, tp_flags=168, set_used=24, set_table=40, set_mask=32,
              long_tag=16, long_digit=24, llist_next=0)
    rt, aoff, ts, interp = Region(1024), Region(8 * 13), Region(TS_SIZE), Region(INTERP_SIZE)
    tasks, gens, strs, codes = (Region(0x200), Region(0x600 if moved else 0x400), Region(0x400),
                                Region(0x200))
    for k, at in DBG_AT[minor].items():
        rt.u64(at, ob[k])
    rt.u64(L["runtime_interp_head"], BASE(3))
    for i, v in enumerate([TASK["size"], TASK["name"], TASK["awaited_by"], TASK["is_task"],
                           TASK["ab_is_set"], TASK["coro"], TASK["node"], INTERP_SIZE,
                           INTERP_HEAD, TS_SIZE, TS_LOOP, TS_TASK, TS_HEAD]):
        aoff.u64(8 * i, v)
    interp.u64(L["interp_tstate_head"], BASE(2))
    interp.u64(INTERP_HEAD, BASE(3) + INTERP_HEAD)  # empty: comes back to itself
    t1, t2 = BASE(4), BASE(4) + 0x100
    head = BASE(2) + TS_HEAD
    ts.u64(TS_HEAD, t1 + TASK["node"])
    # strings: "sleeper" (a str), then a str type and an int type and 7
    s_name, s_file, s_type, l_type, num = (BASE(6), BASE(6) + 0x80, BASE(6) + 0x100,
                                           BASE(6) + 0x200, BASE(6) + 0x300)
    for at, text in ((0, b"sleeper"), (0x80, b"/app.py")):
        strs.u64(at, 1)
        strs.u64(at + 8, s_type)
        strs.u64(at + L["unicode_length"], len(text))
        strs.i32(at + L["unicode_state"], (1 << 2) | (1 << 5) | (1 << 6))
        strs.b[at + L["unicode_ascii_size"]:at + L["unicode_ascii_size"] + len(text)] = text
    strs.u64(0x100 + ob["tp_flags"], STR_TYPE_FLAGS)
    strs.u64(0x200 + ob["tp_flags"], LONG_TYPE_FLAGS)
    strs.u64(0x300, 1)
    strs.u64(0x308, l_type)
    strs.u64(0x300 + ob["long_tag"], 1 << 3)
    strs.i32(0x300 + ob["long_digit"], 7)
    # one code object with a line table (region 7), shared by both coroutines
    code = BASE(7)
    codes.u64(0, 1)
    codes.u64(8, PYCODE_TYPE)
    codes.u64(L["code_filename"], s_file)
    codes.u64(L["code_name"], s_name)
    codes.u64(L["code_qualname"], s_name)
    codes.i32(L["code_firstlineno"], 10)
    codes.u64(L["code_linetable"], code + 0x180)
    lt = bytes([0xE8 | 1, 0x02, 0xE8 | 1, 0x02])  # 3.11+ locations: +1 line each
    codes.u64(0x180 + L["bytes_size"], len(lt))
    codes.b[0x180 + L["bytes_sval"]:0x180 + L["bytes_sval"] + len(lt)] = lt
    # two tasks: t1 "sleeper" runs coroutine g1, which awaits g2; t2 is Task-7
    g1, g2 = BASE(5), BASE(5) + 0x200
    for at, name, coro, nxt in ((0, s_name, g1, t2 + TASK["node"]),
                                (0x100, num, g2, t1 + TASK["node"] if loop else head)):
        tasks.u64(at, 1)
        tasks.u64(at + TASK["name"], name)
        tasks.u64(at + TASK["coro"], coro)
        tasks.u8(at + TASK["is_task"], 1)
        tasks.u64(at + TASK["node"], nxt)
    tasks.u64(0x100 + TASK["awaited_by"], t1)
    for at, state in ((0, STATES[minor]["yield_from"]), (0x200, STATES[minor]["suspended"])):
        gens.u64(at, 1)
        gens.u64(at + ob["ob_type"], GEN_TYPE)
        gens.u8(at + ob["gen_frame_state"], state & 0xFF)
        f = at + ob["gen_iframe"]
        gens.u64(f + L["frame_code"], code)
        gens.u64(f + L["frame_instr"], code + L["code_adaptive"] + 2)
        gens.u8(f + owner, 1)
        # what it awaits sits yf_depth words under the stack top (_PyGen_yf)
        gens.u64(f + sp_off, BASE(5) + 0x1F8 + 8 * (1 if minor == 14 else 2))
    gens.u64(0x1F8, g2)
    if moved:
        # the thread runs one plain frame of its own (at gens 0x400), its
        # caller the eval loop's entry shim (owner 3: the C stack)
        f = BASE(5) + 0x400
        gens.u64(0x400 + L["frame_code"], code)
        gens.u64(0x400 + L["frame_instr"], code + L["code_adaptive"] + 2)
        gens.u64(0x400 + L["frame_back"], BASE(5) + 0x500)
        gens.u8(0x500 + owner, 3)
        ts.u64(L["tstate_current_frame"], f)
        ts.u64(TS_LOOP, BASE(3))  # any non-NULL loop
        ts.u64(TS_TASK, t1)
    out = bytes([minor - 14])
    for r in (rt, aoff, ts, interp, tasks, gens, strs, codes):
        out += struct.pack("<H", len(r.b)) + bytes(r.b)
    return out


def main(d):
    os.makedirs(d, exist_ok=True)
    for minor, L in sorted(rows().items()):
        for suffix in ("", "-loop", "-moved"):
            with open(os.path.join(d, "seed-3.%d%s" % (minor, suffix)), "wb") as f:
                f.write(image(L, minor, loop=suffix == "-loop", moved=suffix == "-moved"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/pyasync")

#!/usr/bin/env python3
"""Seeds for fuzz_pywalk: for every CPython layout in src/python/layouts.gen.c
a well-formed thread state -> frame chain -> code objects -> str/bytes image
in the harness's input format (see tests/fuzz/fuzz_pywalk.c), one for each
3.13+ described by its _Py_DebugOffsets, and a chain that loops.
    python3 tests/fuzz/seeds/pywalk_seeds.py tests/fuzz/corpus/pywalk"""
import re
import struct
import sys

GEN = "src/python/layouts.gen.c"
BASE = lambda i: 0x100000 * (i + 1)
PYCODE_TYPE = 0xC0DE000
FRAME_STRIDE, CODE_STRIDE, STR_STRIDE, BYTES_STRIDE = 0x200, 0x200, 0x80, 0x80


def layouts():
    text = open(GEN).read()
    rows = []
    table, dbg = text.split("py_debug_maps[]")
    for m in re.finditer(r"\{\.major = 3, \.minor = (\d+),(.*?)\}", table, re.S):
        row = {k: int(v) for k, v in re.findall(r"\.(\w+) = (-?\d+)", m.group(2))}
        row["minor"] = int(m.group(1))
        rows.append(row)
    dmaps = []
    for m in re.finditer(r"\{\.minor = (\d+),(.*?)\}", dbg, re.S):
        dm = {k: int(v) for k, v in re.findall(r"\.(\w+) = (\d+)", m.group(2))}
        dm["minor"] = int(m.group(1))
        dmaps.append(dm)
    return rows, dmaps


class Region:
    def __init__(self, size):
        self.b = bytearray(size)

    def u64(self, off, v):
        self.b[off:off + 8] = struct.pack("<Q", v)

    def i32(self, off, v):
        self.b[off:off + 4] = struct.pack("<i", v)

    def u8(self, off, v):
        self.b[off] = v


def linetable(L):
    if L["code_adaptive"] >= 0:  # 3.11+ locations: "no column" entries, +1 line each
        return bytes([0xE8 | 1, 0x02, 0xE8 | 1, 0x02, 0xE8 | 1, 0x02])
    return bytes([2, 1, 2, 1, 2, 1])  # lnotab / 3.10 pairs


def image(L, names, cyclic=False, tstate_off=0, region0_prefix=b"", lasti=2,
          firstline=None):
    regs = [Region(max(0x100, tstate_off + 0x200)), Region(FRAME_STRIDE * len(names)),
            Region(CODE_STRIDE * len(names)), Region(STR_STRIDE * (2 * len(names) + 1)),
            Region(BYTES_STRIDE)]
    regs[0].b[:len(region0_prefix)] = region0_prefix
    ts, frames, codes, strs, byts = regs
    f0 = BASE(1)
    # thread state -> first (leaf) frame
    if L["tstate_frame"] >= 0:
        ts.u64(tstate_off + L["tstate_frame"], f0)
    elif L["tstate_current_frame"] >= 0:
        ts.u64(tstate_off + L["tstate_current_frame"], f0)
    else:  # 3.11-3.12: through the _PyCFrame, put after the thread state
        cf = tstate_off + 0x100
        ts.u64(tstate_off + L["tstate_cframe"], BASE(0) + cf)
        ts.u64(cf + L["cframe_current_frame"], f0)
    # the file name string, shared
    def put_str(k, s):
        off = k * STR_STRIDE
        strs.u64(off, 1)  # ob_refcnt: live
        strs.u64(off + L["unicode_length"], len(s))
        strs.i32(off + L["unicode_state"], (1 << 2) | (1 << 5) | (1 << 6))
        d = off + L["unicode_ascii_size"]
        strs.b[d:d + len(s)] = s.encode()
        return BASE(3) + off
    fname = put_str(0, "/srv/app.py")
    lt = linetable(L)
    byts.u64(L["bytes_size"], len(lt))
    byts.b[L["bytes_sval"]:L["bytes_sval"] + len(lt)] = lt
    for i, name in enumerate(names):
        fo, co = i * FRAME_STRIDE, i * CODE_STRIDE
        code = BASE(2) + co
        nxt = BASE(1) + (i + 1) * FRAME_STRIDE if i + 1 < len(names) else 0
        if cyclic and i + 1 == len(names):
            nxt = f0
        frames.u64(fo + L["frame_back"], nxt)
        frames.u64(fo + L["frame_code"], code)
        if L["frame_lasti"] >= 0:
            frames.i32(fo + L["frame_lasti"], lasti)
        else:
            frames.u64(fo + L["frame_instr"], code + L["code_adaptive"] + 2)
        if L["frame_owner"] >= 0:
            frames.u8(fo + L["frame_owner"], 0)
        if L["frame_is_entry"] >= 0:
            frames.u8(fo + L["frame_is_entry"], 1 if i + 1 == len(names) else 0)
        codes.u64(co, 1)  # ob_refcnt: live
        codes.u64(co + 8, PYCODE_TYPE)  # ob_type
        codes.u64(co + L["code_filename"], fname)
        nm = put_str(1 + i, name)
        codes.u64(co + L["code_name"], nm)
        if L["code_qualname"] >= 0:
            codes.u64(co + L["code_qualname"], nm)
        codes.u64(co + L["code_linetable"], BASE(4))
        codes.i32(co + L["code_firstlineno"], firstline or 10 * (i + 1))
    return regs


def encode(pick, depth, tstate_off, regs):
    out = bytes([pick, depth - 1]) + struct.pack("<H", tstate_off)
    for r in regs:
        out += struct.pack("<H", len(r.b)) + bytes(r.b)
    return out


def debug_offsets(L, dmap):
    raw = bytearray(dmap["struct_size"])
    raw[0:8] = b"xdebugpy"
    for k, off in dmap.items():
        if k in ("version", "struct_size", "free_threaded", "minor"):
            continue
        raw[off:off + 8] = struct.pack("<Q", L[k])
    ver = 0x030000F0 | dmap["minor"] << 16
    raw[dmap["version"]:dmap["version"] + 8] = struct.pack("<Q", ver)
    return bytes(raw)


def main(outdir):
    rows, dmaps = layouts()
    names = ["leaf_work", "middle", "main"]
    for pick, L in enumerate(rows):
        data = encode(pick, 64, 0, image(L, names))
        open(f"{outdir}/py3{L['minor']}-three-frames", "wb").write(data)
    for k, dm in enumerate(dmaps):
        L = [r for r in rows if r["minor"] == dm["minor"]][0]
        raw = debug_offsets(L, dm)
        off = (len(raw) + 0xFF) & ~0xFF
        data = encode(len(rows) + k, 64, off, image(L, names, tstate_off=off, region0_prefix=raw))
        open(f"{outdir}/py3{dm['minor']}-debug-offsets", "wb").write(data)
    L311 = [r for r in rows if r["minor"] == 11][0]
    data = encode(rows.index(L311), 128, 0, image(L311, names, cyclic=True))
    open(f"{outdir}/py311-cyclic-chain", "wb").write(data)
    # f_lasti * 2 overflowed int on 3.10 (fixed in walk_frames)
    L310 = [r for r in rows if r["minor"] == 10][0]
    data = encode(rows.index(L310), 64, 0, image(L310, names, lasti=0x7FFFFFFF))
    open(f"{outdir}/crash-py310-lasti-overflow", "wb").write(data)
    # co_firstlineno near INT_MAX plus the line table's deltas
    for L in (rows[0], L310, L311):
        data = encode(rows.index(L), 64, 0, image(L, names, firstline=0x7FFFFFFF))
        open(f"{outdir}/crash-py3{L['minor']}-firstlineno-overflow", "wb").write(data)


main(sys.argv[1])

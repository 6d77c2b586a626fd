/* Line numbers from CPython's line tables (three formats across 3.6-3.15).
 * Tables come from another process: every read is bounds-checked and every
 * loop ends with the table. */
#include <errno.h>
#include <string.h>

#include "layout.h"

/* Lines are summed in 64 bits: co_firstlineno and the deltas come from
 * the target, and no run of deltas can overflow this (the table is at
 * most 1 MiB, each delta under 2^30); what is not a line is -1. */
static int line_ok(int64_t line)
{
	return line >= 0 && line <= INT32_MAX ? (int)line : -1;
}

/* 3.6-3.9: pairs (address increment, signed line increment). */
static int line_lnotab(const uint8_t *t, size_t len, int64_t line, int addr)
{
	int a = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		a += t[i];
		if (a > addr)
			break;
		line += (int8_t)t[i + 1];
	}
	return line_ok(line);
}

/* 3.10: pairs (range length in bytes, signed line delta; -128: none). */
static int line_310(const uint8_t *t, size_t len, int64_t line, int addr)
{
	int start = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		int end = start + t[i];
		int ld = (int8_t)t[i + 1];
		int cur = -1;
		if (ld != -128) {
			line += ld;
			cur = line_ok(line);
		}
		if (addr >= start && addr < end)
			return cur;
		start = end;
	}
	return -1;
}

static int read_varint(const uint8_t *t, size_t len, size_t *i, unsigned *out)
{
	unsigned v = 0, shift = 0;
	for (;;) {
		if (*i >= len || shift > 28)
			return -1;
		uint8_t b = t[(*i)++];
		v |= (unsigned)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	*out = v;
	return 0;
}

static int read_svarint(const uint8_t *t, size_t len, size_t *i, int *out)
{
	unsigned u;
	if (read_varint(t, len, i, &u))
		return -1;
	*out = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
	return 0;
}

/* 3.11+: entries of (code, length in code units) with a line delta whose
 * encoding depends on the code; addr here is in bytes. */
static int line_locations(const uint8_t *t, size_t len, int64_t line, int addr)
{
	int unit = addr / 2, pos = 0;
	size_t i = 0;
	while (i < len) {
		uint8_t first = t[i++];
		if (!(first & 0x80))
			return -1; /* not at an entry start: corrupt */
		int code = (first >> 3) & 15, n = (first & 7) + 1, cur = line_ok(line);
		int delta = 0;
		unsigned skip;
		switch (code) {
		case 15: /* no location */
			cur = -1;
			break;
		case 14: /* long form */
			if (read_svarint(t, len, &i, &delta) || read_varint(t, len, &i, &skip) ||
			    read_varint(t, len, &i, &skip) || read_varint(t, len, &i, &skip))
				return -1;
			line += delta;
			cur = line_ok(line);
			break;
		case 13: /* no column */
			if (read_svarint(t, len, &i, &delta))
				return -1;
			line += delta;
			cur = line_ok(line);
			break;
		case 10:
		case 11:
		case 12: /* one-line form: delta in the code, two column bytes */
			line += code - 10;
			cur = line_ok(line);
			i += 2;
			break;
		default: /* short form: same line, one column byte */
			i += 1;
			break;
		}
		if (unit >= pos && unit < pos + n)
			return cur;
		pos += n;
	}
	return -1;
}

int py_line_for(enum py_linetable_kind kind, const uint8_t *tab, size_t len, int firstlineno,
		int addr)
{
	if (addr < 0)
		return firstlineno;
	switch (kind) {
	case PY_LNOTAB:
		return line_lnotab(tab, len, firstlineno, addr);
	case PY_LINETABLE310:
		return line_310(tab, len, firstlineno, addr);
	case PY_LOCATIONS:
		return line_locations(tab, len, firstlineno, addr);
	}
	return -1;
}

/* Format names and file extensions, the dispatch to one encoder per format,
 * and the helpers the encoders share (labels, escaping). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cgprof/log.h"
#include "encode_priv.h"

static const struct {
	enum cg_format fmt;
	const char *name, *ext;
} formats[] = {
	{CG_FMT_COLLAPSED, "collapsed", ".txt"},
	{CG_FMT_FLAMEGRAPH, "flamegraph", ".svg"},
	{CG_FMT_SPEEDSCOPE, "speedscope", ".speedscope.json"},
	{CG_FMT_PPROF, "pprof", ".pb.gz"},
	{CG_FMT_CODEGURU, "codeguru", ".json"},
};

enum cg_format encode_format_from_name(const char *name)
{
	for (size_t i = 0; name && i < CG_ARRAY_LEN(formats); i++)
		if (!strcmp(name, formats[i].name))
			return formats[i].fmt;
	return CG_FMT_NONE;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcasecmp(s + a - b, suffix);
}

enum cg_format encode_format_from_path(const char *path)
{
	if (!path)
		return CG_FMT_NONE;
	/* Longest suffixes first: .speedscope.json is not a CodeGuru .json. */
	if (ends_with(path, ".speedscope.json") || ends_with(path, ".speedscope"))
		return CG_FMT_SPEEDSCOPE;
	if (ends_with(path, ".txt") || ends_with(path, ".collapsed"))
		return CG_FMT_COLLAPSED;
	if (ends_with(path, ".svg") || ends_with(path, ".html"))
		return CG_FMT_FLAMEGRAPH;
	if (ends_with(path, ".pb.gz") || ends_with(path, ".pprof") || ends_with(path, ".pb"))
		return CG_FMT_PPROF;
	if (ends_with(path, ".json"))
		return CG_FMT_CODEGURU;
	return CG_FMT_NONE;
}

const char *encode_format_name(enum cg_format f)
{
	for (size_t i = 0; i < CG_ARRAY_LEN(formats); i++)
		if (formats[i].fmt == f)
			return formats[i].name;
	return "unknown";
}

const char *encode_format_ext(enum cg_format f)
{
	for (size_t i = 0; i < CG_ARRAY_LEN(formats); i++)
		if (formats[i].fmt == f)
			return formats[i].ext;
	return "";
}

int encode_profile(enum cg_format f, const struct cg_profile *p, const struct cg_encode_opts *o,
		   FILE *out)
{
	struct cg_encode_opts none = {0};
	if (!p || !out)
		return cg_fail(-EINVAL, "nothing to encode");
	if (!o)
		o = &none;
	switch (f) {
	case CG_FMT_COLLAPSED:
		return encode_collapsed(p, o, out);
	case CG_FMT_FLAMEGRAPH:
		return encode_flamegraph(p, o, out);
	case CG_FMT_SPEEDSCOPE:
		return encode_speedscope(p, o, out);
	case CG_FMT_PPROF:
		return encode_pprof(p, o, out);
	case CG_FMT_CODEGURU:
		return encode_codeguru(p, o, out);
	default:
		return cg_fail(-EINVAL, "unknown output format %d", (int)f);
	}
}

int encode_labels_build(const struct cg_profile *p, struct encode_labels *l, bool no_semicolons)
{
	int r = 0;
	memset(l, 0, sizeof(*l));
	l->n = profile_frame_count(p);
	l->off = calloc(l->n ? l->n : 1, sizeof(*l->off));
	if (!l->off) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < l->n; i++) {
		const struct cg_profile_frame *f = profile_frame(p, i);
		size_t start = l->buf.len;
		l->off[i] = start;
		int len = cg_frame_label(NULL, 0, f->name, f->file, f->line);
		r = len < 0 ? -EINVAL : cg_buf_reserve(&l->buf, (size_t)len + 1);
		if (r)
			goto out;
		/* written in place, its NUL kept as the separator */
		cg_frame_label(l->buf.data + start, (size_t)len + 1, f->name, f->file, f->line);
		l->buf.len += (size_t)len + 1;
		if (no_semicolons)
			for (char *c = l->buf.data + start; *c; c++)
				if (*c == ';' || *c == '\n' || *c == '\r')
					*c = ',';
	}
out:
	if (r) {
		encode_labels_free(l);
		return cg_fail(r, "out of memory formatting frame names");
	}
	return 0;
}

void encode_labels_free(struct encode_labels *l)
{
	cg_buf_free(&l->buf);
	free(l->off);
	memset(l, 0, sizeof(*l));
}

/* Length of the valid UTF-8 sequence at s, or 0 if the byte there starts
 * none (text from the target is untrusted; JSON and XML readers reject
 * invalid UTF-8 outright). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

const char *encode_utf8(const char *s, struct cg_buf *scratch)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	while (u[i] && (n = utf8_len(u + i)))
		i += n;
	if (!u[i])
		return s;
	scratch->len = 0;
	for (i = 0; u[i];) {
		n = utf8_len(u + i);
		if (cg_buf_append(scratch, n ? s + i : "?", n ? n : 1))
			return "?";
		i += n ? n : 1;
	}
	return scratch->data;
}

void encode_json_str(FILE *out, const char *s)
{
	const unsigned char *c = (const unsigned char *)s, *run = c;
	fputc('"', out);
	/* Plain text goes out in runs: encoders write millions of bytes. */
	while (*c) {
		size_t n = utf8_len(c);
		if (n && *c != '"' && *c != '\\' && *c >= 0x20) {
			c += n;
			continue;
		}
		fwrite(run, 1, (size_t)(c - run), out);
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputs("\\ufffd", out);
		c += n ? n : 1;
		run = c;
	}
	fwrite(run, 1, (size_t)(c - run), out);
	fputc('"', out);
}

void encode_xml_str(FILE *out, const char *s)
{
	const unsigned char *c = (const unsigned char *)s;
	while (*c) {
		size_t n = utf8_len(c);
		switch (*c) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			/* Control characters are not allowed in XML 1.0. */
			if (*c < 0x20 || !n)
				fputc('?', out);
			else
				fwrite(c, 1, n, out);
		}
		c += n ? n : 1;
	}
}

int encode_check_stream(FILE *out, const char *what)
{
	if (fflush(out) || ferror(out))
		return cg_fail(-EIO, "cannot write the %s profile", what);
	return 0;
}

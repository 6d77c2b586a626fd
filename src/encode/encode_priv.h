/* What the encoders share and nobody else needs: one label per frame,
 * escaping, and each format's entry point for the dispatcher. */
#ifndef CGPROF_ENCODE_PRIV_H
#define CGPROF_ENCODE_PRIV_H

#include <stdio.h>

#include "cgprof/encode.h"
#include "cgprof/profile.h"
#include "cgprof/util.h"

/* The display label of every frame, formatted once per encode by
 * cg_frame_label() (the one format dump prints too). */
struct encode_labels {
	struct cg_buf buf;
	size_t *off; /* label of frame i is buf.data + off[i] */
	uint32_t n;
};
/* no_semicolons: ';' and newlines (frame separators of the collapsed
 * format) become ','. 0 or -ENOMEM (with cg_fail). */
int encode_labels_build(const struct cg_profile *p, struct encode_labels *l, bool no_semicolons);
void encode_labels_free(struct encode_labels *l);
static inline const char *encode_label(const struct encode_labels *l, uint32_t frame)
{
	return l->buf.data + l->off[frame];
}

/* s as a JSON string literal (quotes included); valid UTF-8 from the
 * target is kept as it is, a byte that is not becomes U+FFFD. */
void encode_json_str(FILE *out, const char *s);
/* s if it is valid UTF-8, else a copy in scratch with '?' for every
 * byte that is not (for libraries that insist, like jansson). */
const char *encode_utf8(const char *s, struct cg_buf *scratch);
/* s as XML character data or attribute text. */
void encode_xml_str(FILE *out, const char *s);

/* 0, or -EIO (with cg_fail) if out went bad. */
int encode_check_stream(FILE *out, const char *what);

int encode_collapsed(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out);
int encode_flamegraph(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out);
int encode_speedscope(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out);
int encode_pprof(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out);
int encode_codeguru(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out);

#endif

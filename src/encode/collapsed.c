/* Collapsed stacks ("folded"): one line per distinct stack, frames root
 * first joined by ';', a space, the sample count summed over states. */
#include "encode_priv.h"

struct collapsed_ctx {
	FILE *out;
	const struct encode_labels *l;
};

static int collapsed_stack(const struct cg_profile *p, uint32_t node, const uint32_t *frames,
			   uint32_t depth, void *arg)
{
	struct collapsed_ctx *c = arg;
	/* The session decides which states are recorded; all of them count. */
	uint64_t n = profile_node_total(p, node, true);
	if (!n)
		return 0;
	for (uint32_t i = 0; i < depth; i++) {
		if (i)
			fputc(';', c->out);
		fputs(encode_label(c->l, frames[i]), c->out);
	}
	fprintf(c->out, " %llu\n", (unsigned long long)n);
	return 0;
}

int encode_collapsed(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	struct encode_labels l;
	(void)o;
	int r = encode_labels_build(p, &l, true);
	if (r)
		return r;
	struct collapsed_ctx c = {out, &l};
	r = profile_walk_stacks(p, collapsed_stack, &c);
	encode_labels_free(&l);
	if (r)
		return r;
	return encode_check_stream(out, "collapsed");
}

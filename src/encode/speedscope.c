/* speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * shared frames, and "sampled" profiles, one per thread when stacks have thread roots. */
#include <errno.h>
#include <string.h>

#include "cgprof/log.h"
#include "encode_priv.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"

struct ss_ctx {
	FILE *out;
	uint32_t skip;  /* leading frames not shown (the thread root) */
	bool weights;   /* this pass writes weights, not stacks */
	bool first;
	uint64_t total;
};

static int ss_stack(const struct cg_profile *p, uint32_t node, const uint32_t *frames,
		    uint32_t depth, void *arg)
{
	struct ss_ctx *c = arg;
	uint64_t n = profile_node_total(p, node, true);
	if (!n)
		return 0;
	if (!c->first)
		fputc(',', c->out);
	c->first = false;
	c->total += n;
	if (c->weights) {
		fprintf(c->out, "%llu", (unsigned long long)n);
		return 0;
	}
	fputc('[', c->out);
	for (uint32_t i = c->skip; i < depth; i++)
		fprintf(c->out, "%s%u", i > c->skip ? "," : "", frames[i]);
	fputc(']', c->out);
	return 0;
}

/* One "sampled" profile over the subtree of top (0: all). Two walks, so
 * nothing is buffered: the stacks, then the weights in the same order. */
static int ss_profile(const struct cg_profile *p, uint32_t top, uint32_t skip, const char *name,
		      FILE *out)
{
	struct ss_ctx c = {.out = out, .skip = skip, .first = true};
	fputs("{\"type\":\"sampled\",\"name\":", out);
	encode_json_str(out, name);
	fputs(",\"unit\":\"none\",\"startValue\":0,", out);
	/* endValue must come before we know it when streaming: compute the
	 * total from a counting pass through the weights. */
	fputs("\"samples\":[", out);
	int r = profile_walk_subtree(p, top, ss_stack, &c);
	if (r)
		return r;
	uint64_t total = c.total;
	fputs("],\"weights\":[", out);
	c.weights = true;
	c.first = true;
	r = profile_walk_subtree(p, top, ss_stack, &c);
	fprintf(out, "],\"endValue\":%llu}", (unsigned long long)total);
	return r;
}

int encode_speedscope(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	const char *title = o->title ? o->title : "cgprof";
	const struct cg_profile_node *root = profile_node(p, 0);
	bool per_thread = false;
	int r = 0;

	for (uint32_t c = root->child; c != CG_PROFILE_NONE; c = profile_node(p, c)->sibling)
		if (profile_frame(p, profile_node(p, c)->frame)->kind == CG_FK_THREAD)
			per_thread = true;

	fputs("{\"$schema\":\"" SPEEDSCOPE_SCHEMA "\",\"exporter\":\"cgprof\",\"name\":", out);
	encode_json_str(out, title);
	fputs(",\"activeProfileIndex\":0,\"shared\":{\"frames\":[", out);
	for (uint32_t i = 0; i < profile_frame_count(p); i++) {
		const struct cg_profile_frame *f = profile_frame(p, i);
		fputs(i ? ",{\"name\":" : "{\"name\":", out);
		encode_json_str(out, f->name);
		if (f->file) {
			fputs(",\"file\":", out);
			encode_json_str(out, f->file);
		}
		if (f->line > 0)
			fprintf(out, ",\"line\":%d", (int)f->line);
		fputc('}', out);
	}
	fputs("]},\"profiles\":[", out);
	if (!per_thread) {
		r = ss_profile(p, 0, 0, title, out);
	} else {
		/* Root children are threads (and perhaps "(truncated)"): one
		 * profile each, named after it, its root frame left out. */
		bool first = true;
		for (uint32_t c = root->child; c != CG_PROFILE_NONE && !r;
		     c = profile_node(p, c)->sibling) {
			if (!first)
				fputc(',', out);
			first = false;
			r = ss_profile(p, c, 1, profile_frame(p, profile_node(p, c)->frame)->name, out);
		}
	}
	fputs("]}\n", out);
	if (r)
		return cg_fail(r, "cannot encode the speedscope profile: %s", strerror(-r));
	return encode_check_stream(out, "speedscope");
}

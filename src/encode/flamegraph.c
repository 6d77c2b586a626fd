/* Placeholder until the interactive SVG lands: writes nothing useful. */
#include <errno.h>

#include "cgprof/log.h"
#include "encode_priv.h"

int encode_flamegraph(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	(void)p;
	(void)o;
	(void)out;
	return cg_fail(-ENOTSUP, "the flamegraph format is not available yet");
}

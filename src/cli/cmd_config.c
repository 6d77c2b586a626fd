/* `cgprof config`: the settings in force, each with where it came from,
 * after the files, the environment and the given options. */
#include <stdio.h>
#include <string.h>

#include "cgprof/config.h"
#include "cgprof/log.h"
#include "cli.h"

/* --rate and --max-depth are options of their own (they beat the config
 * in run and attach); here they show as the settings they override. */
static int config_apply_sampling(const struct cli_opts *o, struct cg_config *c)
{
	char v[32];
	int r = 0;
	if (o->rate_set) {
		snprintf(v, sizeof(v), "%g", o->rate_hz);
		r = config_set(c, "rate", v, CG_ORIGIN_OPTION, "--rate");
	}
	if (!r && o->max_depth_set) {
		snprintf(v, sizeof(v), "%u", (unsigned)o->max_depth);
		r = config_set(c, "max_depth", v, CG_ORIGIN_OPTION, "--max-depth");
	}
	if (r)
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
	return r;
}

int cmd_config(struct cli_opts *o)
{
	struct cg_config c;
	int r = cli_load_config(o, &c);
	if (!r)
		r = config_apply_sampling(o, &c);
	if (!r)
		config_print(&c, stdout);
	config_free(&c);
	return r ? CLI_EXIT_USAGE : 0;
}

/* `cgprof config`: the settings in force, each with where it came from,
 * after the files, the environment and the given options. */
#include <stdio.h>

#include "cgprof/config.h"
#include "cli.h"

int cmd_config(struct cli_opts *o)
{
	struct cg_config c;
	int r = cli_load_config(o, &c);
	if (!r)
		config_print(&c, stdout);
	config_free(&c);
	return r ? CLI_EXIT_USAGE : 0;
}

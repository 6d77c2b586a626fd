/* cgprof entry point: pick the subcommand and hand over. The only place
 * that prints a failure and chooses the exit status. */
#include <stdio.h>
#include <string.h>

#include "cgprof/log.h"
#include "cli.h"
#include "commands.h"

#ifndef CGPROF_VERSION
#define CGPROF_VERSION "0.1.0"
#endif

int main(int argc, char **argv)
{
	struct cli_opts o;
	const char *cmd = argc > 1 ? argv[1] : NULL;

	cg_log_init("cgprof", CG_LOG_WARN, 0);
	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		cli_usage(cmd ? stdout : stderr);
		return cmd ? 0 : CLI_EXIT_USAGE;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("cgprof %s\n", CGPROF_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run") || !strcmp(cmd, "attach") || !strcmp(cmd, "dump") ||
	    !strcmp(cmd, "config") || !strcmp(cmd, "upload")) {
		int r = cli_parse(cmd, argc - 1, argv + 1, &o);
		if (r)
			return r == CLI_EXIT_HELP ? 0 : r;
		if (!strcmp(cmd, "run"))
			return cmd_run(&o);
		if (!strcmp(cmd, "attach"))
			return cmd_attach(&o);
		if (!strcmp(cmd, "config"))
			return cmd_config(&o);
		if (!strcmp(cmd, "upload"))
			return cmd_upload(&o);
		return cmd_dump(&o);
	}
	if (!strcmp(cmd, "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "heap"))
		return cmd_heap(argc - 1, argv + 1);
	fprintf(stderr, "cgprof: unknown command '%s' (see cgprof --help)\n", cmd);
	return CLI_EXIT_USAGE;
}

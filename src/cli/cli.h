/* Command-line options shared by run, attach and dump, and the entry
 * points of the sampling commands. */
#ifndef CGPROF_CLI_H
#define CGPROF_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cgprof/encode.h"

#define CLI_MAX_SETTINGS 32

/* Exit codes of cgprof itself (run otherwise exits with the child's). */
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_NOEXEC 127

struct cli_opts {
	double rate_hz;
	bool rate_set;
	bool max_depth_set;     /* --max-depth given: it beats the config */
	double duration_s; /* 0: until the target ends or Ctrl-C */
	const char *output;
	enum cg_format format;
	bool idle;
	bool threads;
	bool subprocesses;
	bool nonblocking;
	bool blocking;
	bool native;
	bool heap;
	bool async_tasks;       /* --async */
	uint32_t max_depth;
	int verbose;
	bool quiet;
	const char *config_file;
	/* upload/spool settings given as options, applied over the config */
	struct {
		const char *key, *value, *option;
	} settings[CLI_MAX_SETTINGS];
	int nsettings;
	/* what is left: the command for run, the PID for attach/dump */
	int argc;
	char **argv;
};

/* Parse argv[1..] for subcommand cmd ("run", "attach", "dump"). 0 or a
 * CLI_EXIT_* code after printing the problem. */
int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o);
void cli_usage(FILE *out);
int cli_parse_pid(const char *s, pid_t *pid);

struct cg_config;
/* Config files, environment, then the options' settings. 0, or negative
 * after printing the one-line reason. */
int cli_load_config(const struct cli_opts *o, struct cg_config *c);

int cmd_run(struct cli_opts *o);
int cmd_config(struct cli_opts *o);
int cmd_upload(struct cli_opts *o);
int cmd_attach(struct cli_opts *o);
int cmd_dump(struct cli_opts *o);

#endif

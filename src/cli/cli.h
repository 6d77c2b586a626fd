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
/* cli_parse(): the command's --help was printed; exit 0. */
#define CLI_EXIT_HELP (-1)

struct cg_sample;
struct cg_sample_stats;

/* A command that watches a run/attach session live (top) instead of
 * writing a profile: with hooks set, the session opens no profile, no
 * reporter and prints no summary. Called from the sampling thread. */
struct cli_hooks {
	void *arg;
	/* The runtime is found; the first round follows. Nonzero aborts. */
	int (*start)(void *arg, pid_t pid, const char *label, const char *runtime_version,
		     double rate_hz);
	/* Every sample, as the sampler delivered it. */
	void (*sample)(void *arg, const struct cg_sample *s);
	/* After each round, with the running totals: false stops sampling. */
	bool (*round)(void *arg, const struct cg_sample_stats *st);
	/* Sampling has ended (start was called). */
	void (*finish)(void *arg);
};

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
	bool native_pause; /* --native-pause: native stacks by ptrace pauses */
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
	const struct cli_hooks *hooks; /* NULL but for top; set after cli_parse */
};

/* Parse argv[1..] for subcommand cmd (run, attach, dump, upload,
 * config). An option the command does not take is refused like an
 * unknown one. 0, CLI_EXIT_HELP, or CLI_EXIT_USAGE after printing the
 * problem. */
int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o);
void cli_usage(FILE *out);
int cli_parse_pid(const char *s, pid_t *pid);

/* Output files (output.c). A path is checked before a target is opened or
 * a command started, so a profile is never lost at the end: 0, or
 * negative with cg_fail() naming the user's path. "-" is stdout. */
struct cli_output {
	FILE *f;
	const char *path;
	char tmp[4200];
};
int cli_output_check(const char *path);
int cli_output_open(struct cli_output *w, const char *path);
/* Commit (r == 0: rename into place) or discard; returns r or the first
 * write error. */
int cli_output_close(struct cli_output *w, int r);

struct cg_config;
/* Config files, environment, then the options' settings. 0, or negative
 * after printing the one-line reason. */
int cli_load_config(const struct cli_opts *o, struct cg_config *c);

int cmd_run(struct cli_opts *o);
int cmd_config(struct cli_opts *o);
int cmd_upload(struct cli_opts *o);
int cmd_attach(struct cli_opts *o);
int cmd_dump(struct cli_opts *o);
/* `cgprof top [options] PID | -- COMMAND...` (argv[0] = "top"). */
int cmd_top(int argc, char **argv);

#endif

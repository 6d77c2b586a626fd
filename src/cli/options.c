/* Parsing the options of run, attach and dump, and the --help text (kept
 * in step with man/cgprof.1; a test checks both list the same options). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/config.h"
#include "cgprof/log.h"
#include "cgprof/util.h"
#include "cli.h"

enum {
	OPT_IDLE = 256,
	OPT_THREADS,
	OPT_SUBPROCESSES,
	OPT_NONBLOCKING,
	OPT_BLOCKING,
	OPT_NATIVE,
	OPT_NATIVE_PAUSE,
	OPT_HEAP,
	OPT_ASYNC,
	OPT_MAX_DEPTH,
	OPT_CONFIG,
	OPT_SETTING, /* a config setting: the table row says which */
};

/* The commands an option applies to: any other command refuses it with
 * the usage error, so no option is ever silently ignored. */
enum {
	CMD_RUN = 1 << 0,
	CMD_ATTACH = 1 << 1,
	CMD_DUMP = 1 << 2,
	CMD_UPLOAD = 1 << 3,
	CMD_CONFIG = 1 << 4,
	CMD_TOP = 1 << 5, /* top PID (top -- COMMAND parses as run) */
};
#define CMD_SAMPLE (CMD_RUN | CMD_ATTACH)
#define CMD_LIVE (CMD_SAMPLE | CMD_TOP) /* sampling options top takes too */
#define CMD_ALL (CMD_SAMPLE | CMD_DUMP | CMD_UPLOAD | CMD_CONFIG | CMD_TOP)

enum opt_section { SEC_SAMPLING, SEC_UPLOAD, SEC_GENERAL };

/* Every option of run, attach, dump, upload and config: the one table the
 * parser, the --help text and the per-command help are made from. */
static const struct cli_option {
	const char *name;
	int val;          /* short option letter, or OPT_* */
	const char *arg;  /* NULL: a flag; else the value's name in --help */
	unsigned cmds;    /* CMD_* it applies to */
	enum opt_section section;
	const char *key;  /* OPT_SETTING: the config key it sets */
	const char *help; /* "\n" continues on the next line */
} options[] = {
	{"rate", 'r', "HZ", CMD_LIVE | CMD_CONFIG, SEC_SAMPLING, NULL,
	 "samples per second (default 100; 20 or 5 for a JVM\n"
	 "sampled with thread dumps, the fallback)"},
	{"duration", 'd', "SECONDS", CMD_LIVE, SEC_SAMPLING, NULL,
	 "stop after this long (default: until the target exits)"},
	{"output", 'o', "FILE", CMD_SAMPLE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "write the profile (dump: the stacks) here ('-' for stdout)"},
	{"format", 'f', "FORMAT", CMD_SAMPLE, SEC_SAMPLING, NULL,
	 "collapsed, flamegraph, speedscope, pprof or codeguru\n"
	 "(default from the output extension, else flamegraph)"},
	{"idle", OPT_IDLE, NULL, CMD_LIVE, SEC_SAMPLING, NULL,
	 "also count threads that are not running"},
	{"threads", OPT_THREADS, NULL, CMD_SAMPLE, SEC_SAMPLING, NULL,
	 "root each stack at its thread"},
	{"subprocesses", OPT_SUBPROCESSES, NULL, CMD_LIVE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "also profile (dump: print) child processes"},
	{"blocking", OPT_BLOCKING, NULL, CMD_LIVE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "pause each Python thread while its stack is read\n"
	 "(costs the target; shifts samples onto system calls)"},
	{"nonblocking", OPT_NONBLOCKING, NULL, CMD_LIVE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "never pause the target (by default a Python thread\n"
	 "whose stack tears unpaused is read paused; this\n"
	 "drops those reads instead)"},
	{"native", OPT_NATIVE, NULL, CMD_LIVE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "include native (C) frames, unwound with libunwind\n"
	 "from the kernel's per-thread CPU-clock samples"},
	{"native-pause", OPT_NATIVE_PAUSE, NULL, CMD_LIVE, SEC_SAMPLING, NULL,
	 "read native stacks by pausing each thread instead\n"
	 "(biased toward system calls; the fallback when\n"
	 "perf events are not allowed)"},
	{"async", OPT_ASYNC, NULL, CMD_LIVE | CMD_DUMP, SEC_SAMPLING, NULL,
	 "CPython 3.14+: root event-loop stacks at their asyncio\n"
	 "task (with --idle, suspended tasks too); dump --async\n"
	 "lists every task, its await chain and its waiters"},
	{"heap", OPT_HEAP, NULL, CMD_SAMPLE, SEC_SAMPLING, NULL,
	 "record a JVM heap summary per reporting window"},
	{"max-depth", OPT_MAX_DEPTH, "N", CMD_LIVE | CMD_DUMP | CMD_CONFIG, SEC_SAMPLING, NULL,
	 "deepest stack kept (default 2048)"},
	{"profiling-group", OPT_SETTING, "NAME", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD,
	 "profiling_group", "upload to this profiling group (upload: only its batches)"},
	{"region", OPT_SETTING, "REGION", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD, "region",
	 "AWS region of the profiling group"},
	{"endpoint", OPT_SETTING, "URL", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD,
	 "endpoint", "profiling endpoint (default: the region's)"},
	{"reporting-interval", OPT_SETTING, "SECONDS", CMD_SAMPLE | CMD_CONFIG, SEC_UPLOAD,
	 "reporting_interval", "length of a reporting window (default 300)"},
	{"ca-file", OPT_SETTING, "FILE", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD, "ca_file",
	 "trust this CA bundle for the endpoint"},
	{"pin-sha256", OPT_SETTING, "BASE64", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD,
	 "pin_sha256", "require this server public key (sha256, base64)"},
	{"no-upload", OPT_SETTING, NULL, CMD_SAMPLE | CMD_CONFIG, SEC_UPLOAD, "no_upload",
	 "write batches to the spool only"},
	{"spool", OPT_SETTING, "DIR", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD, "spool_dir",
	 "spool directory"},
	{"spool-key", OPT_SETTING, "FILE", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD,
	 "spool_key", "encrypt spooled batches with this 32-byte key"},
	{"spool-max-mb", OPT_SETTING, "MB", CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD,
	 "spool_max_mb", "spool size bound; the oldest batches go first"},
	{"config", OPT_CONFIG, "FILE", CMD_LIVE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD, NULL,
	 "read this config file instead of ~/.config/cgprof/config"},
	{"syslog", OPT_SETTING, NULL, CMD_SAMPLE | CMD_UPLOAD | CMD_CONFIG, SEC_UPLOAD, "syslog",
	 "log to syslog instead of stderr (upload from cron)"},
	{"verbose", 'v', NULL, CMD_ALL & ~CMD_CONFIG, SEC_GENERAL, NULL,
	 "more detail on stderr (repeat for debug)"},
	{"quiet", 'q', NULL, CMD_SAMPLE | CMD_UPLOAD, SEC_GENERAL, NULL, "no summary line"},
	{"help", 'h', NULL, CMD_ALL, SEC_GENERAL, NULL, "this help"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const struct {
	const char *name, *usage;
	unsigned bit;
} commands[] = {
	{"run", "run [options] -- COMMAND [ARGS...]", CMD_RUN},
	{"attach", "attach [options] PID", CMD_ATTACH},
	{"dump", "dump [options] PID", CMD_DUMP},
	{"top", "top [options] PID | top [options] -- COMMAND...", CMD_TOP},
	{"upload", "upload [options]", CMD_UPLOAD},
	{"config", "config [options]", CMD_CONFIG},
};

static unsigned command_bit(const char *cmd)
{
	for (size_t i = 0; i < CG_ARRAY_LEN(commands); i++)
		if (!strcmp(commands[i].name, cmd))
			return commands[i].bit;
	return 0;
}

/* One option as --help shows it: names from column 3, the text from
 * column 30 (on the next line when the names are longer). */
static void print_option(FILE *out, const struct cli_option *op)
{
	char names[64];
	int col = 30;
	if (op->val < 256)
		snprintf(names, sizeof(names), "  -%c, --%s%s%s", op->val, op->name,
			 op->arg ? " " : "", op->arg ? op->arg : "");
	else
		snprintf(names, sizeof(names), "      --%s%s%s", op->name, op->arg ? " " : "",
			 op->arg ? op->arg : "");
	fputs(names, out);
	if ((int)strlen(names) >= col - 1)
		fprintf(out, "\n%*s", col - 1, "");
	else
		fprintf(out, "%*s", col - (int)strlen(names) - 1, "");
	for (const char *h = op->help; *h; h++) {
		fputc(*h, out);
		if (*h == '\n')
			fprintf(out, "%*s", col - 1, "");
	}
	fputc('\n', out);
}

static void print_options(FILE *out, unsigned cmds, enum opt_section sec)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if ((options[i].cmds & cmds) && options[i].section == sec)
			print_option(out, &options[i]);
}

void cli_usage(FILE *out)
{
	fputs("usage: cgprof <command> [options]\n"
	      "\n"
	      "Sampling profiler for Python (CPython 3.6-3.15) and Java (HotSpot) processes.\n"
	      "\n"
	      "commands:\n"
	      "  run [options] -- COMMAND [ARGS...]  start COMMAND and profile it; exit with its status\n"
	      "  attach [options] PID                profile a running process until Ctrl-C or --duration\n"
	      "  dump [options] PID                  print every thread's stack once, idle ones too\n"
	      "  top [options] PID | -- COMMAND...   live view of the hottest functions (q quits)\n"
	      "  heap [--format text|json] [--top N] PID\n"
	      "                                      JVM heap summary (class histogram)\n"
	      "  upload [options]                    send the spooled profiles (for cron)\n"
	      "  config [options]                    print the effective settings and their origin\n"
	      "\n"
	      "sampling options (run, attach; dump takes -o, --subprocesses, --blocking,\n"
	      "--nonblocking, --native, --async, --max-depth; top takes those but -o):\n",
	      out);
	print_options(out, CMD_ALL, SEC_SAMPLING);
	fputs("\ntop options:\n"
	      "      --delay SECONDS        refresh the view this often (default 1)\n"
	      "      --window SECONDS       span of the recent view, the w key (default 10)\n"
	      "      --once, --format text  no screen: print one plain snapshot and exit\n"
	      "      --sort COLUMN          own, total, own-time, total-time or name\n",
	      out);
	fputs("\nupload options (run, attach, upload, config):\n", out);
	print_options(out, CMD_ALL, SEC_UPLOAD);
	fputs("\ngeneral options:\n", out);
	print_options(out, CMD_ALL, SEC_GENERAL);
	fputs("  -V, --version              print the version\n"
	      "\n"
	      "An option a command does not take is refused (exit 2); `cgprof COMMAND --help`\n"
	      "lists the ones it takes. See cgprof(1) and cgprof.conf(5).\n",
	      out);
}

/* `cgprof COMMAND --help`: that command's options only. */
static void command_usage(FILE *out, const char *cmd)
{
	unsigned bit = command_bit(cmd);
	for (size_t i = 0; i < CG_ARRAY_LEN(commands); i++)
		if (commands[i].bit == bit)
			fprintf(out, "usage: cgprof %s\n\noptions:\n", commands[i].usage);
	print_options(out, bit, SEC_SAMPLING);
	print_options(out, bit, SEC_UPLOAD);
	print_options(out, bit, SEC_GENERAL);
}

int cli_parse_pid(const char *s, pid_t *pid)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

static int parse_number(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "cgprof: invalid %s '%s' (expected a number from %g to %g)\n", opt, s,
			lo, hi);
		return CLI_EXIT_USAGE;
	}
	*out = v;
	return 0;
}

/* getopt's table from ours; the index of each row is its longindex. */
static void build_longopts(struct option *lo, char *shortopts, size_t nshort)
{
	size_t k = 0;
	shortopts[k++] = '+'; /* stop at the first non-option: the child's own */
	shortopts[k++] = ':';
	for (size_t i = 0; i < NOPTIONS; i++) {
		lo[i] = (struct option){options[i].name,
					options[i].arg ? required_argument : no_argument, NULL,
					options[i].val};
		if (options[i].val < 256 && k + 3 < nshort) {
			shortopts[k++] = (char)options[i].val;
			if (options[i].arg)
				shortopts[k++] = ':';
		}
	}
	lo[NOPTIONS] = (struct option){0};
	shortopts[k] = '\0';
}

/* The row getopt matched: by longindex for a long option, else by letter. */
static const struct cli_option *matched_option(int c, int longindex)
{
	if (longindex >= 0)
		return &options[longindex];
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].val == c)
			return &options[i];
	return NULL;
}

/* Apply one option the command takes. 0, or CLI_EXIT_USAGE after saying
 * why its value is wrong. */
static int apply_option(const struct cli_option *op, const char *arg, struct cli_opts *o)
{
	double v;
	switch (op->val) {
	case 'r':
		o->rate_set = true;
		return parse_number("--rate", arg, 0.1, 100000, &o->rate_hz);
	case 'd':
		return parse_number("--duration", arg, 0.001, 1e9, &o->duration_s);
	case 'o':
		o->output = arg;
		return 0;
	case 'f':
		o->format = encode_format_from_name(arg);
		if (o->format != CG_FMT_NONE)
			return 0;
		fprintf(stderr, "cgprof: unknown format '%s' (collapsed, flamegraph, speedscope, "
				"pprof, codeguru)\n", arg);
		return CLI_EXIT_USAGE;
	case OPT_IDLE:
		o->idle = true;
		return 0;
	case OPT_THREADS:
		o->threads = true;
		return 0;
	case OPT_SUBPROCESSES:
		o->subprocesses = true;
		return 0;
	case OPT_NONBLOCKING:
		o->nonblocking = true;
		return 0;
	case OPT_BLOCKING:
		o->blocking = true;
		return 0;
	case OPT_NATIVE:
		o->native = true;
		return 0;
	case OPT_NATIVE_PAUSE:
		o->native = true;
		o->native_pause = true;
		return 0;
	case OPT_ASYNC:
		o->async_tasks = true;
		return 0;
	case OPT_HEAP:
		o->heap = true;
		return 0;
	case OPT_MAX_DEPTH:
		if (parse_number("--max-depth", arg, 1, 65536, &v))
			return CLI_EXIT_USAGE;
		o->max_depth = (uint32_t)v;
		o->max_depth_set = true;
		return 0;
	case OPT_CONFIG:
		o->config_file = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case OPT_SETTING:
		if (o->nsettings == CLI_MAX_SETTINGS) {
			fprintf(stderr, "cgprof: more than %d settings given as options\n",
				CLI_MAX_SETTINGS);
			return CLI_EXIT_USAGE;
		}
		o->settings[o->nsettings].key = op->key;
		o->settings[o->nsettings].value = op->arg ? arg : "true";
		o->settings[o->nsettings].option = op->name;
		o->nsettings++;
		return 0;
	}
	return CLI_EXIT_USAGE;
}

/* What is left after the options: a command for run, one PID for attach
 * and dump, nothing for config and upload. */
static int check_operands(const char *cmd, const struct cli_opts *o)
{
	if (!strcmp(cmd, "config") || !strcmp(cmd, "upload")) {
		if (!o->argc)
			return 0;
		fprintf(stderr, "cgprof: %s takes no arguments, only options\n", cmd);
	} else if (!strcmp(cmd, "run")) {
		if (o->argc >= 1)
			return 0;
		fprintf(stderr, "cgprof: run needs a command: cgprof run [options] -- COMMAND [ARGS...]\n");
	} else {
		if (o->argc == 1)
			return 0;
		fprintf(stderr, "cgprof: %s needs exactly one PID: cgprof %s [options] PID\n", cmd, cmd);
	}
	return CLI_EXIT_USAGE;
}

int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o)
{
	struct option longopts[NOPTIONS + 1];
	char shortopts[2 * NOPTIONS + 3];
	unsigned bit = command_bit(cmd);
	int c, longindex;

	build_longopts(longopts, shortopts, sizeof(shortopts));
	memset(o, 0, sizeof(*o));
	o->rate_hz = 100;
	o->format = CG_FMT_NONE;
	o->max_depth = 2048;
	optind = 1;
	opterr = 0;
	/* "+": stop at the first non-option, so `run -- python -X ...` and
	 * `run python -v` both leave the child's options alone. */
	while ((longindex = -1, c = getopt_long(argc, argv, shortopts, longopts, &longindex)) != -1) {
		if (c == ':') {
			fprintf(stderr, "cgprof: option '%s' needs a value\n", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		const struct cli_option *op = c == '?' ? NULL : matched_option(c, longindex);
		if (!op) {
			fprintf(stderr, "cgprof: unknown option '%s' for %s (see cgprof --help)\n",
				argv[optind - 1], cmd);
			return CLI_EXIT_USAGE;
		}
		if (!(op->cmds & bit)) {
			fprintf(stderr, "cgprof: option '--%s' does not apply to %s (see cgprof %s "
					"--help)\n", op->name, cmd, cmd);
			return CLI_EXIT_USAGE;
		}
		if (op->val == 'h') {
			command_usage(stdout, cmd);
			return CLI_EXIT_HELP;
		}
		int r = apply_option(op, optarg, o);
		if (r)
			return r;
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	if (check_operands(cmd, o))
		return CLI_EXIT_USAGE;
	if (o->blocking && o->nonblocking) {
		fprintf(stderr, "cgprof: --blocking and --nonblocking contradict each other\n");
		return CLI_EXIT_USAGE;
	}
	if (o->format == CG_FMT_NONE && o->output && strcmp(o->output, "-"))
		o->format = encode_format_from_path(o->output);
	if (o->format == CG_FMT_NONE)
		o->format = CG_FMT_FLAMEGRAPH;
	return 0;
}

int cli_load_config(const struct cli_opts *o, struct cg_config *c)
{
	config_init(c);
	int r = config_load(c, NULL, o->config_file);
	for (int i = 0; !r && i < o->nsettings; i++) {
		char where[64];
		snprintf(where, sizeof(where), "--%s", o->settings[i].option);
		r = config_set(c, o->settings[i].key, o->settings[i].value, CG_ORIGIN_OPTION, where);
	}
	if (r)
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
	return r;
}

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
#include "cli.h"

void cli_usage(FILE *out)
{
	fputs("usage: cgprof <command> [options]\n"
	      "\n"
	      "Sampling profiler for Python (CPython 3.6-3.13) and Java (HotSpot) processes.\n"
	      "\n"
	      "commands:\n"
	      "  run [options] -- COMMAND [ARGS...]  start COMMAND and profile it; exit with its status\n"
	      "  attach [options] PID                profile a running process until Ctrl-C or --duration\n"
	      "  dump [options] PID                  print every thread's stack once\n"
	      "  heap [--format text|json] [--top N] PID\n"
	      "                                      JVM heap summary (class histogram)\n"
	      "  upload [options]                    send the spooled profiles (for cron)\n"
	      "  config [options]                    print the effective settings and their origin\n"
	      "\n"
	      "sampling options (run, attach):\n"
	      "  -r, --rate HZ              samples per second (default 100; 20 or 5 for a JVM\n"
	      "                             sampled with thread dumps, the fallback)\n"
	      "  -d, --duration SECONDS     stop after this long (default: until the target exits)\n"
	      "  -o, --output FILE          write the profile here ('-' for stdout)\n"
	      "  -f, --format FORMAT        collapsed, flamegraph, speedscope, pprof or codeguru\n"
	      "                             (default from the output extension, else flamegraph)\n"
	      "      --idle                 also count threads that are not running\n"
	      "      --threads              root each stack at its thread\n"
	      "      --subprocesses         also profile child processes\n"
	      "      --nonblocking          never pause the target (stacks may be torn)\n"
	      "      --native               include native (C) frames, unwound with libunwind\n"
	      "      --heap                 record a JVM heap summary per reporting window\n"
	      "      --max-depth N          deepest stack kept (default 2048)\n"
	      "\n"
	      "upload options (run, attach, upload, config):\n"
	      "      --profiling-group NAME upload to this profiling group\n"
	      "      --region REGION        AWS region of the profiling group\n"
	      "      --endpoint URL         profiling endpoint (default: the region's)\n"
	      "      --reporting-interval SECONDS\n"
	      "                             length of a reporting window (default 300)\n"
	      "      --ca-file FILE         trust this CA bundle for the endpoint\n"
	      "      --pin-sha256 BASE64    require this server public key (sha256, base64)\n"
	      "      --no-upload            write batches to the spool only\n"
	      "      --spool DIR            spool directory\n"
	      "      --spool-key FILE       encrypt spooled batches with this 32-byte key\n"
	      "      --spool-max-mb MB      spool size bound; the oldest batches go first\n"
	      "      --config FILE          read this config file instead of ~/.config/cgprof/config\n"
	      "      --syslog               log to syslog instead of stderr (upload from cron)\n"
	      "\n"
	      "general options:\n"
	      "  -v, --verbose              more detail on stderr (repeat for debug)\n"
	      "  -q, --quiet                no summary line\n"
	      "  -h, --help                 this help\n"
	      "  -V, --version              print the version\n"
	      "\n"
	      "See cgprof(1) and cgprof.conf(5).\n",
	      out);
}

enum {
	OPT_IDLE = 256,
	OPT_THREADS,
	OPT_SUBPROCESSES,
	OPT_NONBLOCKING,
	OPT_NATIVE,
	OPT_HEAP,
	OPT_MAX_DEPTH,
	OPT_CONFIG,
	OPT_SETTING, /* + index into setting_opts */
};

/* Options that are config settings: option name -> config key. */
static const struct {
	const char *option, *key;
	bool flag;
} setting_opts[] = {
	{"profiling-group", "profiling_group", false},
	{"region", "region", false},
	{"endpoint", "endpoint", false},
	{"reporting-interval", "reporting_interval", false},
	{"ca-file", "ca_file", false},
	{"pin-sha256", "pin_sha256", false},
	{"no-upload", "no_upload", true},
	{"spool", "spool_dir", false},
	{"spool-key", "spool_key", false},
	{"spool-max-mb", "spool_max_mb", false},
	{"syslog", "syslog", true},
};

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

int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o)
{
	struct option longopts[64] = {
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"idle", no_argument, NULL, OPT_IDLE},
		{"threads", no_argument, NULL, OPT_THREADS},
		{"subprocesses", no_argument, NULL, OPT_SUBPROCESSES},
		{"nonblocking", no_argument, NULL, OPT_NONBLOCKING},
		{"native", no_argument, NULL, OPT_NATIVE},
		{"heap", no_argument, NULL, OPT_HEAP},
		{"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
	};
	size_t nl = 15;
	for (size_t i = 0; i < sizeof(setting_opts) / sizeof(setting_opts[0]); i++)
		longopts[nl++] = (struct option){setting_opts[i].option,
						 setting_opts[i].flag ? no_argument : required_argument,
						 NULL, OPT_SETTING + (int)i};
	longopts[nl] = (struct option){0};

	memset(o, 0, sizeof(*o));
	o->rate_hz = 100;
	o->format = CG_FMT_NONE;
	o->max_depth = 2048;

	optind = 1;
	opterr = 0;
	int c;
	double v;
	/* "+": stop at the first non-option, so `run -- python -X ...` and
	 * `run python -v` both leave the child's options alone. */
	while ((c = getopt_long(argc, argv, "+:r:d:o:f:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_number("--rate", optarg, 0.1, 100000, &o->rate_hz))
				return CLI_EXIT_USAGE;
			o->rate_set = true;
			break;
		case 'd':
			if (parse_number("--duration", optarg, 0.001, 1e9, &o->duration_s))
				return CLI_EXIT_USAGE;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'f':
			o->format = encode_format_from_name(optarg);
			if (o->format == CG_FMT_NONE) {
				fprintf(stderr,
					"cgprof: unknown format '%s' (collapsed, flamegraph, speedscope, "
					"pprof, codeguru)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_IDLE:
			o->idle = true;
			break;
		case OPT_THREADS:
			o->threads = true;
			break;
		case OPT_SUBPROCESSES:
			o->subprocesses = true;
			break;
		case OPT_NONBLOCKING:
			o->nonblocking = true;
			break;
		case OPT_NATIVE:
			o->native = true;
			break;
		case OPT_HEAP:
			o->heap = true;
			break;
		case OPT_MAX_DEPTH:
			if (parse_number("--max-depth", optarg, 1, 65536, &v))
				return CLI_EXIT_USAGE;
			o->max_depth = (uint32_t)v;
			o->max_depth_set = true;
			break;
		case OPT_CONFIG:
			o->config_file = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			cli_usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "cgprof: option '%s' needs a value\n", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		case '?':
			fprintf(stderr, "cgprof: unknown option '%s' for %s (see cgprof --help)\n",
				argv[optind - 1], cmd);
			return CLI_EXIT_USAGE;
		default:
			if (c >= OPT_SETTING && o->nsettings < CLI_MAX_SETTINGS) {
				int i = c - OPT_SETTING;
				o->settings[o->nsettings].key = setting_opts[i].key;
				o->settings[o->nsettings].value =
					setting_opts[i].flag ? "true" : optarg;
				o->settings[o->nsettings].option = setting_opts[i].option;
				o->nsettings++;
			}
			break;
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;

	if (!strcmp(cmd, "config") || !strcmp(cmd, "upload")) {
		if (o->argc) {
			fprintf(stderr, "cgprof: %s takes no arguments, only options\n", cmd);
			return CLI_EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "run")) {
		if (o->argc < 1) {
			fprintf(stderr, "cgprof: run needs a command: cgprof run [options] -- COMMAND [ARGS...]\n");
			return CLI_EXIT_USAGE;
		}
	} else {
		if (o->argc != 1) {
			fprintf(stderr, "cgprof: %s needs exactly one PID: cgprof %s [options] PID\n", cmd,
				cmd);
			return CLI_EXIT_USAGE;
		}
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
		fprintf(stderr, "cgprof: %s\n", cg_lasterr()[0] ? cg_lasterr() : strerror(-r));
	return r;
}

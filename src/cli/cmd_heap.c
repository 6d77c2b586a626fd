/* `cgprof heap PID`: a JVM's class histogram (class, instances, bytes),
 * largest first, as a text table or JSON; gathered without a full GC. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/jvm.h"
#include "cgprof/log.h"
#include "cgprof/target.h"
#include "cgprof/util.h"
#include "cli.h"
#include "commands.h"

#define HEAP_EXIT_ERROR CLI_EXIT_ERROR
#define HEAP_EXIT_USAGE CLI_EXIT_USAGE

static void heap_usage(FILE *out)
{
	fputs("usage: cgprof heap [--format text|json] [--top N] PID\n"
	      "  print the JVM's heap histogram (class, instances, bytes), largest first;\n"
	      "  no full GC is forced, so unreachable objects not yet collected count too\n"
	      "  -f, --format text|json   output format (default text)\n"
	      "  -n, --top N              only the N largest classes (default all)\n",
	      out);
}

static int heap_print_text(const struct jvm_heap *h, size_t n, pid_t pid)
{
	printf("%10s %14s  %s\n", "instances", "bytes", "class");
	for (size_t i = 0; i < n; i++)
		printf("%10" PRIu64 " %14" PRIu64 "  %s\n", h->entries[i].instances,
		       h->entries[i].bytes, h->entries[i].name);
	if (n < h->n)
		printf("... %zu more classes\n", h->n - n);
	printf("%10" PRIu64 " %14" PRIu64 "  total (%zu classes, JVM %d)\n", h->total_instances,
	       h->total_bytes, h->n, (int)pid);
	return fflush(stdout) ? -EIO : 0;
}

static int heap_print_json(const struct jvm_heap *h, size_t n, pid_t pid)
{
	struct cg_buf b = {0};
	int r = jvm_heap_to_json(h, pid, n, &b);
	if (!r && (fwrite(b.data, 1, b.len, stdout) != b.len || fputc('\n', stdout) == EOF ||
		   fflush(stdout)))
		r = -EIO;
	cg_buf_free(&b);
	return r;
}

struct heap_args {
	bool json;
	size_t top; /* 0: all */
	int verbose;
	pid_t pid;
};

/* 0, CLI_EXIT_HELP after --help, or HEAP_EXIT_USAGE after saying why. */
static int heap_parse_args(int argc, char **argv, struct heap_args *a)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"top", required_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:n:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "cgprof: heap: unknown format '%s' (text or json)\n", optarg);
				return HEAP_EXIT_USAGE;
			}
			a->json = !strcmp(optarg, "json");
			break;
		case 'n': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > INT_MAX) {
				fprintf(stderr, "cgprof: heap: --top needs a positive number, not '%s'\n",
					optarg);
				return HEAP_EXIT_USAGE;
			}
			a->top = (size_t)v;
			break;
		}
		case 'v':
			a->verbose++;
			break;
		case 'h':
			heap_usage(stdout);
			return CLI_EXIT_HELP;
		default:
			if (c == ':')
				fprintf(stderr, "cgprof: option '%s' needs a value\n", argv[optind - 1]);
			else
				fprintf(stderr, "cgprof: unknown option '%s' for heap (see cgprof heap "
						"--help)\n", argv[optind - 1]);
			return HEAP_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "cgprof: heap needs exactly one PID: cgprof heap [--format text|json] "
				"[--top N] PID\n");
		return HEAP_EXIT_USAGE;
	}
	if (cli_parse_pid(argv[optind], &a->pid)) {
		fprintf(stderr, "cgprof: invalid PID '%s'\n", argv[optind]);
		return HEAP_EXIT_USAGE;
	}
	return 0;
}

int cmd_heap(int argc, char **argv)
{
	struct heap_args a;
	struct target *t = NULL;
	struct jvm_heap h = {0};
	int r = heap_parse_args(argc, argv, &a);
	if (r)
		return r == CLI_EXIT_HELP ? 0 : r;
	pid_t pid = a.pid;

	cg_log_set_level(a.verbose >= 2 ? CG_LOG_DEBUG : a.verbose ? CG_LOG_INFO : CG_LOG_WARN);

	if ((r = target_open(pid, &t)))
		goto out;
	r = jvm_sampler_ops.probe(t);
	if (r == -ENOENT) {
		/* Not (yet) a JVM: say what it is instead. */
		struct target_maps m = {0};
		bool jvm = target_maps_read(t, &m) == 0 && target_maps_find(&m, "/libjvm.so");
		target_maps_free(&m);
		char exe[256] = "?";
		target_exe(t, exe, sizeof(exe));
		r = jvm ? cg_fail(-EAGAIN, "JVM %d is still starting up; try again", (int)pid)
			: cg_fail(-ENOENT, "process %d is not a Java process (it runs %s)", (int)pid,
				  exe);
	}
	if (r)
		goto out;
	if ((r = jvm_heap_histogram(t, &h)))
		goto out;
	size_t n = a.top && a.top < h.n ? a.top : h.n;
	r = a.json ? heap_print_json(&h, n, pid) : heap_print_text(&h, n, pid);
	if (r)
		cg_fail(r, "cannot write the heap histogram: %s", strerror(-r));
out:
	jvm_heap_free(&h);
	if (t)
		target_close(t);
	if (r) {
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
		return HEAP_EXIT_ERROR;
	}
	return 0;
}

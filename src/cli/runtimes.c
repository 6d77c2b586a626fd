/* Which runtime a target runs: try each sampler's probe, in order, and
 * explain what was found when none matches. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cgprof/util.h"
#include "runtimes.h"

/* Weak while the runtimes are built in parallel: a missing one is simply
 * not offered. The binary links objects (not an archive) so a present
 * one is always pulled in. */
extern const struct cg_sampler_ops python_sampler_ops __attribute__((weak));
extern const struct cg_sampler_ops jvm_sampler_ops __attribute__((weak));
extern const struct cg_sampler_ops native_sampler_ops __attribute__((weak));

int runtime_probe(struct target *t, bool native, const struct cg_sampler_ops **out)
{
	const struct cg_sampler_ops *order[] = {&python_sampler_ops, &jvm_sampler_ops};
	int last = -ENOENT;

	for (size_t i = 0; i < CG_ARRAY_LEN(order); i++) {
		if (!order[i])
			continue;
		int r = order[i]->probe(t);
		if (r == 0) {
			*out = order[i];
			return 0;
		}
		if (r != -ENOENT)
			return r; /* e.g. unsupported version: final */
	}
	/* --native on an interpreter that has not loaded its runtime yet
	 * (run, just after exec) must wait for it, not fall back to native. */
	char exe[256] = "";
	target_exe(t, exe, sizeof(exe));
	const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	if (native && &native_sampler_ops && !strstr(base, "python") && strcmp(base, "java")) {
		*out = &native_sampler_ops;
		return 0;
	}
	return last;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

void runtime_label(struct target *t, char *buf, size_t n)
{
	char argv[4096];
	int len = target_argv(t, argv, sizeof(argv));
	if (len <= 0 || !argv[0]) {
		char exe[256] = "?";
		target_exe(t, exe, sizeof(exe));
		snprintf(buf, n, "%s", base_name(exe));
		return;
	}
	argv[len] = '\0';
	snprintf(buf, n, "%s", base_name(argv));
	/* Options are skipped; the first other argument is kept only when it
	 * names a script or a jar, and ends the search either way (it may be
	 * an option's value). */
	for (const char *a = argv + strlen(argv) + 1; a < argv + len; a += strlen(a) + 1) {
		if (a[0] == '-')
			continue;
		if (ends_with(a, ".py") || ends_with(a, ".jar")) {
			size_t used = strlen(buf);
			snprintf(buf + used, n - used, " %s", base_name(a));
		}
		break;
	}
}

int runtime_explain_none(struct target *t)
{
	char exe[256] = "?", label[256] = "";
	target_exe(t, exe, sizeof(exe));
	runtime_label(t, label, sizeof(label));
	return cg_fail(-ENOENT,
		       "process %d is not a Python or Java process (it runs %s: '%s'); "
		       "use --native to profile native code",
		       (int)target_pid(t), exe, label);
}

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

int runtime_explain_none(struct target *t)
{
	char exe[256] = "?", cmd[256] = "";
	target_exe(t, exe, sizeof(exe));
	target_cmdline(t, cmd, sizeof(cmd));
	return cg_fail(-ENOENT,
		       "process %d is not a Python or Java process (it runs %s%s%s%s); "
		       "use --native to profile native code",
		       (int)target_pid(t), exe, cmd[0] ? ": '" : "", cmd, cmd[0] ? "'" : "");
}

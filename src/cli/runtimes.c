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


int runtime_probe(struct target *t, bool native, const struct cg_sampler_ops **out)
{
	const struct cg_sampler_ops *order[] = {&python_sampler_ops, &jvm_sampler_ops};

	for (size_t i = 0; i < CG_ARRAY_LEN(order); i++) {
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
	if (native && !strstr(base, "python") && strcmp(base, "java")) {
		*out = &native_sampler_ops;
		return 0;
	}
	return -ENOENT;
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

/* Python's options that take a value as the next argument (-W error,
 * -X dev): the value is not the script. */
static bool python_opt_takes_value(const char *a)
{
	return !strcmp(a, "-W") || !strcmp(a, "-X") || !strcmp(a, "-Q");
}

/* A terminated copy of a command line as the kernel keeps it (arguments
 * each ended by a NUL, len bytes, the last maybe cut); its length. */
static size_t argv_copy(const char *in, size_t len, char *out, size_t n)
{
	size_t l = len < n - 1 ? len : n - 1;
	memcpy(out, in, l);
	out[l] = '\0';
	return l;
}

void runtime_label_argv(const char *args, size_t len, char *buf, size_t n)
{
	char argv[4096];
	const char *end = argv + argv_copy(args, len, argv, sizeof(argv));
	snprintf(buf, n, "%s", base_name(argv));
	bool py = !strncmp(base_name(argv), "python", 6);
	/* Options are skipped; the first other argument is kept only when it
	 * names a script or a jar, and ends the search either way (it may be
	 * an option's value). `-m MODULE` (java: `-m MODULE/CLASS`) names
	 * the module, never what follows; Python's -c ends the search (what
	 * follows is code). */
	for (const char *a = argv + strlen(argv) + 1; a < end; a += strlen(a) + 1) {
		size_t used = strlen(buf);
		if (!strcmp(a, "-m") || (py && !strncmp(a, "-m", 2))) {
			const char *mod = a[2] ? a + 2 : a + strlen(a) + 1;
			if (mod < end && *mod)
				snprintf(buf + used, n - used, " -m %s", mod);
			break;
		}
		if (py && !strncmp(a, "-c", 2))
			break;
		if (py && python_opt_takes_value(a)) {
			a += strlen(a) + 1; /* the loop steps over the value */
			if (a >= end)
				break;
			continue;
		}
		if (a[0] == '-')
			continue;
		if (ends_with(a, ".py") || ends_with(a, ".jar"))
			snprintf(buf + used, n - used, " %s", base_name(a));
		break;
	}
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
	runtime_label_argv(argv, (size_t)len, buf, n);
}

int runtime_path0_argv(const char *args, size_t len, const char *cwd, char *buf, size_t n)
{
	char argv[4096];
	const char *end = argv + argv_copy(args, len, argv, sizeof(argv)), *script = NULL;
	if (strncmp(base_name(argv), "python", 6))
		return -ENOENT;
	for (const char *a = argv + strlen(argv) + 1; a < end && !script; a += strlen(a) + 1) {
		if (!strcmp(a, "-P") || !strcmp(a, "-I"))
			return -ENOENT; /* safe path: no sys.path[0] */
		if (!strncmp(a, "-m", 2) || !strncmp(a, "-c", 2) || !strcmp(a, "-"))
			break; /* sys.path[0] is the current directory */
		if (python_opt_takes_value(a)) {
			a += strlen(a) + 1;
			if (a >= end)
				break;
			continue;
		}
		if (a[0] != '-')
			script = a;
	}
	const char *slash = script ? strrchr(script, '/') : NULL;
	if (!slash)
		snprintf(buf, n, "%s", cwd);
	else if (slash == script)
		snprintf(buf, n, "/");
	else if (script[0] == '/')
		snprintf(buf, n, "%.*s", (int)(slash - script), script);
	else
		snprintf(buf, n, "%s/%.*s", cwd, (int)(slash - script), script);
	/* no trailing "/." from "./app.py" */
	size_t l = strlen(buf);
	if (l > 2 && !strcmp(buf + l - 2, "/."))
		buf[l - 2] = '\0';
	return buf[0] ? 0 : -ENOENT;
}

int runtime_python_path0(struct target *t, char *buf, size_t n)
{
	char argv[4096], cwd[2048];
	int len = target_argv(t, argv, sizeof(argv));
	if (len <= 0 || target_cwd(t, cwd, sizeof(cwd)))
		return -ENOENT;
	return runtime_path0_argv(argv, (size_t)len, cwd, buf, n);
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

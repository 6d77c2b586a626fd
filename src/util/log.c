/* Log lines to stderr or syslog, and keep the one-line explanation of the
 * last failure for cli to print. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "cgprof/log.h"

static const char *log_prog = "cgprof";
static enum cg_log_level log_lvl = CG_LOG_WARN;
static int log_syslog;
static _Thread_local char last_err[512];

void cg_log_init(const char *prog, enum cg_log_level level, int use_syslog)
{
	log_prog = prog;
	log_lvl = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(prog, LOG_PID, LOG_DAEMON);
}

void cg_log_set_level(enum cg_log_level level) { log_lvl = level; }
enum cg_log_level cg_log_level(void) { return log_lvl; }

void cg_vlog(enum cg_log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const tag[] = {"error: ", "warning: ", "", "debug: "};
	char line[1024];

	if (level > log_lvl)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_syslog) {
		syslog(prio[level], "%s", line);
		return;
	}
	fprintf(stderr, "%s: %s%s\n", log_prog, tag[level], line);
}

void cg_log(enum cg_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cg_vlog(level, fmt, ap);
	va_end(ap);
}

void cg_note(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (log_lvl < CG_LOG_WARN)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(LOG_NOTICE, "%s", line);
	else
		fprintf(stderr, "%s: %s\n", log_prog, line);
}

int cg_fail(int err, const char *fmt, ...)
{
	va_list ap;
	if (last_err[0])
		return err;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
	cg_debug("fail(%d): %s", err, last_err);
	return err;
}

const char *cg_lasterr(void) { return last_err; }
const char *cg_errmsg(int err) { return last_err[0] ? last_err : strerror(-err); }
void cg_clearerr(void) { last_err[0] = '\0'; }

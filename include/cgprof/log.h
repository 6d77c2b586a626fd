/* Logging and the one-line error a failed command prints.
 * Lower layers explain a failure once with cg_fail(); only cli prints it. */
#ifndef CGPROF_LOG_H
#define CGPROF_LOG_H

#include <stdarg.h>

enum cg_log_level {
	CG_LOG_ERROR = 0,
	CG_LOG_WARN,
	CG_LOG_INFO,
	CG_LOG_DEBUG,
};

/* prog prefixes every line ("cgprof: ..."); use_syslog sends lines to
 * syslog(LOG_DAEMON) instead of stderr (for `cgprof upload --syslog`). */
void cg_log_init(const char *prog, enum cg_log_level level, int use_syslog);
void cg_log_set_level(enum cg_log_level level);
enum cg_log_level cg_log_level(void);
void cg_log(enum cg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cg_vlog(enum cg_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* A result the user asked for (a summary line): shown whenever warnings
 * are, without the "warning: " tag; syslog priority LOG_NOTICE. */
void cg_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define cg_error(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)
#define cg_warn(...) cg_log(CG_LOG_WARN, __VA_ARGS__)
#define cg_info(...) cg_log(CG_LOG_INFO, __VA_ARGS__)
#define cg_debug(...)                                          \
	do {                                                   \
		if (cg_log_level() >= CG_LOG_DEBUG)            \
			cg_log(CG_LOG_DEBUG, __VA_ARGS__);     \
	} while (0)

/* Record why an operation failed, in words a user can act on, and return
 * err (a negative errno-style code) so callers can `return cg_fail(...)`.
 * The first explanation wins until cg_clearerr(): the deepest layer that
 * understood the failure says it, callers above do not overwrite it. */
int cg_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cg_lasterr(void);
void cg_clearerr(void);
/* What to tell the user about failure err: the recorded explanation, or
 * strerror(-err) when none was given. */
const char *cg_errmsg(int err);

#endif

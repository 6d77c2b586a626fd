/* `cgprof upload`: send every batch waiting in the spool, for cron or a
 * systemd timer. Exit 0 all sent, 75 some left to retry, 78 configuration
 * or credentials wrong (the sysexits.h codes cron users know). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h> /* _PATH_LOG */
#include <unistd.h>

#include "cgprof/config.h"
#include "cgprof/log.h"
#include "cgprof/upload.h"
#include "cli.h"

#define EXIT_TEMPFAIL 75
#define EXIT_CONFIG 78

/* syslog(3) drops every message, silently, when nothing listens on
 * /dev/log (a container, a minimal host): find out first. 0 when a
 * datagram reaches the socket, else -errno. */
static int syslog_reachable(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", _PATH_LOG);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		r = -errno;
	close(fd);
	return r;
}

int cmd_upload(struct cli_opts *o)
{
	struct cg_config c;
	unsigned sent = 0, left = 0, refused = 0;

	signal(SIGPIPE, SIG_IGN);
	if (cli_load_config(o, &c)) {
		config_free(&c);
		return EXIT_CONFIG;
	}
	enum cg_log_level lvl = o->verbose >= 2 ? CG_LOG_DEBUG : o->verbose ? CG_LOG_INFO : CG_LOG_WARN;
	int nolog = c.syslog ? syslog_reachable() : 0;
	cg_log_init("cgprof", lvl, c.syslog && !nolog);
	if (nolog)
		cg_warn("--syslog: nothing listens on %s (%s); logging to stderr instead",
			_PATH_LOG, strerror(-nolog));
	int r = uploader_drain(&c, &sent, &left, &refused);
	if (r)
		cg_log(r != -EAGAIN ? CG_LOG_ERROR : CG_LOG_WARN, "upload: %u sent, %u left, %u refused: %s",
		       sent, left, refused, cg_errmsg(r));
	else if (!o->quiet)
		cg_note("upload: %u sent, %u left, %u refused", sent, left, refused);
	config_free(&c);
	if (r == 0)
		return 0;
	return r == -EAGAIN ? EXIT_TEMPFAIL : EXIT_CONFIG;
}

/* Where a command's output goes: the path checked before anything is
 * started, then written through a temporary file renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cli.h"

/* The directory part of path ("." for a bare name). */
static void dir_of(const char *path, char *buf, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(buf, n, ".");
	else if (slash == path)
		snprintf(buf, n, "/");
	else
		snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

int cli_output_check(const char *path)
{
	char dir[4096], probe[4200];
	struct stat st;

	if (!strcmp(path, "-"))
		return 0;
	if (!path[0])
		return cg_fail(-EINVAL, "cannot write the output to '': empty path");
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cg_fail(-EISDIR, "cannot write the output to %s: it is a directory", path);
	/* /dev/null, a terminal, a pipe: written in place, never replaced. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (access(path, W_OK))
			return cg_fail(-errno, "cannot write the output to %s: %s", path,
				       strerror(errno));
		return 0;
	}
	/* The real test of what write and rename will need: create a file
	 * beside it (read-only file systems, /proc, full quotas fail here). */
	dir_of(path, dir, sizeof(dir));
	if (stat(dir, &st))
		return cg_fail(-errno, "cannot write the output to %s: %s: %s", path, dir,
			       strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return cg_fail(-ENOTDIR, "cannot write the output to %s: %s is not a directory",
			       path, dir);
	snprintf(probe, sizeof(probe), "%s/.cgprof-check%d", dir, (int)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cg_fail(-errno, "cannot write the output to %s: no file can be created in %s "
				       "(%s)", path, dir, strerror(errno));
	close(fd);
	unlink(probe);
	return 0;
}

int cli_output_open(struct cli_output *w, const char *path)
{
	memset(w, 0, sizeof(*w));
	w->path = path;
	if (!strcmp(path, "-")) {
		w->f = stdout;
		return 0;
	}
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* Renaming over a device would replace it (as root, /dev/null
		 * itself): write to it where it is. */
		w->tmp[0] = '\0';
		w->f = fopen(path, "we");
		if (!w->f)
			return cg_fail(-errno, "cannot write the output to %s: %s", path,
				       strerror(errno));
		return 0;
	}
	snprintf(w->tmp, sizeof(w->tmp), "%s.tmp%d", path, (int)getpid());
	w->f = fopen(w->tmp, "we");
	if (!w->f)
		return cg_fail(-errno, "cannot write the output to %s: %s", path, strerror(errno));
	return 0;
}

int cli_output_close(struct cli_output *w, int r)
{
	if (!w->f)
		return r;
	if (w->f == stdout) {
		if (fflush(stdout) && !r)
			r = cg_fail(-EIO, "cannot write to stdout: %s", strerror(errno));
		w->f = NULL;
		return r;
	}
	if ((fflush(w->f) || ferror(w->f)) && !r)
		r = cg_fail(-EIO, "cannot write the output to %s: %s", w->path, strerror(errno));
	if (w->tmp[0] && fsync(fileno(w->f)) && !r)
		r = cg_fail(-errno, "cannot write the output to %s: %s", w->path, strerror(errno));
	fclose(w->f);
	w->f = NULL;
	if (!w->tmp[0])
		return r;
	if (!r && rename(w->tmp, w->path))
		r = cg_fail(-errno, "cannot write the output to %s: %s", w->path, strerror(errno));
	if (r)
		unlink(w->tmp);
	return r;
}

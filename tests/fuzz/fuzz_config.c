/* Fuzz the config file reader (config_load): "key = value" lines from
 * /etc/cgprof/cgprof.conf or ~/.config/cgprof/config. */
#include <stdlib.h>
#include <string.h>

#include "cgprof/config.h"
#include "fuzz.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	devnull = fopen("/dev/null", "w");
	/* Only the file speaks: no CGPROF_* setting from the environment. */
	extern char **environ;
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; *e; e++) {
			if (!strncmp(*e, "CGPROF_", 7)) {
				char name[256];
				snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], dir[4096];
	int fd = fuzz_memfd(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	struct cg_config c;
	config_init(&c);
	cg_clearerr();
	if (config_load(&c, path, "/dev/null") == 0) {
		config_print(&c, devnull);
		config_spool_dir(&c, dir, sizeof(dir));
	}
	config_free(&c);
	close(fd);
	return 0;
}

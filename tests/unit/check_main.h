/* One Check suite per test file; this supplies the main() that runs it. */
#ifndef CGPROF_CHECK_MAIN_H
#define CGPROF_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A test file may also be its own helper process: "TEST --child ARGS"
 * runs child_fn(ARGS) instead of the suite. Tests that need a target exec
 * themselves this way rather than fork, so the child is a plain native
 * process even when the suite runs under valgrind. */
#define CG_CHECK_MAIN_CHILD(suite_fn, child_fn)                          \
	int main(int argc, char **argv)                                  \
	{                                                                \
		if (argc >= 2 && strcmp(argv[1], "--child") == 0)        \
			return child_fn(argc - 2, argv + 2);             \
		SRunner *sr = srunner_create(suite_fn());                \
		srunner_run_all(sr, CK_NORMAL);                          \
		int failed = srunner_ntests_failed(sr);                  \
		srunner_free(sr);                                        \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;             \
	}

#define CG_CHECK_MAIN(suite_fn)                                          \
	int main(void)                                                   \
	{                                                                \
		SRunner *sr = srunner_create(suite_fn());                \
		srunner_run_all(sr, CK_NORMAL);                          \
		int failed = srunner_ntests_failed(sr);                  \
		srunner_free(sr);                                        \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;             \
	}

#endif

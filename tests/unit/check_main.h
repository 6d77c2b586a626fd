/* One Check suite per test file; this supplies the main() that runs it. */
#ifndef CGPROF_CHECK_MAIN_H
#define CGPROF_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

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

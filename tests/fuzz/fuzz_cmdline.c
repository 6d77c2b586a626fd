/* Fuzz the readers of a target's command line (runtime_label_argv: how a
 * process is named; runtime_path0_argv: Python's sys.path[0]). The target
 * writes its own argv, so both read untrusted bytes. */
#include <string.h>

#include "../../src/cli/runtimes.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char label[96], small[8], root[256];
	runtime_label_argv((const char *)data, size, label, sizeof(label));
	if (strlen(label) >= sizeof(label))
		__builtin_trap();
	runtime_label_argv((const char *)data, size, small, sizeof(small));
	if (runtime_path0_argv((const char *)data, size, "/srv/app", root, sizeof(root)) == 0 &&
	    (root[0] != '/' || strlen(root) >= sizeof(root)))
		__builtin_trap(); /* an absolute directory, always */
	return 0;
}

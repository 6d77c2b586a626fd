/* Fuzz the ConfigureAgent reply parser (agent_parse_configuration): the
 * JSON body the profiling endpoint answers with. */
#include <string.h>

#include "fuzz.h"
#include "upload_priv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_agent_params p;
	memset(&p, 0, sizeof(p));
	p.should_profile = true;
	p.period_s = 300;
	p.sampling_interval_ms = 1000;
	p.reporting_interval_s = 300;
	cg_clearerr();
	if (agent_parse_configuration((const char *)data, size, &p) == 0) {
		/* What the session relies on after a successful parse. */
		if (!p.sampling_interval_ms || !p.reporting_interval_s)
			__builtin_trap();
	}
	return 0;
}

/* Fuzz the reply header parser (http_parse_header): the lines an
 * endpoint, or anything between us and it, sends before the body. */
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
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.retry_after_s = -1;
	/* One call per line, as curl delivers them (each with its CRLF). */
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		http_parse_header(&r, p, len);
		p += len;
	}
	/* What the agent relies on: bounded, terminated, sane. */
	if (r.retry_after_s < -1 || r.retry_after_s > 86400)
		__builtin_trap();
	if (strnlen(r.location, sizeof(r.location)) == sizeof(r.location) ||
	    strnlen(r.error_type, sizeof(r.error_type)) == sizeof(r.error_type))
		__builtin_trap();
	return 0;
}

/* Fuzz the AWS shared credentials and config file readers (the chain's
 * file step, cred_from_files, and cred_region). Input: the credentials
 * file, a NUL byte, the config file. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "upload_priv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	static const char *const drop[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
					   "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
					   "AWS_DEFAULT_PROFILE", "AWS_PROFILE"};
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		unsetenv(drop[i]);
	return 0;
}

static void one_profile(const char *profile)
{
	struct cred c;
	char region[256];
	if (profile)
		setenv("AWS_PROFILE", profile, 1);
	else
		unsetenv("AWS_PROFILE");
	memset(&c, 0, sizeof(c));
	cg_clearerr();
	if (cred_from_files(&c) == 0 && c.token)
		(void)strlen(c.token);
	cred_clear(&c);
	if (cred_region(region, sizeof(region)) == 0)
		(void)strlen(region);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t n1 = nul ? (size_t)(nul - data) : size;
	const uint8_t *cfg = nul ? nul + 1 : data + size;
	size_t n2 = size - n1 - (nul ? 1 : 0);
	char p1[64], p2[64];
	int fd1 = fuzz_memfd(data, n1, p1, sizeof(p1));
	int fd2 = fuzz_memfd(cfg, n2, p2, sizeof(p2));
	if (fd1 >= 0 && fd2 >= 0) {
		setenv("AWS_SHARED_CREDENTIALS_FILE", p1, 1);
		setenv("AWS_CONFIG_FILE", p2, 1);
		one_profile(NULL);
		one_profile("dev");
	}
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0)
		close(fd2);
	return 0;
}

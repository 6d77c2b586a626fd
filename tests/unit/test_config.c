/* config: defaults, file then environment precedence with provenance, and
 * errors that name the file and line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "cgprof/config.h"
#include "cgprof/log.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/cgprof-test-config-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(defaults)
{
	struct cg_config c;
	config_init(&c);
	ck_assert_uint_eq(c.reporting_interval_s, 300);
	ck_assert_uint_eq(c.spool_max_mb, 256);
	ck_assert_ptr_null(c.profiling_group);
	config_free(&c);
}
END_TEST

START_TEST(precedence_and_origin)
{
	struct cg_config c;
	char *sys = strdup(write_tmp("# system\nprofiling_group = from-system\nrate = 50\n"));
	char *user = write_tmp("profiling_group = \"from-user\"\n\n  reporting_interval=60  \n");
	setenv("CGPROF_RATE", "77", 1);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, sys, user), 0);
	ck_assert_str_eq(c.profiling_group, "from-user");
	ck_assert_uint_eq(c.reporting_interval_s, 60);
	ck_assert_uint_eq(c.rate_hz, 77);
	ck_assert_int_eq(config_set(&c, "rate", "10", CG_ORIGIN_OPTION, "--rate"), 0);
	ck_assert_uint_eq(c.rate_hz, 10);

	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	config_print(&c, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "from-user"));
	ck_assert_ptr_nonnull(strstr(buf, "option (--rate)"));
	char want[128];
	snprintf(want, sizeof(want), "user file (%s:1)", user);
	ck_assert_ptr_nonnull(strstr(buf, want));
	free(buf);
	unsetenv("CGPROF_RATE");
	unlink(sys);
	unlink(user);
	free(sys);
	config_free(&c);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
	struct cg_config c;
	char *p = write_tmp("region = eu-west-1\nbogus_key = 1\n");
	config_init(&c);
	cg_clearerr();
	ck_assert_int_eq(config_load(&c, "/nonexistent/cgprof.conf", p), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "%s:2: unknown setting 'bogus_key'", p);
	ck_assert_str_eq(cg_lasterr(), want);
	unlink(p);

	p = write_tmp("reporting_interval = -5\n");
	cg_clearerr();
	ck_assert_int_eq(config_load(&c, "/nonexistent/cgprof.conf", p), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), ":1: reporting_interval must be"));
	unlink(p);

	p = write_tmp("just words\n");
	cg_clearerr();
	ck_assert_int_eq(config_load(&c, "/nonexistent/cgprof.conf", p), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), ":1: expected 'key = value'"));
	unlink(p);

	cg_clearerr();
	ck_assert_int_eq(config_set(&c, "endpoint", "http://127.0.0.1:1", CG_ORIGIN_OPTION,
				    "--endpoint"),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "https://"));
	ck_assert_int_eq(config_set(&c, "no_upload", "maybe", CG_ORIGIN_OPTION, "--no-upload"),
			 -EINVAL);
	config_free(&c);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, precedence_and_origin);
	tcase_add_test(tc, errors_name_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(config_suite)

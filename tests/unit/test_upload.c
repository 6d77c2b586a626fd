/* Unit tests for the uploader's pure parts (ConfigureAgent replies,
 * endpoint choice, credentials from env and files, reporter rules), and a
 * driver the integration tests run against the loopback endpoint:
 *   test_upload [--group G] [--region R] [--endpoint URL] [--ca-file F]
 *               [--pin-sha256 P] [--retries N] [--no-upload] [--spool DIR]
 *               [--spool-max-mb MB] [--spool-key FILE] CMD
 *   CMD: configure | post FILE [TOKEN] | creds | reconfigure GOFILE | drain
 *        submit FILE WINDOW_MS SAMPLES [TIMES]
 * Exit 0 ok, 75 retry later, 77 credentials/auth/TLS, 78 invalid, 1 other. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "cgprof/upload.h"
#include "../../src/upload/upload_priv.h"

static void clear_aws_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_CODEGURUPROFILER"};
	for (size_t i = 0; i < CG_ARRAY_LEN(vars); i++)
		unsetenv(vars[i]);
	/* Never reach for a real metadata service. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

START_TEST(test_parse_configuration_payload)
{
	static const char reply[] =
		"{\"shouldProfile\":false,\"periodInSeconds\":120,\"agentParameters\":{"
		"\"SamplingIntervalInMilliseconds\":\"20\",\"ReportingIntervalInMilliseconds\":\"60000\","
		"\"MinimumTimeForReportingInMilliseconds\":\"5000\",\"MemoryUsageLimitPercent\":\"7\","
		"\"MaxStackDepth\":\"500\"}}";
	struct cg_agent_params p = {.should_profile = true, .sampling_interval_ms = 10,
				    .reporting_interval_s = 300, .min_reporting_s = 60,
				    .max_stack_depth = 2048};
	ck_assert_int_eq(agent_parse_configuration(reply, strlen(reply), &p), 0);
	ck_assert(!p.should_profile);
	ck_assert_uint_eq(p.period_s, 120);
	ck_assert_uint_eq(p.sampling_interval_ms, 20);
	ck_assert_uint_eq(p.reporting_interval_s, 60);
	ck_assert_uint_eq(p.min_reporting_s, 5);
	ck_assert_uint_eq(p.memory_limit_percent, 7);
	ck_assert(p.memory_limit_bytes > 0);
	ck_assert_uint_eq(p.max_stack_depth, 500);
}
END_TEST

START_TEST(test_parse_configuration_wrapped_and_partial)
{
	static const char reply[] =
		"{\"configuration\":{\"shouldProfile\":true,\"periodInSeconds\":60,"
		"\"agentParameters\":{\"MaxStackDepth\":\"bogus\"}}}";
	struct cg_agent_params p = {.should_profile = false, .sampling_interval_ms = 10,
				    .reporting_interval_s = 300, .min_reporting_s = 60,
				    .max_stack_depth = 2048};
	ck_assert_int_eq(agent_parse_configuration(reply, strlen(reply), &p), 0);
	ck_assert(p.should_profile);
	ck_assert_uint_eq(p.period_s, 60);
	ck_assert_uint_eq(p.max_stack_depth, 2048); /* bad value: kept */
	ck_assert_uint_eq(p.reporting_interval_s, 300);
	cg_clearerr();
	ck_assert_int_eq(agent_parse_configuration("[1]", 3, &p), -EPROTO);
}
END_TEST

START_TEST(test_endpoint_order)
{
	struct cg_config c = {0};
	char *u;
	clear_aws_env();
	u = agent_endpoint_url(&c, "eu-west-1");
	ck_assert_str_eq(u, "https://codeguru-profiler.eu-west-1.amazonaws.com");
	free(u);
	u = agent_endpoint_url(&c, "cn-north-1");
	ck_assert_str_eq(u, "https://codeguru-profiler.cn-north-1.amazonaws.com.cn");
	free(u);
	setenv("AWS_ENDPOINT_URL", "https://general.example/", 1);
	u = agent_endpoint_url(&c, "eu-west-1");
	ck_assert_str_eq(u, "https://general.example");
	free(u);
	setenv("AWS_ENDPOINT_URL_CODEGURUPROFILER", "https://specific.example", 1);
	u = agent_endpoint_url(&c, "eu-west-1");
	ck_assert_str_eq(u, "https://specific.example");
	free(u);
	c.endpoint = "https://option.example:8443";
	u = agent_endpoint_url(&c, "eu-west-1");
	ck_assert_str_eq(u, "https://option.example:8443");
	free(u);
	c.endpoint = "ftp://nope";
	cg_clearerr();
	ck_assert_ptr_null(agent_endpoint_url(&c, "eu-west-1"));
	clear_aws_env();
}
END_TEST

/* Every source of an endpoint is https, and a region never reaches a
 * host name unchecked (issue 17: both leaked the signed request). */
START_TEST(test_endpoint_and_region_checked)
{
	struct cg_config c = {0};
	static const char *const envs[] = {"AWS_ENDPOINT_URL_CODEGURUPROFILER", "AWS_ENDPOINT_URL"};
	clear_aws_env();
	for (size_t i = 0; i < CG_ARRAY_LEN(envs); i++) {
		setenv(envs[i], "http://127.0.0.1:1", 1);
		cg_clearerr();
		ck_assert_ptr_null(agent_endpoint_url(&c, "eu-west-1"));
		ck_assert_ptr_nonnull(strstr(cg_lasterr(), envs[i]));
		setenv(envs[i], "HTTPS://127.0.0.1:1", 1); /* no second spelling */
		ck_assert_ptr_null(agent_endpoint_url(&c, "eu-west-1"));
		unsetenv(envs[i]);
	}
	static const char *const bad[] = {"x@127.0.0.1:1?", "eu-west-1.evil", "-eu", "eu-", "123",
					  "", "eu west", "eu/1"};
	for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
		cg_clearerr();
		ck_assert_msg(!agent_endpoint_url(&c, bad[i]) || !*bad[i], "%s", bad[i]);
		ck_assert(!config_valid_region(bad[i]));
	}
	ck_assert(config_valid_region("us-gov-west-1"));
	ck_assert(config_valid_region("cn-north-1"));
	ck_assert(config_valid_group("a"));
	ck_assert(config_valid_group("My_group-1"));
	static const char *const badg[] = {"../x", "a b", "", "a.b", "a/b", "é"};
	for (size_t i = 0; i < CG_ARRAY_LEN(badg); i++)
		ck_assert_msg(!config_valid_group(badg[i]), "%s", badg[i]);
	char longg[257];
	memset(longg, 'g', 256);
	longg[256] = '\0';
	ck_assert(!config_valid_group(longg));
	longg[255] = '\0';
	ck_assert(config_valid_group(longg));
	clear_aws_env();
}
END_TEST

/* The seal covers every header field: edit any, and the batch no longer
 * opens; another key is told apart from tampering (-ENOKEY). */
START_TEST(test_spool_seal_covers_header)
{
	static const unsigned char key[32] = "unit-test-spool-key-32-bytes!!!!";
	static const unsigned char other[32] = "another-spool-key-of-32-bytes!!!";
	char dir[] = "/tmp/cgprof-test-seal-XXXXXX", kpath[300], path[400];
	ck_assert(mkdtemp(dir));
	snprintf(kpath, sizeof(kpath), "%s/key", dir);
	FILE *f = fopen(kpath, "wb");
	ck_assert(f && fwrite(key, 1, 32, f) == 32);
	fclose(f);
	chmod(kpath, 0600);
	struct cg_config c = {0};
	char sdir[300];
	snprintf(sdir, sizeof(sdir), "%s/spool", dir);
	c.spool_dir = sdir;
	c.spool_key_file = kpath;
	c.profiling_group = "grp";
	struct cg_spool *sp;
	ck_assert_int_eq(spool_open(&c, &sp), 0);
	struct cg_batch b = {.id = "0000000000001-1-0", .profiling_group = "grp",
			     .profile_token = "6f1c2a3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f",
			     .content_type = "application/json", .body = "{}", .len = 2};
	ck_assert_int_eq(spool_put(sp, &b), 0);
	spool_close(sp);
	snprintf(path, sizeof(path), "%s/%s.batch", sdir, b.id);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	char *data = malloc((size_t)st.st_size);
	f = fopen(path, "rb");
	ck_assert(f && fread(data, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
	fclose(f);
	size_t n = (size_t)st.st_size;
	struct cg_batch out;
	cg_clearerr();
	ck_assert_int_eq(spool_parse_batch(data, n, b.id, key, &out), 0);
	ck_assert_str_eq(out.profile_token, b.profile_token);
	free(out.body);
	ck_assert_int_eq(spool_parse_batch(data, n, b.id, other, &out), -ENOKEY);
	ck_assert_int_eq(spool_parse_batch(data, n, b.id, NULL, &out), -ENOKEY);
	/* one character of each field, in turn */
	static const char *const fields[] = {"group: ", "token: ", "content-type: ", "length: "};
	for (size_t i = 0; i < CG_ARRAY_LEN(fields); i++) {
		char *copy = malloc(n);
		memcpy(copy, data, n);
		/* the file is bytes, not a string: no strstr */
		char *v = memmem(copy, n, fields[i], strlen(fields[i]));
		ck_assert(v);
		v += strlen(fields[i]);
		/* same length, same character class: only the seal can tell */
		*v = *v == '6' ? '7' : *v == 'g' ? 'h' : *v == 'a' ? 'b' : (char)(*v ^ 1);
		cg_clearerr();
		int r = spool_parse_batch(copy, n, b.id, key, &out);
		ck_assert_msg(r == -EBADMSG, "%s edited: %d", fields[i], r);
		free(copy);
	}
	free(data);
	unlink(path);
	unlink(kpath);
	rmdir(sdir);
	rmdir(dir);
}
END_TEST

static char tmpdir[256];

static void write_file(const char *name, const char *text, mode_t mode, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	ck_assert(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cgprof-test-upload-XXXXXX");
	ck_assert(mkdtemp(tmpdir));
}

START_TEST(test_credentials_env)
{
	struct cred_chain *ch;
	struct cred c;
	clear_aws_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	ck_assert_int_eq(cred_chain_new(&ch), 0);
	ck_assert_int_eq(cred_chain_get(ch, false, &c), 0);
	ck_assert_str_eq(c.access_key, "AKIAENV");
	ck_assert_str_eq(c.secret_key, "envsecret");
	ck_assert_str_eq(c.token, "envtoken");
	ck_assert_str_eq(c.source, "environment");
	cred_clear(&c);
	cred_chain_free(ch);
	clear_aws_env();
}
END_TEST

START_TEST(test_credentials_files)
{
	char cpath[512], kpath[512], region[64];
	struct cred_chain *ch;
	struct cred c;
	clear_aws_env();
	mk_tmpdir();
	write_file("credentials",
		   "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n"
		   "# comment\n[work]\naws_access_key_id=AKIAWORK\naws_secret_access_key=s2\n"
		   "aws_session_token = t2\n",
		   0600, kpath, sizeof(kpath));
	write_file("config",
		   "[default]\nregion = us-west-1\n[profile sso]\nsso_session = corp\n"
		   "[profile cfgonly]\n"
		   "aws_access_key_id = AKIACFG\naws_secret_access_key = s3\nregion = ap-south-1\n",
		   0600, cpath, sizeof(cpath));
	setenv("AWS_SHARED_CREDENTIALS_FILE", kpath, 1);
	setenv("AWS_CONFIG_FILE", cpath, 1);

	ck_assert_int_eq(cred_chain_new(&ch), 0);
	ck_assert_int_eq(cred_chain_get(ch, false, &c), 0);
	ck_assert_str_eq(c.access_key, "AKIADEFAULT");
	ck_assert_ptr_null(c.token);
	cred_clear(&c);
	ck_assert_int_eq(cred_region(region, sizeof(region)), 0);
	ck_assert_str_eq(region, "us-west-1");

	setenv("AWS_PROFILE", "work", 1);
	ck_assert_int_eq(cred_chain_get(ch, true, &c), 0);
	ck_assert_str_eq(c.access_key, "AKIAWORK");
	ck_assert_str_eq(c.secret_key, "s2");
	ck_assert_str_eq(c.token, "t2");
	ck_assert_str_eq(c.source, "profile work");
	cred_clear(&c);

	setenv("AWS_PROFILE", "cfgonly", 1);
	ck_assert_int_eq(cred_chain_get(ch, true, &c), 0);
	ck_assert_str_eq(c.access_key, "AKIACFG");
	cred_clear(&c);
	ck_assert_int_eq(cred_region(region, sizeof(region)), 0);
	ck_assert_str_eq(region, "ap-south-1");
	setenv("AWS_REGION", "eu-north-1", 1);
	ck_assert_int_eq(cred_region(region, sizeof(region)), 0);
	ck_assert_str_eq(region, "eu-north-1");

	setenv("AWS_PROFILE", "missing", 1);
	cg_clearerr();
	cg_log_set_level(CG_LOG_ERROR); /* the expected "refresh failed" warning */
	ck_assert_int_eq(cred_chain_get(ch, true, &c), 0); /* keeps the last good ones */
	cg_log_set_level(CG_LOG_WARN);
	cred_clear(&c);
	cred_chain_free(ch);

	ck_assert_int_eq(cred_chain_new(&ch), 0);
	cg_clearerr();
	ck_assert_int_eq(cred_chain_get(ch, false, &c), -EINVAL);
	ck_assert(strstr(cg_lasterr(), "no such profile"));
	setenv("AWS_PROFILE", "sso", 1);
	cg_clearerr();
	ck_assert_int_eq(cred_chain_get(ch, false, &c), -EINVAL);
	ck_assert(strstr(cg_lasterr(), "does not support"));
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", tmpdir, 1);
	unlink(kpath);
	unlink(cpath);
	cg_clearerr();
	ck_assert_int_eq(cred_chain_get(ch, false, &c), -ENOENT);
	ck_assert(strstr(cg_lasterr(), "no AWS credentials"));
	if (home)
		setenv("HOME", home, 1);
	free(home);
	cred_chain_free(ch);
	unlink(kpath);
	unlink(cpath);
	rmdir(tmpdir);
	clear_aws_env();
}
END_TEST

START_TEST(test_container_uri_refused)
{
	struct cred_chain *ch;
	struct cred c;
	clear_aws_env();
	/* Plain HTTP to a non-loopback host would leak the token. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://creds.invalid/creds", 1);
	ck_assert_int_eq(cred_chain_new(&ch), 0);
	cg_clearerr();
	ck_assert_int_eq(cred_chain_get(ch, false, &c), -EINVAL);
	ck_assert(strstr(cg_lasterr(), "loopback"));
	cred_chain_free(ch);
	clear_aws_env();
}
END_TEST

START_TEST(test_uuid)
{
	char a[37], b[37];
	reporter_uuid(a);
	reporter_uuid(b);
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(a[14], '4');
	ck_assert(strchr("89ab", a[19]));
	ck_assert_int_eq(a[8], '-');
}
END_TEST

START_TEST(test_reporter_rules)
{
	struct cg_config c = {0};
	struct cg_reporter *r = (void *)1;
	struct cg_agent_params p;
	clear_aws_env();
	c.reporting_interval_s = 300;
	c.rate_hz = 100;
	ck_assert_int_eq(reporter_new(&c, &r), 0);
	ck_assert_ptr_null(r); /* no group: no reporter */
	ck_assert_int_eq(reporter_submit_encoded(NULL, "{}", 2, 1000000, 5), 0);

	c.profiling_group = "grp";
	c.no_upload = true;
	ck_assert_int_eq(reporter_new(&c, &r), 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(reporter_uploader(r)); /* no network with --no-upload */
	ck_assert_int_eq(reporter_configure(r, &p), 0);
	ck_assert(p.should_profile);
	ck_assert_uint_eq(p.sampling_interval_ms, 10);
	ck_assert_uint_eq(p.reporting_interval_s, 300);
	ck_assert_uint_eq(p.min_reporting_s, 60);
	/* Empty and short windows are not reported (nor spooled). */
	ck_assert_int_eq(reporter_submit_encoded(r, "{}", 2, 600000, 0), 0);
	ck_assert_int_eq(reporter_submit_encoded(r, "{}", 2, 59999, 10), 0);
	reporter_free(r);

	c.reporting_interval_s = 10;
	uploader_default_params(&c, &p);
	ck_assert_uint_eq(p.min_reporting_s, 10);
}
END_TEST

START_TEST(test_no_region)
{
	struct cg_config c = {.profiling_group = "grp"};
	struct cg_reporter *r;
	char home[] = "/nonexistent-cgprof-home";
	clear_aws_env();
	setenv("AWS_CONFIG_FILE", home, 1);
	cg_clearerr();
	ck_assert_int_eq(reporter_new(&c, &r), -EINVAL);
	ck_assert(strstr(cg_lasterr(), "region"));
	c.region = "us-east-1";
	c.profiling_group = "bad/group";
	cg_clearerr();
	ck_assert_int_eq(reporter_new(&c, &r), -EINVAL);
	clear_aws_env();
}
END_TEST

static Suite *upload_suite(void)
{
	Suite *s = suite_create("upload");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_configuration_payload);
	tcase_add_test(tc, test_parse_configuration_wrapped_and_partial);
	tcase_add_test(tc, test_endpoint_order);
	tcase_add_test(tc, test_credentials_env);
	tcase_add_test(tc, test_credentials_files);
	tcase_add_test(tc, test_container_uri_refused);
	tcase_add_test(tc, test_uuid);
	tcase_add_test(tc, test_reporter_rules);
	tcase_add_test(tc, test_no_region);
	tcase_add_test(tc, test_endpoint_and_region_checked);
	tcase_add_test(tc, test_spool_seal_covers_header);
	suite_add_tcase(s, tc);
	return s;
}

/* ---- driver ---- */

static int exit_of(int r)
{
	if (r)
		fprintf(stderr, "error: %s\n", cg_lasterr()[0] ? cg_lasterr() : strerror(-r));
	fflush(stdout);
	switch (r) {
	case 0: return 0;
	case -EAGAIN: return 75;
	case -EACCES: return 77;
	case -EINVAL: return 78;
	case -EBADMSG: return 78; /* this batch refused: a data error, like -EINVAL */
	default: return 1;
	}
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct cg_buf b = {0};
	char chunk[4096];
	size_t n;
	if (!f)
		return NULL;
	cg_buf_append(&b, "", 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		cg_buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return b.data;
}

static int driver(int argc, char **argv)
{
	static const struct option opts[] = {
		{"group", required_argument, NULL, 'g'},   {"region", required_argument, NULL, 'r'},
		{"endpoint", required_argument, NULL, 'e'}, {"ca-file", required_argument, NULL, 'c'},
		{"pin-sha256", required_argument, NULL, 'p'}, {"retries", required_argument, NULL, 'n'},
		{"no-upload", no_argument, NULL, 'N'},      {"spool", required_argument, NULL, 's'},
		{"min-report", required_argument, NULL, 'm'},
		{"spool-max-mb", required_argument, NULL, 'M'},
		{"spool-key", required_argument, NULL, 'K'}, {NULL, 0, NULL, 0}};
	struct cg_config c = {.reporting_interval_s = 300, .rate_hz = 100, .max_depth = 2048};
	unsigned retries = 3;
	int ch, r;

	cg_log_init("test_upload", getenv("CGPROF_DEBUG") ? CG_LOG_DEBUG : CG_LOG_INFO, 0);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'g': c.profiling_group = optarg; break;
		case 'r': c.region = optarg; break;
		case 'e': c.endpoint = optarg; break;
		case 'c': c.ca_file = optarg; break;
		case 'p': c.pin_sha256 = optarg; break;
		case 'n': retries = (unsigned)atoi(optarg); break;
		case 'N': c.no_upload = true; break;
		case 's': c.spool_dir = optarg; break;
		case 'm': c.reporting_interval_s = (uint32_t)atoi(optarg); break;
		case 'M': c.spool_max_mb = (uint64_t)atoll(optarg); break;
		case 'K': c.spool_key_file = optarg; break;
		default: return 2;
		}
	}
	if (optind >= argc)
		return 2;
	const char *cmd = argv[optind];

	if (!strcmp(cmd, "creds")) {
		struct cred_chain *cc;
		struct cred cr;
		unsigned char md[SHA256_DIGEST_LENGTH];
		if ((r = cred_chain_new(&cc)))
			return exit_of(r);
		r = cred_chain_get(cc, false, &cr);
		if (!r) {
			/* A digest, never the secret itself. */
			SHA256((const unsigned char *)cr.secret_key, strlen(cr.secret_key), md);
			printf("{\"source\":\"%s\",\"access_key\":\"%s\",\"secret_sha256_8\":"
			       "\"%02x%02x%02x%02x\",\"token\":%s,\"expiration\":%lld}\n",
			       cr.source, cr.access_key, md[0], md[1], md[2], md[3],
			       cr.token ? "true" : "false", (long long)cr.expiration);
			/* A second get must come from the cache unless expiring. */
			cred_clear(&cr);
			r = cred_chain_get(cc, false, &cr);
			cred_clear(&cr);
		}
		cred_chain_free(cc);
		return exit_of(r);
	}

	if (!strcmp(cmd, "drain")) {
		unsigned sent = 0, left = 0, refused = 0;
		r = uploader_drain(&c, &sent, &left, &refused);
		printf("{\"sent\":%u,\"left\":%u,\"refused\":%u}\n", sent, left, refused);
		return exit_of(r);
	}

	struct cg_reporter *rep = NULL;
	if ((r = reporter_new(&c, &rep)))
		return exit_of(r);
	if (!rep) {
		fprintf(stderr, "error: --group is required\n");
		return 2;
	}
	if (reporter_uploader(rep))
		uploader_set_retry(reporter_uploader(rep), retries, 50, 400);

	if (!strcmp(cmd, "configure")) {
		struct cg_agent_params p;
		r = reporter_configure_sync(rep, &p);
		if (!r)
			printf("{\"should_profile\":%s,\"sampling_interval_ms\":%u,"
			       "\"reporting_interval_s\":%u,\"min_reporting_s\":%u,"
			       "\"memory_limit_percent\":%u,\"max_stack_depth\":%u,\"period_s\":%u}\n",
			       p.should_profile ? "true" : "false", p.sampling_interval_ms,
			       p.reporting_interval_s, p.min_reporting_s, p.memory_limit_percent,
			       p.max_stack_depth, p.period_s);
	} else if (!strcmp(cmd, "reconfigure") && optind + 1 < argc) {
		/* Sync first call; then, once the test has touched GO, an
		 * asynchronous one: it returns the old parameters at once and
		 * the new ones show a moment later. */
		struct cg_agent_params p1, p2, p3;
		r = reporter_configure_sync(rep, &p1);
		for (int i = 0; i < 200 && access(argv[optind + 1], F_OK); i++)
			usleep(50000);
		if (!r)
			r = reporter_configure(rep, &p2);
		for (int i = 0; !r && i < 100; i++) {
			usleep(50000);
			reporter_configure(rep, &p3);
			if (p3.should_profile != p1.should_profile)
				break;
		}
		if (!r)
			printf("%d %d %d\n", p1.should_profile, p2.should_profile, p3.should_profile);
	} else if (!strcmp(cmd, "post") && optind + 1 < argc) {
		struct cg_batch b = {0};
		size_t len;
		char *body = slurp(argv[optind + 1], &len);
		if (!body)
			return 2;
		snprintf(b.id, sizeof(b.id), "driver");
		snprintf(b.profiling_group, sizeof(b.profiling_group), "%s", c.profiling_group);
		if (optind + 2 < argc)
			snprintf(b.profile_token, sizeof(b.profile_token), "%s", argv[optind + 2]);
		else
			reporter_uuid(b.profile_token);
		snprintf(b.content_type, sizeof(b.content_type), "application/json");
		b.body = body;
		b.len = len;
		r = uploader_send(&b, reporter_uploader(rep));
		if (!r)
			printf("posted %s\n", b.profile_token);
		free(body);
	} else if (!strcmp(cmd, "submit") && optind + 3 < argc) {
		size_t len;
		char *body = slurp(argv[optind + 1], &len);
		if (!body)
			return 2;
		struct cg_agent_params p;
		reporter_configure_sync(rep, &p);
		cg_clearerr();
		int times = optind + 4 < argc ? atoi(argv[optind + 4]) : 1;
		for (int i = 0; i < times && !r; i++) {
			r = reporter_submit_encoded(rep, body, len,
						    strtoull(argv[optind + 2], NULL, 10),
						    strtoull(argv[optind + 3], NULL, 10));
			/* One at a time, like windows minutes apart. */
			usleep(300000);
		}
		free(body);
	} else {
		r = -EINVAL;
		cg_fail(r, "unknown command %s", cmd);
	}
	reporter_free(rep);
	return exit_of(r);
}

#define main upload_check_main
CG_CHECK_MAIN(upload_suite)
#undef main

int main(int argc, char **argv)
{
	if (argc > 1)
		return driver(argc, argv);
	return upload_check_main();
}

/* SigV4 against AWS's published signing test suite (tests/data/sigv4/: the
 * header-signing files of awslabs/aws-c-auth tests/aws-signing-test-suite/v4
 * at 495329c2, unchanged), and a driver mode the botocore comparison test runs:
 *   test_sigv4 sign METHOD PATH QUERY REGION SERVICE AMZDATE AK SK TOKEN BODYFILE [HEADER...]
 * (QUERY, TOKEN, BODYFILE "-" for none; HEADER "Name:value"). It prints the
 * canonical request, "----", the string to sign, "----", Authorization. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "../../src/upload/upload_priv.h"

static const char *datadir(void)
{
	const char *d = getenv("CGPROF_SIGV4_DATA");
	return d ? d : "tests/data/sigv4";
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
	if (len)
		*len = b.len;
	return b.data;
}

static char *case_file(const char *name, const char *file)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", datadir(), name, file);
	char *s = slurp(path, NULL);
	ck_assert_msg(s != NULL, "cannot read %s", path);
	return s;
}

/* One parsed request.txt: request line, "Name:value" headers, body. */
struct parsed {
	char *method, *path, *query;
	struct sigv4_header h[16];
	size_t nh;
	const char *body;
	size_t body_len;
	char *text;
};

static void parse_request(char *text, struct parsed *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->text = text;
	char *eol = strchr(text, '\n');
	ck_assert(eol);
	*eol = '\0';
	char *sp = strchr(text, ' ');
	char *ver = strrchr(text, ' ');
	ck_assert(sp && ver && ver > sp);
	*sp = '\0';
	*ver = '\0';
	pr->method = text;
	pr->path = sp + 1;
	char *q = strchr(pr->path, '?');
	if (q) {
		*q = '\0';
		pr->query = q + 1;
	}
	char *line = eol + 1;
	while (*line && *line != '\n') {
		char *e = strchr(line, '\n');
		if (e)
			*e = '\0';
		char *colon = strchr(line, ':');
		ck_assert(colon && pr->nh < CG_ARRAY_LEN(pr->h));
		*colon = '\0';
		pr->h[pr->nh].name = line;
		pr->h[pr->nh++].value = colon + 1;
		if (!e) {
			line = line + strlen(line);
			break;
		}
		line = e + 1;
	}
	if (*line == '\n') {
		pr->body = line + 1;
		pr->body_len = strlen(pr->body);
	}
}

/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
static void iso_to_amz(const char *iso, char out[17])
{
	size_t j = 0;
	for (const char *p = iso; *p && j < 16; p++)
		if (*p != '-' && *p != ':')
			out[j++] = *p;
	out[j] = '\0';
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static void check_case(const char *name)
{
	json_error_t jerr;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/context.json", datadir(), name);
	json_t *ctx = json_load_file(path, 0, &jerr);
	ck_assert_msg(ctx != NULL, "%s: %s", path, jerr.text);
	json_t *cr = json_object_get(ctx, "credentials");
	char amz[17];
	iso_to_amz(json_string_value(json_object_get(ctx, "timestamp")), amz);

	struct parsed pr;
	parse_request(case_file(name, "request.txt"), &pr);
	struct sigv4_request rq = {
		.method = pr.method,
		.path = pr.path,
		.query = pr.query,
		.headers = pr.h,
		.nheaders = pr.nh,
		.body = pr.body,
		.body_len = pr.body_len,
		.region = json_string_value(json_object_get(ctx, "region")),
		.service = json_string_value(json_object_get(ctx, "service")),
		.amz_date = amz,
		.access_key = json_string_value(json_object_get(cr, "access_key_id")),
		.secret_key = json_string_value(json_object_get(cr, "secret_access_key")),
		.session_token = json_string_value(json_object_get(cr, "token")),
		.content_sha256_header = json_is_true(json_object_get(ctx, "sign_body")),
	};
	struct sigv4_result res;
	ck_assert_int_eq(sigv4_sign(&rq, &res), 0);

	char *want_cr = case_file(name, "header-canonical-request.txt");
	char *want_sts = case_file(name, "header-string-to-sign.txt");
	char *want_sig = case_file(name, "header-signature.txt");
	char *want_req = case_file(name, "header-signed-request.txt");
	chomp(want_sig);
	ck_assert_msg(!strcmp(res.canonical.data, want_cr), "%s canonical:\n%s\n--- want:\n%s", name,
		      res.canonical.data, want_cr);
	ck_assert_msg(!strcmp(res.string_to_sign.data, want_sts), "%s sts:\n%s", name,
		      res.string_to_sign.data);
	ck_assert_msg(!strcmp(res.signature, want_sig), "%s signature %s want %s", name,
		      res.signature, want_sig);
	char *auth = strstr(want_req, "\nAuthorization:");
	ck_assert(auth);
	auth += strlen("\nAuthorization:");
	char *e = strchr(auth, '\n');
	if (e)
		*e = '\0';
	ck_assert_str_eq(res.authorization.data, auth);

	sigv4_result_free(&res);
	free(want_cr);
	free(want_sts);
	free(want_sig);
	free(want_req);
	free(pr.text);
	json_decref(ctx);
}

static const char *const cases[] = {
	"get-vanilla",
	"post-vanilla",
	"get-vanilla-with-session-token",
	"get-vanilla-query-order-key-case",
	"get-vanilla-query-unreserved",
	"get-vanilla-empty-query-key",
	"get-vanilla-utf8-query",
	"post-vanilla-query",
	"post-x-www-form-urlencoded",
	"post-header-key-sort",
	"get-header-value-trim",
	"get-header-key-duplicate",
	"get-slashes-normalized",
	"get-space-normalized",
	"get-relative-relative-normalized",
	"get-utf8",
};

START_TEST(test_vector)
{
	check_case(cases[_i]);
}
END_TEST

START_TEST(test_amz_date)
{
	char d[17];
	sigv4_amz_date(1440938160, d);
	ck_assert_str_eq(d, "20150830T123600Z");
}
END_TEST

START_TEST(test_user_agent_unsigned)
{
	/* botocore never signs User-Agent (proxies rewrite it). */
	struct sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"User-Agent", "cgprof"}};
	struct sigv4_request rq = {.method = "GET", .path = "/", .headers = h, .nheaders = 2,
				   .region = "us-east-1", .service = "service",
				   .amz_date = "20150830T123600Z", .access_key = "AKIDEXAMPLE",
				   .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
	struct sigv4_result res;
	ck_assert_int_eq(sigv4_sign(&rq, &res), 0);
	ck_assert_str_eq(res.signed_headers.data, "host;x-amz-date");
	/* Same as get-vanilla's published signature. */
	ck_assert_str_eq(res.signature,
			 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_result_free(&res);
}
END_TEST

START_TEST(test_bad_input)
{
	struct sigv4_request rq = {.method = "GET", .path = "/", .amz_date = "2015"};
	struct sigv4_result res;
	cg_clearerr();
	ck_assert_int_eq(sigv4_sign(&rq, &res), -EINVAL);
}
END_TEST

static Suite *sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("vectors");
	tcase_add_loop_test(tc, test_vector, 0, (int)CG_ARRAY_LEN(cases));
	tcase_add_test(tc, test_amz_date);
	tcase_add_test(tc, test_user_agent_unsigned);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

static int driver(int argc, char **argv)
{
	if (argc < 12 || strcmp(argv[1], "sign")) {
		fprintf(stderr, "usage: %s sign METHOD PATH QUERY REGION SERVICE AMZDATE AK SK "
				"TOKEN BODYFILE [Name:value...]\n",
			argv[0]);
		return 2;
	}
#define OPT(i) (strcmp(argv[i], "-") ? argv[i] : NULL)
	struct sigv4_header h[64];
	size_t nh = 0;
	for (int i = 12; i < argc && nh < CG_ARRAY_LEN(h); i++) {
		char *c = strchr(argv[i], ':');
		if (!c)
			return 2;
		*c = '\0';
		h[nh].name = argv[i];
		h[nh++].value = c + 1;
	}
	size_t blen = 0;
	char *body = OPT(11) ? slurp(argv[11], &blen) : NULL;
	struct sigv4_request rq = {.method = argv[2], .path = argv[3], .query = OPT(4),
				   .region = argv[5], .service = argv[6], .amz_date = argv[7],
				   .access_key = argv[8], .secret_key = argv[9],
				   .session_token = OPT(10), .body = body, .body_len = blen,
				   .headers = h, .nheaders = nh};
	struct sigv4_result res;
	int r = sigv4_sign(&rq, &res);
	free(body);
	if (r) {
		fprintf(stderr, "sign failed: %d %s\n", r, cg_lasterr());
		return 1;
	}
	printf("%s\n----\n%s\n----\n%s\n", res.canonical.data, res.string_to_sign.data,
	       res.authorization.data);
	sigv4_result_free(&res);
	return 0;
}

#define main sigv4_check_main
CG_CHECK_MAIN(sigv4_suite)
#undef main

int main(int argc, char **argv)
{
	if (argc > 1)
		return driver(argc, argv);
	return sigv4_check_main();
}

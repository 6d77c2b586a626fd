/* util: the u64 map (caches keyed by remote address), growable buffers,
 * the one array-growth rule, small-file reads and the frame label. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "cgprof/sample.h"
#include "cgprof/util.h"

START_TEST(map_put_get_overwrite)
{
	struct cg_map m;
	uint64_t v = 0;
	cg_map_init(&m);
	ck_assert(!cg_map_get(&m, 42, &v)); /* empty: no table yet */
	ck_assert_int_eq(cg_map_put(&m, 42, 7), 0);
	ck_assert(cg_map_get(&m, 42, &v));
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(cg_map_put(&m, 42, 8), 0);
	ck_assert(cg_map_get(&m, 42, &v));
	ck_assert_uint_eq(v, 8);
	ck_assert_uint_eq(m.len, 1);
	ck_assert(!cg_map_get(&m, 43, &v));
	ck_assert(cg_map_get(&m, 42, NULL)); /* presence only */
	cg_map_free(&m);
}
END_TEST

START_TEST(map_key_zero_is_reserved)
{
	struct cg_map m;
	cg_map_init(&m);
	ck_assert_int_eq(cg_map_put(&m, 0, 1), -EINVAL);
	ck_assert(!cg_map_get(&m, 0, NULL));
	ck_assert_uint_eq(m.len, 0);
	cg_map_free(&m);
}
END_TEST

/* Many keys, through several rehashes: every one still maps to its own
 * value, against a plain array kept alongside as the truth. Keys are
 * addresses-like (aligned, clustered) as the samplers use them. */
START_TEST(map_survives_growth)
{
	enum { N = 20000 };
	struct cg_map m;
	uint64_t *truth = malloc(N * sizeof(*truth));
	ck_assert_ptr_nonnull(truth);
	cg_map_init(&m);
	for (uint64_t i = 0; i < N; i++) {
		truth[i] = i * 2654435761u;
		ck_assert_int_eq(cg_map_put(&m, 0x7f0000001000ULL + i * 16, truth[i]), 0);
	}
	ck_assert_uint_eq(m.len, N);
	ck_assert((m.cap & (m.cap - 1)) == 0); /* power of two */
	ck_assert(m.len * 4 <= m.cap * 3);     /* load kept under 3/4 */
	for (uint64_t i = 0; i < N; i++) {
		uint64_t v;
		ck_assert(cg_map_get(&m, 0x7f0000001000ULL + i * 16, &v));
		ck_assert_uint_eq(v, truth[i]);
	}
	ck_assert(!cg_map_get(&m, 0x7f0000001008ULL, NULL)); /* between keys */
	cg_map_free(&m);
	free(truth);
}
END_TEST

START_TEST(map_clear_keeps_working)
{
	struct cg_map m;
	cg_map_init(&m);
	for (uint64_t k = 1; k <= 100; k++)
		ck_assert_int_eq(cg_map_put(&m, k, k), 0);
	cg_map_clear(&m);
	ck_assert_uint_eq(m.len, 0);
	for (uint64_t k = 1; k <= 100; k++)
		ck_assert(!cg_map_get(&m, k, NULL));
	ck_assert_int_eq(cg_map_put(&m, 5, 55), 0);
	uint64_t v;
	ck_assert(cg_map_get(&m, 5, &v));
	ck_assert_uint_eq(v, 55);
	cg_map_free(&m);
}
END_TEST

START_TEST(buf_append_printf)
{
	struct cg_buf b = {0};
	ck_assert_int_eq(cg_buf_append(&b, "abc", 3), 0);
	ck_assert_int_eq(cg_buf_printf(&b, "-%d-%s", 42, "x"), 0);
	ck_assert_uint_eq(b.len, 8);
	ck_assert(memcmp(b.data, "abc-42-x", 8) == 0);
	/* past the first allocation: contents kept */
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(cg_buf_printf(&b, "%04d", i), 0);
	ck_assert_uint_eq(b.len, 8 + 4000);
	ck_assert(memcmp(b.data + 8 + 4 * 999, "0999", 4) == 0);
	ck_assert(b.cap > b.len);
	cg_buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(grow_doubles_from_first)
{
	int *a = NULL;
	size_t cap = 0;
	ck_assert_int_eq(cg_grow(&a, &cap, 1, sizeof(*a), 16), 0);
	ck_assert_uint_eq(cap, 16);
	a[15] = 7;
	ck_assert_int_eq(cg_grow(&a, &cap, 16, sizeof(*a), 16), 0); /* enough: kept */
	ck_assert_uint_eq(cap, 16);
	ck_assert_int_eq(cg_grow(&a, &cap, 17, sizeof(*a), 16), 0);
	ck_assert_uint_eq(cap, 32);
	ck_assert_int_eq(a[15], 7);
	ck_assert_int_eq(cg_grow(&a, &cap, 1000, sizeof(*a), 16), 0);
	ck_assert_uint_eq(cap, 1024);
	ck_assert_int_eq(a[15], 7);
	free(a);
}
END_TEST

START_TEST(grow_overflow_leaves_array)
{
	char *a = NULL;
	size_t cap = 0;
	ck_assert_int_eq(cg_grow(&a, &cap, 10, 1, 8), 0);
	char *before = a;
	ck_assert_int_eq(cg_grow(&a, &cap, SIZE_MAX / 2 + 2, 1, 8), -ENOMEM);
	ck_assert_int_eq(cg_grow(&a, &cap, SIZE_MAX / 8, 16, 8), -ENOMEM);
	ck_assert_ptr_eq(a, before);
	ck_assert_uint_eq(cap, 16);
	free(a);
}
END_TEST

START_TEST(frame_label_forms)
{
	char buf[64];
	ck_assert_int_eq(cg_frame_label(buf, sizeof(buf), "f", "a.py", 3), 10);
	ck_assert_str_eq(buf, "f (a.py:3)");
	ck_assert_int_eq(cg_frame_label(buf, sizeof(buf), "malloc", "libc.so.6", 0), 18);
	ck_assert_str_eq(buf, "malloc (libc.so.6)");
	ck_assert_int_eq(cg_frame_label(buf, sizeof(buf), "x", NULL, 9), 1);
	ck_assert_str_eq(buf, "x");
	/* the length to allocate, without writing */
	ck_assert_int_eq(cg_frame_label(NULL, 0, "f", "a.py", 123), 12);
	/* cut to the buffer, NUL kept */
	ck_assert_int_eq(cg_frame_label(buf, 4, "func", "a.py", 1), 13);
	ck_assert_str_eq(buf, "fun");
}
END_TEST

START_TEST(read_small_file_whole_and_cut)
{
	char path[] = "/tmp/cgprof-test-util-XXXXXX", buf[8];
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello world", 11), 11);
	close(fd);
	char big[64];
	ck_assert_int_eq(cg_read_small_file(path, big, sizeof(big)), 11);
	ck_assert_str_eq(big, "hello world");
	ck_assert_int_eq(cg_read_small_file(path, buf, sizeof(buf)), 7); /* n-1, NUL kept */
	ck_assert_str_eq(buf, "hello w");
	unlink(path);
	ck_assert_int_eq(cg_read_small_file(path, buf, sizeof(buf)), -ENOENT);
	/* a /proc file longer than one read would be in pieces: whole */
	char status[8192];
	int n = cg_read_small_file("/proc/self/status", status, sizeof(status));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(strstr(status, "\nPid:"));
	ck_assert_uint_eq(strlen(status), (size_t)n);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, map_put_get_overwrite);
	tcase_add_test(tc, map_key_zero_is_reserved);
	tcase_add_test(tc, map_survives_growth);
	tcase_add_test(tc, map_clear_keeps_working);
	tcase_add_test(tc, buf_append_printf);
	tcase_add_test(tc, grow_doubles_from_first);
	tcase_add_test(tc, grow_overflow_leaves_array);
	tcase_add_test(tc, frame_label_forms);
	tcase_add_test(tc, read_small_file_whole_and_cut);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(util_suite)

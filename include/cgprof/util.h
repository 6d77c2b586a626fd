/* Small shared helpers: a u64->u64 open-addressing map (caches keyed by a
 * remote address), hashing, growable buffers and time. */
#ifndef CGPROF_UTIL_H
#define CGPROF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

uint64_t cg_hash64(uint64_t x);
uint64_t cg_hash_bytes(const void *p, size_t n, uint64_t seed);

/* Map from nonzero u64 keys to u64 values. Key 0 is reserved. */
struct cg_map {
	uint64_t *keys;
	uint64_t *vals;
	size_t cap;   /* power of two */
	size_t len;
};
void cg_map_init(struct cg_map *m);
void cg_map_free(struct cg_map *m);
bool cg_map_get(const struct cg_map *m, uint64_t key, uint64_t *val);
int cg_map_put(struct cg_map *m, uint64_t key, uint64_t val); /* 0 / -ENOMEM */
void cg_map_clear(struct cg_map *m);

/* Growable byte buffer. */
struct cg_buf {
	char *data;
	size_t len, cap;
};
int cg_buf_reserve(struct cg_buf *b, size_t extra);
int cg_buf_append(struct cg_buf *b, const void *p, size_t n);
int cg_buf_printf(struct cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_buf_free(struct cg_buf *b);

/* Make the array at *arrp (a pointer to the array pointer) of *cap
 * elements of elem bytes hold at least need, doubling from first when
 * empty: the one growth rule of every growable array in cgprof.
 * 0, or -ENOMEM (also on size overflow) with the array untouched. */
int cg_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first);

/* Read a small file (a /proc entry, a key) whole, at most n-1 bytes, NUL
 * terminated. Its length, or -errno. */
int cg_read_small_file(const char *path, char *buf, size_t n);

/* Clocks. */
uint64_t cg_now_ns(void);       /* CLOCK_MONOTONIC */
uint64_t cg_epoch_ms(void);     /* CLOCK_REALTIME */
uint64_t cg_cpu_ns(void);       /* this process's CPU time */

#endif

/* Implementation of the shared helpers in util.h: hashing, the u64 map,
 * the growable buffer and clocks. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/util.h"

uint64_t cg_hash64(uint64_t x)
{
	/* splitmix64 finaliser: cheap, and good enough for addresses. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t cg_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return cg_hash64(h);
}

void cg_map_init(struct cg_map *m) { memset(m, 0, sizeof(*m)); }

void cg_map_free(struct cg_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

void cg_map_clear(struct cg_map *m)
{
	if (m->keys)
		memset(m->keys, 0, m->cap * sizeof(*m->keys));
	m->len = 0;
}

static size_t map_slot(const struct cg_map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i = cg_hash64(key) & mask;
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & mask;
	return i;
}

bool cg_map_get(const struct cg_map *m, uint64_t key, uint64_t *val)
{
	if (!m->cap || !key)
		return false;
	size_t i = map_slot(m, key);
	if (!m->keys[i])
		return false;
	if (val)
		*val = m->vals[i];
	return true;
}

static int map_grow(struct cg_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	struct cg_map n = {calloc(ncap, sizeof(uint64_t)), calloc(ncap, sizeof(uint64_t)), ncap, 0};
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i]) {
			size_t j = map_slot(&n, m->keys[i]);
			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.len++;
		}
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

int cg_map_put(struct cg_map *m, uint64_t key, uint64_t val)
{
	if (!key)
		return -EINVAL;
	if ((m->len + 1) * 4 > m->cap * 3) {
		int r = map_grow(m);
		if (r)
			return r;
	}
	size_t i = map_slot(m, key);
	if (!m->keys[i]) {
		m->keys[i] = key;
		m->len++;
	}
	m->vals[i] = val;
	return 0;
}

int cg_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : (first ? first : 1);
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (elem && ncap > SIZE_MAX / elem)
		return -ENOMEM;
	void *old;
	memcpy(&old, arrp, sizeof(old)); /* arrp points at some T *: copy, not cast */
	void *nw = realloc(old, ncap * elem);
	if (!nw)
		return -ENOMEM;
	memcpy(arrp, &nw, sizeof(nw));
	*cap = ncap;
	return 0;
}

int cg_read_small_file(const char *path, char *buf, size_t n)
{
	if (n == 0)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	int err = 0;
	while (got + 1 < n) {
		ssize_t r = read(fd, buf + got, n - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = -errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return err ? err : (int)got;
}

int cg_buf_reserve(struct cg_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	return cg_grow(&b->data, &b->cap, b->len + extra + 1, 1, 256);
}

int cg_buf_append(struct cg_buf *b, const void *p, size_t n)
{
	int r = cg_buf_reserve(b, n);
	if (r)
		return r;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cg_buf_printf(struct cg_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = cg_buf_reserve(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cg_buf_free(struct cg_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t cg_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t cg_epoch_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000ULL; }
uint64_t cg_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

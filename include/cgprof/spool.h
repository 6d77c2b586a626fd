/* The durable spool: a directory of finished batches, one file each,
 * written crash-safe, private to its owner, optionally AES-256-GCM
 * encrypted, drained by `cgprof upload` under flock. */
#ifndef CGPROF_SPOOL_H
#define CGPROF_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cgprof/config.h"

struct cg_spool;

/* One batch: an encoded CodeGuru agent profile for one profiling group.
 * profile_token is chosen once per batch and reused on every retry. */
struct cg_batch {
	char id[64];              /* file name stem; unique, time-ordered */
	char profiling_group[256];
	char profile_token[40];   /* UUID */
	char content_type[64];    /* "application/json" */
	void *body;
	size_t len;
};

/* Open (creating 0700 if needed) the spool the config names. */
int spool_open(const struct cg_config *c, struct cg_spool **out);
void spool_close(struct cg_spool *s);
/* Write a batch durably (tmp, fsync, rename, fsync dir). Enforces
 * spool_max_mb by dropping the oldest batches, each drop logged. */
int spool_put(struct cg_spool *s, const struct cg_batch *b);

/* A batch the endpoint refused (a 4xx on it): written like spool_put,
 * then set aside in refused/ with why logged, never to be sent again. */
int spool_put_refused(struct cg_spool *s, const struct cg_batch *b, const char *why);

/* Parse and open the bytes of one batch file (untrusted) named id, with
 * the spool's 32-byte key or NULL: what spool_drain() does to each file.
 * 0 with *b filled (b->body malloc'ed), -EBADMSG, or -ENOMEM. */
int spool_parse_batch(const void *data, size_t size, const char *id, const unsigned char *key,
		      struct cg_batch *b);

/* Drain: for each pending batch, oldest first, call send(); delete the
 * batch only when send returns 0 (a 2xx). Stops early when send returns
 * -EAGAIN-style "retry later" errors. Holds an exclusive lock per batch so
 * two drains never send the same one. Returns number left, or negative. */
typedef int (*spool_send_fn)(const struct cg_batch *b, void *arg);
int spool_drain(struct cg_spool *s, spool_send_fn send, void *arg,
		unsigned *sent, unsigned *left, unsigned *refused);

#endif

/* The durable spool: one file per batch, written crash-safe, private to
 * its owner, optionally AES-256-GCM encrypted and bound to its profiling
 * group and id, drained oldest first under a per-batch lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/spool.h"

#define SPOOL_MAGIC "CGPROF-BATCH 2\n"
/* Format 1 sealed only group and id; its batches are still read. */
#define SPOOL_MAGIC_V1 "CGPROF-BATCH 1\n"
#define SPOOL_SUFFIX ".batch"
/* ID.sent beside ID.batch: sent, but the batch could not be removed. */
#define SPOOL_SENT_SUFFIX ".sent"
#define SPOOL_MAX_BATCH (64u << 20) /* a batch larger than this is corrupt */
#define SPOOL_MAX_FILES 100000
#define GCM_NONCE 12
#define GCM_TAG 16

struct cg_spool {
	char dir[1024];
	char group[256];     /* the group this configuration uploads to */
	uint64_t max_bytes;
	bool have_key;
	unsigned char key[32];
	char key_id[17];     /* fingerprint of key: tells "wrong key" from "tampered" */
	unsigned dropped;
};

/* 16 hex digits of SHA-256 over a label and the key: names the key in a
 * batch header without revealing anything usable about it. */
static void key_fingerprint(const unsigned char key[32], char out[17])
{
	static const char label[] = "cgprof spool key id v1";
	unsigned char md[SHA256_DIGEST_LENGTH], in[sizeof(label) + 32];
	memcpy(in, label, sizeof(label));
	memcpy(in + sizeof(label), key, 32);
	SHA256(in, sizeof(in), md);
	OPENSSL_cleanse(in, sizeof(in));
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int mkdir_p(const char *dir)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int load_key(struct cg_spool *s, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cg_fail(-errno, "spool key %s: %s", path, strerror(errno));
	int r = 0;
	if (fstat(fd, &st)) {
		r = cg_fail(-errno, "spool key %s: %s", path, strerror(errno));
	} else if (st.st_mode & 077) {
		r = cg_fail(-EPERM, "spool key %s is readable by group or others (mode %03o); "
				    "chmod 600 it",
			    path, (unsigned)(st.st_mode & 0777));
	} else if (st.st_uid != geteuid()) {
		r = cg_fail(-EPERM, "spool key %s belongs to another user", path);
	} else if (st.st_size != 32 || read(fd, s->key, 32) != 32) {
		r = cg_fail(-EINVAL, "spool key %s must be exactly 32 bytes "
				     "(e.g. head -c 32 /dev/urandom > key)",
			    path);
	}
	close(fd);
	if (!r) {
		s->have_key = true;
		key_fingerprint(s->key, s->key_id);
	}
	return r;
}

int spool_open(const struct cg_config *c, struct cg_spool **out)
{
	struct cg_spool *s = calloc(1, sizeof(*s));
	struct stat st;
	int r;
	if (!s)
		return -ENOMEM;
	config_spool_dir(c, s->dir, sizeof(s->dir));
	snprintf(s->group, sizeof(s->group), "%s", c->profiling_group ? c->profiling_group : "");
	s->max_bytes = (c->spool_max_mb ? c->spool_max_mb : 256) << 20;
	/* "link/" would make lstat follow the link: judge the name itself. */
	for (size_t n = strlen(s->dir); n > 1 && s->dir[n - 1] == '/'; n--)
		s->dir[n - 1] = '\0';
	r = mkdir_p(s->dir);
	if (r) {
		r = cg_fail(r, "spool %s: %s", s->dir, strerror(-r));
		goto fail;
	}
	/* Batches are the user's data: the directory must be theirs alone. */
	if (lstat(s->dir, &st) || !S_ISDIR(st.st_mode)) {
		r = cg_fail(-ENOTDIR, "spool %s is not a directory%s", s->dir,
			    S_ISLNK(st.st_mode) ? " (a symbolic link: name the directory itself)" : "");
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		r = cg_fail(-EPERM, "spool %s belongs to uid %u, not to us (uid %u)", s->dir,
			    (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	if (st.st_mode & 077) {
		r = cg_fail(-EPERM, "spool %s is open to group or others (mode %03o); chmod 700 it",
			    s->dir, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if (c->spool_key_file && (r = load_key(s, c->spool_key_file)))
		goto fail;
	*out = s;
	return 0;
fail:
	free(s);
	return r;
}

void spool_close(struct cg_spool *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s);
}

/* Format 1's AAD: group and id only. */
static int aad_build_v1(char *buf, size_t n, const char *group, const char *id)
{
	int len = snprintf(buf, n, "%s%c%s", group, '\0', id);
	return len < 0 || (size_t)len >= n ? -EINVAL : len;
}

/* Format 2's AAD: the whole header as written (every field: group,
 * token, content type, key id, length) and the id, so editing any of
 * them, renaming the file or moving it to another group fails to open. */
static int aad_build(char *buf, size_t n, const char *hdr, size_t hl, const char *id)
{
	size_t il = strlen(id);
	if (hl + 1 + il > n)
		return -EINVAL;
	memcpy(buf, hdr, hl);
	buf[hl] = '\0';
	memcpy(buf + hl + 1, id, il);
	return (int)(hl + 1 + il);
}

static int gcm(bool enc, const unsigned char key[32], const unsigned char *nonce, const char *aad,
	       int aadlen, const unsigned char *in, int inlen, unsigned char *out,
	       unsigned char *tag)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int len, ok = x != NULL;
	ok = ok && (enc ? EVP_EncryptInit_ex : EVP_DecryptInit_ex)(x, EVP_aes_256_gcm(), NULL, key,
								     nonce);
	if (enc)
		ok = ok && EVP_EncryptUpdate(x, NULL, &len, (const unsigned char *)aad, aadlen) &&
		     EVP_EncryptUpdate(x, out, &len, in, inlen) && EVP_EncryptFinal_ex(x, out + len, &len) &&
		     EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag);
	else
		ok = ok && EVP_DecryptUpdate(x, NULL, &len, (const unsigned char *)aad, aadlen) &&
		     EVP_DecryptUpdate(x, out, &len, in, inlen) &&
		     EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) &&
		     EVP_DecryptFinal_ex(x, out + len, &len) > 0;
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -EBADMSG;
}

static bool id_ok(const char *id)
{
	if (!*id || strlen(id) > 60)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

static bool field_ok(const char *v)
{
	return !strchr(v, '\n') && !strchr(v, '\r');
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

struct entry {
	char name[96];
	off_t size;
};

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* The profiling group a batch file names in its header ("" when it
 * cannot be read): enough to leave other groups' batches alone. */
static void batch_group(int dfd, const char *name, char *out, size_t n)
{
	char buf[2049];
	out[0] = '\0';
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (got <= 0)
		return;
	buf[got] = '\0';
	const char *g = strstr(buf, "\ngroup: ");
	if (!g)
		return;
	g += 8;
	snprintf(out, n, "%.*s", (int)strcspn(g, "\n"), g);
}

/* Batches in the spool, oldest first (ids are time-ordered). With our
 * group set, only that group's: a shared spool (root's /var/spool/cgprof)
 * holds other groups' batches, which are theirs to send, drop or refuse. */
static int list_batches(struct cg_spool *s, struct entry **out, size_t *n)
{
	DIR *d = opendir(s->dir);
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d)) && *n < SPOOL_MAX_FILES) {
		size_t l = strlen(e->d_name);
		if (l <= strlen(SPOOL_SUFFIX) || l >= sizeof((*out)->name) ||
		    strcmp(e->d_name + l - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (s->group[0]) {
			char g[256];
			batch_group(dirfd(d), e->d_name, g, sizeof(g));
			/* Unreadable headers stay in: the drain refuses them. */
			if (g[0] && strcmp(g, s->group))
				continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct entry *ne = realloc(*out, cap * sizeof(*ne));
			if (!ne) {
				closedir(d);
				return -ENOMEM;
			}
			*out = ne;
		}
		memcpy((*out)[*n].name, e->d_name, l + 1); /* l < sizeof(name): checked above */
		(*out)[(*n)++].size = st.st_size;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(**out), entry_cmp);
	return 0;
}

/* Keep the spool under its bound: drop the oldest batches, loudly. */
static void enforce_bound(struct cg_spool *s, const char *keep)
{
	struct entry *e;
	size_t n;
	uint64_t total = 0;
	if (list_batches(s, &e, &n))
		return;
	for (size_t i = 0; i < n; i++)
		total += (uint64_t)e[i].size;
	for (size_t i = 0; i < n && total > s->max_bytes; i++) {
		if (!strcmp(e[i].name, keep))
			continue;
		char path[1200];
		snprintf(path, sizeof(path), "%s/%s", s->dir, e[i].name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		/* a batch being sent right now is not ours to drop */
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (!unlink(path)) {
			total -= (uint64_t)e[i].size;
			s->dropped++;
			cg_warn("spool over %llu MB: dropped the oldest batch %s (%lld bytes, %u dropped "
				"so far)",
				(unsigned long long)(s->max_bytes >> 20), e[i].name, (long long)e[i].size,
				s->dropped);
		}
		close(fd);
	}
	free(e);
}

int spool_put(struct cg_spool *s, const struct cg_batch *b)
{
	char path[1200], tmp[1200], hdr[1024], aad[1200], kid[32] = "";
	unsigned char nonce[GCM_NONCE], tag[GCM_TAG], *ct = NULL;
	int fd = -1, r = 0;

	if (!id_ok(b->id) || !config_valid_group(b->profiling_group) ||
	    !field_ok(b->profile_token) || !field_ok(b->content_type) || b->len > SPOOL_MAX_BATCH)
		return cg_fail(-EINVAL, "batch %s cannot be spooled: malformed", b->id);
	if (s->have_key)
		snprintf(kid, sizeof(kid), "key-id: %s\n", s->key_id);
	snprintf(path, sizeof(path), "%s/%s%s", s->dir, b->id, SPOOL_SUFFIX);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", s->dir, b->id);
	int hl = snprintf(hdr, sizeof(hdr),
			  SPOOL_MAGIC "group: %s\ntoken: %s\ncontent-type: %s\nencrypted: %d\n"
				      "%slength: %zu\n\n",
			  b->profiling_group, b->profile_token, b->content_type, s->have_key, kid,
			  b->len + (s->have_key ? GCM_NONCE + GCM_TAG : 0));
	if (hl < 0 || (size_t)hl >= sizeof(hdr))
		return -EINVAL;
	const void *body = b->body;
	if (s->have_key) {
		int al = aad_build(aad, sizeof(aad), hdr, (size_t)hl, b->id);
		ct = malloc(b->len ? b->len : 1);
		if (al < 0 || !ct || RAND_bytes(nonce, sizeof(nonce)) != 1) {
			r = -ENOMEM;
			goto out;
		}
		r = gcm(true, s->key, nonce, aad, al, b->body, (int)b->len, ct, tag);
		if (r)
			goto out;
		body = ct;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = cg_fail(-errno, "spool %s: %s", tmp, strerror(errno));
		goto out;
	}
	/* temp file, fsync, rename, fsync the directory: after a crash the
	 * batch is either whole under its name or not there at all. */
	if ((r = write_all(fd, hdr, (size_t)hl)) ||
	    (s->have_key && (r = write_all(fd, nonce, sizeof(nonce)))) ||
	    (r = write_all(fd, body, b->len)) || (s->have_key && (r = write_all(fd, tag, sizeof(tag))))) {
		r = cg_fail(r, "spool %s: %s", tmp, strerror(-r));
		goto out;
	}
	if (fsync(fd) || close(fd)) {
		fd = -1;
		r = cg_fail(-errno, "spool %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path)) {
		r = cg_fail(-errno, "spool %s: %s", path, strerror(errno));
		goto out;
	}
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	cg_info("batch %s spooled (%zu bytes%s)", b->id, b->len, s->have_key ? ", encrypted" : "");
	enforce_bound(s, strrchr(path, '/') + 1);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r)
		unlink(tmp);
	free(ct);
	return r;
}

/* Parse and open one batch held in buf[0..size) with buf[size] == '\0'
 * (parsed in place: the header is cut into strings). key_id is the
 * configured key's fingerprint. -ENOKEY: sealed with another key (or no
 * key configured), so the batch is intact for all we know. */
static int parse_batch(char *buf, size_t size, const char *id, const unsigned char *key,
		       const char *key_id, struct cg_batch *b)
{
	char aad[3200], batch_kid[32] = "";
	int version;

	memset(b, 0, sizeof(*b));
	if (size >= strlen(SPOOL_MAGIC) && !memcmp(buf, SPOOL_MAGIC, strlen(SPOOL_MAGIC)))
		version = 2;
	else if (size >= strlen(SPOOL_MAGIC_V1) && !memcmp(buf, SPOOL_MAGIC_V1, strlen(SPOOL_MAGIC_V1)))
		version = 1;
	else
		return -EBADMSG;
	char *end = strstr(buf, "\n\n");
	if (!end || end - buf > 2048)
		return -EBADMSG;
	size_t hl = (size_t)(end - buf) + 2;
	/* The header as written, before it is cut up: format 2 seals it. */
	int al = -EINVAL;
	if (version == 2)
		al = aad_build(aad, sizeof(aad), buf, hl, id);
	*end = '\0';
	char *body = end + 2;
	int enc = -1;
	long long len = -1;
	for (char *line = buf + strlen(SPOOL_MAGIC), *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		char *v = strstr(line, ": ");
		if (!v)
			return -EBADMSG;
		*v = '\0';
		v += 2;
		if (!strcmp(line, "group"))
			snprintf(b->profiling_group, sizeof(b->profiling_group), "%s", v);
		else if (!strcmp(line, "token"))
			snprintf(b->profile_token, sizeof(b->profile_token), "%s", v);
		else if (!strcmp(line, "content-type"))
			snprintf(b->content_type, sizeof(b->content_type), "%s", v);
		else if (!strcmp(line, "encrypted"))
			enc = atoi(v);
		else if (!strcmp(line, "key-id"))
			snprintf(batch_kid, sizeof(batch_kid), "%.16s", v);
		else if (!strcmp(line, "length"))
			len = atoll(v);
	}
	size_t have = size - (size_t)(body - buf);
	if (len < 0 || (size_t)len != have || (enc != 0 && enc != 1) || !b->profile_token[0])
		return -EBADMSG;
	snprintf(b->id, sizeof(b->id), "%.60s", id);
	if (enc && !key)
		return cg_fail(-ENOKEY, "batch %s is encrypted and no spool_key is configured; "
					"kept for a run with its key",
			       id);
	if (enc && batch_kid[0] && strcmp(batch_kid, key_id))
		return cg_fail(-ENOKEY, "batch %s was sealed with another spool key (id %s, the "
					"configured key is %s); kept for a run with its key",
			       id, batch_kid, key_id);
	if (!enc && key) {
		/* With a key, every batch must authenticate: an unencrypted one
		 * may have been planted. */
		return cg_fail(-EBADMSG, "batch %s is not encrypted but spool_key is set", id);
	}
	if (enc) {
		if (have < GCM_NONCE + GCM_TAG)
			return -EBADMSG;
		size_t clen = have - GCM_NONCE - GCM_TAG;
		if (version == 1)
			al = aad_build_v1(aad, sizeof(aad), b->profiling_group, id);
		unsigned char *pt = malloc(clen ? clen : 1);
		if (al < 0 || !pt) {
			free(pt);
			return -EBADMSG;
		}
		if (gcm(false, key, (unsigned char *)body, aad, al,
			(unsigned char *)body + GCM_NONCE, (int)clen, pt,
			(unsigned char *)body + GCM_NONCE + clen)) {
			free(pt);
			return cg_fail(-EBADMSG, "batch %s does not authenticate (altered, renamed or "
						 "from another group)",
				       id);
		}
		b->body = pt;
		b->len = clen;
	} else {
		b->body = malloc(have ? have : 1);
		if (!b->body)
			return -ENOMEM;
		memcpy(b->body, body, have);
		b->len = have;
	}
	return 0;
}

int spool_parse_batch(const void *data, size_t size, const char *id, const unsigned char *key,
		      struct cg_batch *b)
{
	memset(b, 0, sizeof(*b));
	if (size > (size_t)SPOOL_MAX_BATCH + 4096)
		return -EBADMSG;
	char *buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char kid[17] = "";
	if (key)
		key_fingerprint(key, kid);
	int r = parse_batch(buf, size, id, key, kid, b);
	free(buf);
	return r;
}

/* Read and open one batch file (untrusted: it may be damaged, swapped or
 * tampered with). 0 with *b filled (body malloc'ed), or -EBADMSG. */
static int read_batch(struct cg_spool *s, int fd, const char *id, struct cg_batch *b)
{
	struct stat st;
	int r = -EBADMSG;

	memset(b, 0, sizeof(*b));
	if (fstat(fd, &st) || st.st_size < (off_t)strlen(SPOOL_MAGIC) ||
	    st.st_size > (off_t)SPOOL_MAX_BATCH + 4096)
		return -EBADMSG;
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	if (pread(fd, buf, size, 0) == (ssize_t)size) {
		buf[size] = '\0';
		r = parse_batch(buf, size, id, s->have_key ? s->key : NULL, s->key_id, b);
	}
	free(buf);
	return r;
}

/* A batch that cannot be opened, or that the endpoint refused, is set
 * aside (never uploaded, never silently deleted) for a person to look
 * at. -errno when it could not be moved: then it must not be sent. */
static int quarantine(struct cg_spool *s, const char *name, const char *why)
{
	char from[1200], to[1300], qdir[1100];
	snprintf(qdir, sizeof(qdir), "%s/refused", s->dir);
	if (mkdir(qdir, 0700) && errno != EEXIST)
		return cg_fail(-errno, "batch %s refused (%s) but %s cannot be made: %s", name, why,
			       qdir, strerror(errno));
	snprintf(from, sizeof(from), "%s/%s", s->dir, name);
	snprintf(to, sizeof(to), "%s/%s", qdir, name);
	if (rename(from, to))
		return cg_fail(-errno, "batch %s refused (%s) but cannot be moved to %s: %s", name,
			       why, qdir, strerror(errno));
	cg_error("batch %s refused and moved to %s: %s", name, qdir, why);
	return 0;
}

/* Before anything is sent: a batch we could not delete after the
 * endpoint took it would be sent again by every later run. Creating and
 * removing a file proves we can (a read-only mount, an immutable or
 * foreign directory fail here). */
static int spool_check_writable(struct cg_spool *s)
{
	char probe[1200];
	snprintf(probe, sizeof(probe), "%s/.probe-%d", s->dir, (int)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cg_fail(-errno, "spool %s is not writable (%s): a sent batch could not be "
				       "removed, so nothing is sent",
			       s->dir, strerror(errno));
	close(fd);
	if (unlink(probe))
		return cg_fail(-errno, "spool %s: files cannot be removed (%s): a sent batch would "
				       "be sent again, so nothing is sent",
			       s->dir, strerror(errno));
	return 0;
}

/* What a drain has done so far. */
struct drain {
	unsigned sent, left, refused, nokey;
	int err;   /* what the drain returns (0: the count left) */
	bool stop; /* keep the rest for the next run */
};

/* Open and lock a batch for this drain: -1 when it is not ours to send
 * (another drain sent and deleted it meanwhile, holds it now, or sent it
 * while we waited: no links left). */
static int batch_claim(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	struct stat st;
	if (flock(fd, LOCK_EX | LOCK_NB) || fstat(fd, &st) || st.st_nlink == 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Accepted by the endpoint in an earlier run that could not remove it:
 * never send it again; remove it now if we can. true when so. */
static bool batch_sent_before(const char *path, const char *mark, const char *name)
{
	if (access(mark, F_OK))
		return false;
	if (!unlink(path))
		unlink(mark);
	else
		cg_warn("batch %s was sent already and still cannot be removed (%s); not sent again",
			name, strerror(errno));
	return true;
}

/* The endpoint took it: remove it. Sending it again would repeat it, so
 * one that cannot be removed is marked sent (later drains skip it) and
 * the drain stops here. */
static void batch_sent(const struct cg_spool *s, const char *path, const char *mark,
		       const char *name, struct drain *d)
{
	d->sent++;
	if (!unlink(path))
		return;
	int err = errno;
	int mfd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (mfd >= 0)
		close(mfd);
	d->err = cg_fail(-err, "batch %s was sent but cannot be removed from %s (%s); %s, stopping",
			 name, s->dir, strerror(err),
			 mfd >= 0 ? "marked as sent so it is never sent again"
				  : "it cannot even be marked as sent");
	d->stop = true;
}

/* One that cannot be opened, or that the endpoint refused alone: set
 * aside, and the drain goes on; left in place it would block every
 * drain, so one that cannot be moved stops it. */
static void batch_refuse(struct cg_spool *s, const char *name, struct drain *d)
{
	int q = quarantine(s, name, cg_lasterr()[0] ? cg_lasterr() : "malformed");
	cg_clearerr();
	if (!q) {
		d->refused++;
		return;
	}
	cg_error("%s", cg_lasterr());
	d->err = q;
	d->left++;
	d->stop = true;
}

/* One batch: claim it, read it, send it, then remove, keep or set it
 * aside. */
static void drain_one(struct cg_spool *s, const char *name, spool_send_fn send, void *arg,
		      struct drain *d)
{
	char path[1200], id[96], mark[1200];
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	snprintf(id, sizeof(id), "%.*s", (int)(strlen(name) - strlen(SPOOL_SUFFIX)), name);
	snprintf(mark, sizeof(mark), "%s/%s%s", s->dir, id, SPOOL_SENT_SUFFIX);
	int fd = batch_claim(path);
	if (fd < 0)
		return;
	if (batch_sent_before(path, mark, name))
		goto out;
	struct cg_batch b;
	cg_clearerr();
	int r = read_batch(s, fd, id, &b);
	if (r == 0 && s->group[0] && strcmp(b.profiling_group, s->group)) {
		/* The header said ours, the sealed copy says otherwise: not
		 * ours to send, nor to move. */
		free(b.body);
		goto out;
	}
	if (r == -ENOKEY) {
		/* Intact as far as we can tell, and only the right key opens
		 * it: leave it where it is and say so. */
		cg_error("%s", cg_lasterr());
		cg_clearerr();
		d->left++;
		d->nokey++;
		goto out;
	}
	if (r == 0) {
		r = send(&b, arg);
		free(b.body);
		if (r == 0) {
			batch_sent(s, path, mark, name, d);
			goto out;
		}
		if (r != -EBADMSG) {
			/* retry later: keep the rest for the next run; a
			 * configuration error will fail the same way for all */
			d->left++;
			d->stop = true;
			if (r != -EAGAIN)
				d->err = r;
			goto out;
		}
		/* the endpoint refused this batch alone */
	}
	batch_refuse(s, name, d);
out:
	close(fd);
}

int spool_drain(struct cg_spool *s, spool_send_fn send, void *arg, unsigned *sent,
		unsigned *left, unsigned *refused)
{
	struct entry *e = NULL;
	size_t n = 0;
	struct drain d = {0};
	int r = list_batches(s, &e, &n);
	if (r)
		return cg_fail(r, "spool %s: %s", s->dir, strerror(-r));
	if (n && (d.err = spool_check_writable(s))) {
		d.left = (unsigned)n;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (d.stop)
			d.left++;
		else
			drain_one(s, e[i].name, send, arg, &d);
	}
	if (!d.err && d.nokey)
		d.err = cg_fail(-ENOKEY, "%u batch(es) sealed with another spool key (or none "
					 "given) left in %s: run with the key they were sealed with",
				d.nokey, s->dir);
out:
	free(e);
	if (sent)
		*sent = d.sent;
	if (left)
		*left = d.left;
	if (refused)
		*refused = d.refused;
	return d.err ? d.err : (int)d.left;
}

int spool_put_refused(struct cg_spool *s, const struct cg_batch *b, const char *why)
{
	char name[96];
	int r = spool_put(s, b);
	if (r)
		return r;
	snprintf(name, sizeof(name), "%s%s", b->id, SPOOL_SUFFIX);
	return quarantine(s, name, why);
}

/* Effective settings: defaults, /etc/cgprof/cgprof.conf, the user's file,
 * CGPROF_* environment, then options; each value remembers where it came
 * from, and every bad key or value is an error that names its place. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/config.h"
#include "cgprof/log.h"

#define CONFIG_SYSTEM_FILE "/etc/cgprof/cgprof.conf"
#define CONFIG_LINE_MAX 4096

enum key_type { KT_STRING, KT_U32, KT_U64, KT_BOOL };

struct key_def {
	const char *key;
	enum key_type type;
	size_t off;          /* field in struct cg_config */
	uint64_t lo, hi;     /* numbers: allowed range */
	bool secret;         /* masked by config_print */
	const char *help;
};

#define F(field) offsetof(struct cg_config, field)
static const struct key_def keys[] = {
	{"profiling_group", KT_STRING, F(profiling_group), 0, 0, false, "profiling group name"},
	{"region", KT_STRING, F(region), 0, 0, false, "AWS region"},
	{"endpoint", KT_STRING, F(endpoint), 0, 0, false, "https URL of the endpoint"},
	{"reporting_interval", KT_U32, F(reporting_interval_s), 1, 86400, false, "seconds"},
	{"ca_file", KT_STRING, F(ca_file), 0, 0, false, "CA bundle path"},
	{"pin_sha256", KT_STRING, F(pin_sha256), 0, 0, false, "base64 SHA-256 of the key"},
	{"spool_dir", KT_STRING, F(spool_dir), 0, 0, false, "directory"},
	{"spool_max_mb", KT_U64, F(spool_max_mb), 1, 1048576, false, "megabytes"},
	{"spool_key", KT_STRING, F(spool_key_file), 0, 0, false, "key file path"},
	{"no_upload", KT_BOOL, F(no_upload), 0, 1, false, "true or false"},
	{"syslog", KT_BOOL, F(syslog), 0, 1, false, "true or false"},
	{"rate", KT_U32, F(rate_hz), 1, 100000, false, "samples per second"},
	{"max_depth", KT_U32, F(max_depth), 1, 65536, false, "frames"},
};
#undef F

static const struct key_def *key_find(const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].key, key))
			return &keys[i];
	return NULL;
}

void config_init(struct cg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->reporting_interval_s = 300;
	c->spool_max_mb = 256;
	c->rate_hz = 0;   /* 0: the runtime's default (100 Hz, lower for a JVM) */
	c->max_depth = 2048;
}

void config_free(struct cg_config *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].type == KT_STRING) {
			char **p = (char **)((char *)c + keys[i].off);
			free(*p);
			*p = NULL;
		}
}

static void note_origin(struct cg_config *c, const char *key, enum cg_origin origin,
			const char *where)
{
	int i;
	for (i = 0; i < c->nsrc; i++)
		if (!strcmp(c->src[i].key, key))
			break;
	if (i == c->nsrc) {
		if (c->nsrc == CG_CONFIG_MAX_KEYS)
			return;
		c->nsrc++;
	}
	c->src[i].key = key_find(key)->key; /* static storage */
	c->src[i].origin = origin;
	snprintf(c->src[i].where, sizeof(c->src[i].where), "%s", where ? where : "");
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
	    !strcasecmp(v, "on")) {
		*out = true;
		return true;
	}
	if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
	    !strcasecmp(v, "off")) {
		*out = false;
		return true;
	}
	return false;
}

int config_set(struct cg_config *c, const char *key, const char *value, enum cg_origin origin,
	       const char *where)
{
	const struct key_def *k = key_find(key);
	void *field;
	if (!k)
		return cg_fail(-EINVAL, "%s: unknown setting '%s'", where ? where : "config", key);
	field = (char *)c + k->off;
	switch (k->type) {
	case KT_STRING: {
		if (!*value)
			return cg_fail(-EINVAL, "%s: %s must not be empty", where, key);
		if (!strcmp(key, "endpoint") && !config_valid_endpoint(value))
			return cg_fail(-EINVAL, "%s: endpoint must be an https:// URL (TLS is always on)",
				       where);
		/* Checked here so every mode (--no-upload too) sees the same
		 * rule: the name becomes part of a URL and of spooled batches. */
		if (!strcmp(key, "profiling_group") && !config_valid_group(value))
			return cg_fail(-EINVAL, "%s: profiling group '%.300s' is invalid: use 1-255 "
					       "letters, digits, _ or -",
				       where, value);
		if (!strcmp(key, "region") && !config_valid_region(value))
			return cg_fail(-EINVAL, "%s: region '%.100s' is invalid: expected a name like "
					       "us-east-1 (letters, digits and -)",
				       where, value);
		char *d = strdup(value);
		if (!d)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = d;
		break;
	}
	case KT_U32:
	case KT_U64: {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' || v < k->lo || v > k->hi)
			return cg_fail(-EINVAL, "%s: %s must be a whole number from %llu to %llu (%s), not '%s'",
				       where, key, (unsigned long long)k->lo, (unsigned long long)k->hi,
				       k->help, value);
		if (k->type == KT_U32)
			*(uint32_t *)field = (uint32_t)v;
		else
			*(uint64_t *)field = (uint64_t)v;
		break;
	}
	case KT_BOOL: {
		bool b;
		if (!parse_bool(value, &b))
			return cg_fail(-EINVAL, "%s: %s must be true or false, not '%s'", where, key,
				       value);
		*(bool *)field = b;
		break;
	}
	}
	note_origin(c, key, origin, where);
	return 0;
}

bool config_valid_group(const char *g)
{
	size_t n = g ? strlen(g) : 0;
	if (n < 1 || n > 255)
		return false;
	for (const char *p = g; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-')
			return false;
	return true;
}

bool config_valid_region(const char *r)
{
	size_t n = r ? strlen(r) : 0;
	bool digits_only = true;
	if (n < 1 || n > 63 || r[0] == '-' || r[n - 1] == '-')
		return false;
	for (const char *p = r; *p; p++) {
		bool digit = *p >= '0' && *p <= '9';
		if (!digit && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && *p != '-')
			return false;
		digits_only &= digit;
	}
	return !digits_only;
}

bool config_valid_endpoint(const char *url)
{
	/* Case matters to nobody but an attacker hoping for a second
	 * spelling of "http". */
	if (!url || strncmp(url, "https://", 8))
		return false;
	const char *h = url + 8;
	return *h && *h != '/' && *h != '?' && *h != '#' && !strpbrk(url, " \t\r\n");
}

/* As ssh does for its configuration: a file that sets the endpoint and the
 * CA must be writable only by its owner, who is root or us, and so must
 * every directory above it (a sticky one such as /tmp excepted, where
 * others cannot replace our entries). Otherwise someone else chooses
 * where our signed requests go. */
static int config_file_safe(const char *path, int fd)
{
	struct stat st;
	char dir[PATH_MAX];
	uid_t me = geteuid();

	if (fstat(fd, &st))
		return cg_fail(-errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cg_fail(-EPERM, "%s: not a regular file; refusing it", path);
	if (st.st_uid != 0 && st.st_uid != me)
		return cg_fail(-EPERM, "%s: owned by uid %u, not by root or uid %u; refusing it",
			       path, (unsigned)st.st_uid, (unsigned)me);
	if (st.st_mode & 022)
		return cg_fail(-EPERM, "%s: writable by group or others (mode %03o); refusing it "
				       "(chmod go-w)",
			       path, (unsigned)(st.st_mode & 0777));
	if (!realpath(path, dir))
		return cg_fail(-errno, "%s: %s", path, strerror(errno));
	/* Bounded: each round removes one component of an absolute path. */
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &st))
			return cg_fail(-errno, "%s: %s", dir, strerror(errno));
		if (st.st_uid != 0 && st.st_uid != me)
			return cg_fail(-EPERM, "%s: directory %s is owned by uid %u, not by root or uid "
					       "%u; refusing the file",
				       path, dir, (unsigned)st.st_uid, (unsigned)me);
		if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
			return cg_fail(-EPERM, "%s: directory %s is writable by group or others (mode "
					       "%03o); refusing the file",
				       path, dir, (unsigned)(st.st_mode & 0777));
		if (slash == dir)
			break;
	}
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* "key = value" lines; '#' starts a comment line. A missing file is fine. */
static int config_load_file(struct cg_config *c, const char *path, enum cg_origin origin)
{
	FILE *f = fopen(path, "re");
	char line[CONFIG_LINE_MAX], where[160];
	int lineno = 0, r = 0;
	struct stat st;
	/* Absent is fine; so is a path we cannot even look into (another
	 * user's home, as when profiling under sudo -u). A file we can see
	 * but not read is an error. */
	if (!f && (errno == ENOENT || errno == ENOTDIR || (errno == EACCES && stat(path, &st))))
		return 0;
	if (!f)
		return cg_fail(-errno, "%s: %s", path, strerror(errno));
	if ((r = config_file_safe(path, fileno(f)))) {
		fclose(f);
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			r = cg_fail(-EINVAL, "%s: line too long", where);
			break;
		}
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			r = cg_fail(-EINVAL, "%s: expected 'key = value'", where);
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		/* quotes are allowed around a value */
		size_t vl = strlen(val);
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = '\0';
			val++;
		}
		r = config_set(c, key, val, origin, where);
		if (r)
			break;
	}
	fclose(f);
	return r;
}

static const char *user_config_path(char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && *xdg) {
		snprintf(buf, n, "%s/cgprof/config", xdg);
		return buf;
	}
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return NULL;
	snprintf(buf, n, "%s/.config/cgprof/config", home);
	return buf;
}

int config_load(struct cg_config *c, const char *system_file, const char *user_file)
{
	char ubuf[PATH_MAX];
	int r = config_load_file(c, system_file ? system_file : CONFIG_SYSTEM_FILE,
				 CG_ORIGIN_SYSTEM_FILE);
	if (r)
		return r;
	const char *u = user_file ? user_file : user_config_path(ubuf, sizeof(ubuf));
	if (user_file && access(user_file, R_OK))
		return cg_fail(-errno, "%s: %s", user_file, strerror(errno));
	if (u && (r = config_load_file(c, u, CG_ORIGIN_USER_FILE)))
		return r;
	/* CGPROF_<KEY> for every key, e.g. CGPROF_PROFILING_GROUP. */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char name[64];
		size_t j = 0;
		j = (size_t)snprintf(name, sizeof(name), "CGPROF_");
		for (const char *k = keys[i].key; *k && j + 1 < sizeof(name); k++)
			name[j++] = (char)(*k >= 'a' && *k <= 'z' ? *k - 32 : *k);
		name[j] = '\0';
		const char *v = getenv(name);
		if (v && (r = config_set(c, keys[i].key, v, CG_ORIGIN_ENV, name)))
			return r;
	}
	return 0;
}

const char *config_spool_dir(const struct cg_config *c, char *buf, size_t n)
{
	if (c->spool_dir) {
		snprintf(buf, n, "%s", c->spool_dir);
		return buf;
	}
	if (geteuid() == 0) {
		snprintf(buf, n, "/var/spool/cgprof");
		return buf;
	}
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(buf, n, "%s/cgprof", xdg);
	else
		snprintf(buf, n, "%s/.local/state/cgprof", home && *home ? home : "/tmp");
	return buf;
}

void config_print(const struct cg_config *c, FILE *out)
{
	static const char *const origin_name[] = {"default", "system file", "user file",
						  "environment", "option", "ConfigureAgent"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key_def *k = &keys[i];
		const void *field = (const char *)c + k->off;
		char val[512];
		switch (k->type) {
		case KT_STRING: {
			const char *s = *(char *const *)field;
			if (!strcmp(k->key, "spool_dir") && !s) {
				char b[512];
				snprintf(val, sizeof(val), "%s", config_spool_dir(c, b, sizeof(b)));
			} else {
				snprintf(val, sizeof(val), "%s", s ? (k->secret ? "********" : s) : "(unset)");
			}
			break;
		}
		case KT_U32:
			if (!strcmp(k->key, "rate") && !*(const uint32_t *)field)
				snprintf(val, sizeof(val), "(runtime default)");
			else
				snprintf(val, sizeof(val), "%u", *(const uint32_t *)field);
			break;
		case KT_U64:
			snprintf(val, sizeof(val), "%llu", (unsigned long long)*(const uint64_t *)field);
			break;
		case KT_BOOL:
			snprintf(val, sizeof(val), "%s", *(const bool *)field ? "true" : "false");
			break;
		}
		const char *origin = "default", *where = "";
		for (int j = 0; j < c->nsrc; j++)
			if (!strcmp(c->src[j].key, k->key)) {
				origin = origin_name[c->src[j].origin];
				where = c->src[j].where;
			}
		fprintf(out, "%-20s %-40s %s%s%s%s\n", k->key, val, origin, *where ? " (" : "", where,
			*where ? ")" : "");
	}
}

/* Effective settings and where each came from: built-in defaults, then
 * /etc/cgprof/cgprof.conf, then ~/.config/cgprof/config, then environment,
 * then command-line options (later wins). */
#ifndef CGPROF_CONFIG_H
#define CGPROF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum cg_origin {
	CG_ORIGIN_DEFAULT = 0,
	CG_ORIGIN_SYSTEM_FILE,
	CG_ORIGIN_USER_FILE,
	CG_ORIGIN_ENV,
	CG_ORIGIN_OPTION,
	CG_ORIGIN_AGENT, /* ConfigureAgent reply */
};

#define CG_CONFIG_MAX_KEYS 32

struct cg_config {
	/* upload */
	char *profiling_group;
	char *region;
	char *endpoint;          /* NULL: the region's CodeGuru endpoint */
	uint32_t reporting_interval_s; /* default 300 */
	char *ca_file;
	char *pin_sha256;        /* base64 sha256 of the server's public key */
	/* spool */
	char *spool_dir;         /* NULL: /var/spool/cgprof (root) or $XDG_STATE_HOME/cgprof */
	uint64_t spool_max_mb;   /* default 256 */
	char *spool_key_file;    /* AES-256-GCM key, 32 bytes */
	bool no_upload;          /* spool only */
	bool syslog;
	/* sampling defaults a config file may set */
	uint32_t rate_hz;        /* default 100 */
	uint32_t max_depth;      /* default 2048 */

	/* Provenance: per key, its origin and "file:line" (or env var name). */
	struct {
		const char *key;
		enum cg_origin origin;
		char where[128];
	} src[CG_CONFIG_MAX_KEYS];
	int nsrc;
};

/* Defaults only. */
void config_init(struct cg_config *c);
void config_free(struct cg_config *c);
/* Files then environment. A missing file is fine; an unknown key or a bad
 * value is an error naming file and line (cg_fail). system_file/user_file
 * NULL mean the standard paths (tests pass their own). */
int config_load(struct cg_config *c, const char *system_file, const char *user_file);
/* Set one key ("profiling_group", "reporting_interval", ...) from text,
 * validating it; where is "file:line", "ENV_NAME" or "--option". */
int config_set(struct cg_config *c, const char *key, const char *value,
	       enum cg_origin origin, const char *where);
/* `cgprof config`: every key, its value (secrets masked) and origin. */
void config_print(const struct cg_config *c, FILE *out);
/* CodeGuru's profiling group rule: 1-255 of [A-Za-z0-9_-]. */
bool config_valid_group(const char *g);
/* An AWS region as it may stand in a host name: 1-63 of [A-Za-z0-9-], no
 * '-' at either end, not all digits (botocore's rule). */
bool config_valid_region(const char *r);
/* "https://" followed by a non-empty authority; any other scheme (or a
 * missing one) is refused, whatever the source of the URL. */
bool config_valid_endpoint(const char *url);
/* The spool directory in force (computed default if unset). */
const char *config_spool_dir(const struct cg_config *c, char *buf, size_t n);

#endif

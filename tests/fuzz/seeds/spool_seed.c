/* Makes the spool seeds of tests/fuzz/corpus/spool with the real writer
 * (spool_put), plain and sealed with the key fuzz_spool.c uses:
 *   cc -Iinclude tests/fuzz/seeds/spool_seed.c build/libcgprof.a \
 *      $(pkg-config --libs openssl jansson libcurl zlib libelf libunwind-ptrace) -o /tmp/s
 *   /tmp/s DIR   (writes DIR/plain/ and DIR/sealed/) */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/config.h"
#include "cgprof/spool.h"

static const unsigned char key[32] = "cgprof-fuzz-spool-key-32-bytes!!";
static const char body[] =
	"{\"start\":1700000000000,\"end\":1700000300000,\"agentMetadata\":{\"sampleWeights\":"
	"{\"WALL_TIME\":1.0}},\"callgraph\":{\"children\":{\"main\":{\"counts\":{\"WALL_TIME\":"
	"3},\"children\":{\"work (app.py)\":{\"counts\":{\"WALL_TIME\":2}}}}}}}";

static int put(const char *dir, const char *keyfile)
{
	struct cg_config c;
	struct cg_spool *s;
	config_init(&c);
	c.spool_dir = strdup(dir);
	if (keyfile)
		c.spool_key_file = strdup(keyfile);
	mkdir(dir, 0700);
	if (spool_open(&c, &s))
		return 1;
	struct cg_batch b = {.id = "20240101T000000Z-1", .profiling_group = "my-service",
			     .profile_token = "6f1c2a3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f",
			     .content_type = "application/json", .body = (void *)body,
			     .len = sizeof(body) - 1};
	int r = spool_put(s, &b);
	spool_close(s);
	config_free(&c);
	return r != 0;
}

int main(int argc, char **argv)
{
	char p[1024], k[1024];
	if (argc != 2)
		return 2;
	mkdir(argv[1], 0700);
	snprintf(k, sizeof(k), "%s/key", argv[1]);
	int fd = open(k, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, key, 32) != 32)
		return 1;
	close(fd);
	snprintf(p, sizeof(p), "%s/plain", argv[1]);
	if (put(p, NULL))
		return 1;
	snprintf(p, sizeof(p), "%s/sealed", argv[1]);
	return put(p, k);
}

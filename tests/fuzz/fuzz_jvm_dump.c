/* Fuzz the JVM thread dump parser (jvm_dump_parse, the text of a
 * Thread.print / jstack reply) and the VM version it reads. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jvm_priv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static void check(const struct jvm_dump *d)
{
	(void)jvm_major_version(d->vm);
	for (size_t i = 0; i < d->nthreads; i++) {
		const struct jvm_thread *th = &d->threads[i];
		if ((size_t)th->first + th->nframes > d->nframes)
			__builtin_trap();
		(void)strlen(th->name);
		for (uint32_t k = 0; k < th->nframes; k++) {
			const struct cg_frame *f = &d->frames[th->first + k];
			if (f->name)
				(void)strlen(f->name);
			if (f->file)
				(void)strlen(f->file);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jvm_dump d = {0};
	/* parsed in place and NUL-terminated: two copies, one per depth */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	static const uint32_t depths[] = {0, 3};
	for (size_t i = 0; i < 2; i++) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (jvm_dump_parse(text, size, depths[i], &d) == 0)
			check(&d);
	}
	jvm_dump_free(&d);
	free(text);
	return 0;
}

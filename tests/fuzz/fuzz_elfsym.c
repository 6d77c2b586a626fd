/* Fuzz the ELF symbol reader (elfsym_table_load_mem: .symtab, .dynsym,
 * program headers, build-id notes) and lookups in the table it builds. */
#include <stdlib.h>
#include <string.h>

#include "cgprof/native.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libelf may write to the image: give it a copy. */
	void *img = malloc(size ? size : 1);
	if (!img)
		return 0;
	memcpy(img, data, size);
	struct elfsym_table *tab;
	cg_clearerr();
	if (elfsym_table_load_mem(img, size, &tab) == 0) {
		uint64_t off, vaddr;
		(void)strlen(elfsym_table_build_id(tab));
		/* addresses the input itself suggests, and a few fixed ones */
		for (size_t i = 0; i + 8 <= size && i < 512; i += 8) {
			uint64_t a;
			memcpy(&a, data + i, 8);
			const char *name = elfsym_table_find(tab, a, &off);
			if (name && elfsym_table_addr(tab, name, &vaddr) == 0)
				(void)elfsym_table_find(tab, vaddr, NULL);
		}
		static const uint64_t fixed[] = {0, 1, 0x1000, 0x1139, UINT64_MAX};
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			(void)elfsym_table_find(tab, fixed[i], &off);
		(void)elfsym_table_addr(tab, "main", &vaddr);
		(void)elfsym_table_count(tab);
		elfsym_table_free(tab);
	}
	free(img);
	return 0;
}

/* Merging a thread's native stack with its Python stack: each eval-loop
 * frame becomes the Python frames it runs; a mismatch is refused. */
#include <errno.h>
#include <string.h>

#include "cgprof/native.h"

/* An eval frame directly above (root-ward of) another eval frame of a
 * different name is a wrapper of the same invocation (PyEval_EvalFrameEx
 * calling _PyEval_EvalFrameDefault): it runs no Python frames of its own.
 * Two adjacent frames of the same name are two invocations. */
static bool is_wrapper(const struct native_frame *nat, uint32_t i)
{
	if (i == 0 || !(nat[i - 1].flags & NATIVE_F_EVAL))
		return false;
	const char *a = nat[i].f.name, *b = nat[i - 1].f.name;
	return a && b && strcmp(a, b) != 0;
}

int native_merge(const struct native_frame *nat, uint32_t nnat, const struct cg_frame *py,
		 const bool *py_entry, uint32_t npy, bool cut_root, struct cg_frame *out,
		 uint32_t max, uint32_t *nout, bool *truncated)
{
	uint32_t pi = 0, k = 0;
	bool cut = false, outside_leafward = false;
	const char *interp = NULL; /* object of the eval loop */

	for (uint32_t i = 0; i < nnat && !interp; i++)
		if (nat[i].flags & NATIVE_F_EVAL)
			interp = nat[i].f.file;

	*nout = 0;
	*truncated = false;
	for (uint32_t i = 0; i < nnat; i++) {
		const struct native_frame *fr = &nat[i];
		if (fr->flags & NATIVE_F_EVAL) {
			if (is_wrapper(nat, i))
				continue;
			/* This invocation runs Python frames pi.. up to and
			 * including the next entry frame. */
			uint32_t j = pi;
			while (j < npy && !py_entry[j])
				j++;
			if (j >= npy && cut_root) {
				/* the Python walk stopped short: what is left is the
				 * leaf side of this group, and the end of the stack */
				for (; pi < npy; pi++) {
					if (k < max)
						out[k++] = py[pi];
				}
				cut = true;
				break;
			}
			if (j >= npy)
				return -EPROTO; /* more eval frames than Python groups */
			for (; pi <= j; pi++) {
				if (k < max)
					out[k++] = py[pi];
				else
					cut = true;
			}
			outside_leafward = true;
			continue;
		}
		if (fr->flags & NATIVE_F_PLUMBING)
			continue;
		bool in_interp = interp && fr->f.file && !strcmp(fr->f.file, interp);
		if (in_interp && (fr->flags & NATIVE_F_UNKNOWN) && outside_leafward)
			continue;
		if (!in_interp)
			outside_leafward = true;
		if (k < max)
			out[k++] = fr->f;
		else
			cut = true;
	}
	if (pi != npy) {
		if (!cut_root)
			return -EPROTO; /* Python frames no eval frame accounts for */
		cut = true; /* native side cut: its root-ward Python frames go too */
	}
	*nout = k;
	*truncated = cut;
	return 0;
}

/* One system call for a thread's whole sample.
 *
 * A thread running the same code keeps its frames where they were: the
 * same data-stack chunk, the same C-stack shim, the same code objects. So
 * the regions of target memory its last whole walk read (its "plan") are
 * read again at its next sample in one process_vm_readv, twice over: copy
 * A, then copy B of the regions that hold frames and of the thread's
 * head word. The walk runs over copy A; copy B is the memory after it,
 * which verify_walk would otherwise read in a second call. A region the
 * walk needs and the plan lacks is read as before and joins the next
 * plan; a plan whose memory moved simply misses.
 *
 * Regions are of two kinds: chain regions (the head word, the 3.11-3.12
 * cframe word, the windows of the frames walked, runs of them merged),
 * copied twice and searched by address range, and code-object windows,
 * copied once, after both, and found by exact address. A plan holds the
 * bytes the walk used, not the blocks it read them in: the less copy A
 * copies, the closer in time its frames are to the head word read with
 * them, and copy B to copy A. The plan is a guess about memory, never trusted: everything
 * read from it is checked as any read is. */
#ifndef CGPROF_PY_PREFETCH_H
#define CGPROF_PY_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct target;
struct py_prefetch;

/* PY_PF_HEAD: a word the walk starts from (the thread state's frame
 * pointer, a 3.11-3.12 cframe's), read once, after copy A and before copy
 * B. PY_PF_LEAF: the walk's first frame, a chain region of its own (it
 * changes first); the frames under it join the chain region before them
 * when they lie close (one copy for a run of frames in a data-stack
 * chunk). */
enum py_pf_kind { PY_PF_CHAIN, PY_PF_LEAF, PY_PF_HEAD, PY_PF_CODE };

int py_pf_new(struct target *t, struct py_prefetch **out);
void py_pf_free(struct py_prefetch *pf);

/* A round begins: plans of threads not sampled for a while go. */
void py_pf_round(struct py_prefetch *pf);

/* Fetch the plan of the thread at tstate, if it has one: copy A of every
 * region, copy B of the chain regions and of the head word at head_addr.
 * The head word comes first in copy A too: the walk starts from it.
 * Recording of this walk's regions starts either way. true: a snapshot
 * is active. */
bool py_pf_fetch(struct py_prefetch *pf, uint64_t tstate, uint64_t head_addr);

/* Bytes [addr, addr + len) from copy A; NULL when the snapshot holds no
 * such range (or none is active). A hit is recorded for the next plan. */
const uint8_t *py_pf_get(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k);

/* A region the walk read from the target itself: part of the next plan. */
void py_pf_note(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k);

/* The word at addr in copy B: 0, or -ENOENT when copy B does not hold it. */
int py_pf_after(struct py_prefetch *pf, uint64_t addr, uint64_t *v);

bool py_pf_active(const struct py_prefetch *pf);

/* The snapshot ends (a retry reads anew). Recording restarts. */
void py_pf_drop(struct py_prefetch *pf);

/* The walk of tstate is over: whole, its regions become the thread's
 * plan; not whole, the thread keeps no plan. */
void py_pf_done(struct py_prefetch *pf, uint64_t tstate, bool whole);

#endif

/* One system call for a thread's whole sample.
 *
 * A thread running the same code keeps its frames where they were: the
 * same data-stack chunk, the same C-stack shim, the same code objects. So
 * the regions of target memory its recent whole walks used (its "plan")
 * are read again at its next sample in one process_vm_readv: copy A of
 * the frame regions, then the head words, then copy B of the frame
 * regions, then the code-object windows. The walk starts from the head
 * words and runs over copy A; copy B is the memory after it, which
 * verify_walk would otherwise read in a second call: a chain whose frames
 * hold the same links in both copies was the thread's stack at the
 * instant the head was read. A region the walk needs and the plan lacks
 * is read as before and joins the next plan; a region that cannot be read
 * leaves the plan at once.
 *
 * Regions are of three kinds: head words (the thread state's frame
 * pointer, the 3.11-3.12 cframe's), copied once between the copies; chain
 * regions (the windows of the frames walked, the leaf's apart, runs of
 * neighbours merged), copied twice and searched by address range; and
 * code-object windows, copied once, last, and found by exact address. A
 * plan holds the bytes the walks used, not the blocks they read them in,
 * and what earlier walks used for PF_AGE walks (a thread's stack moves
 * among a few shapes): the less the copies hold, the closer in time they
 * are. The plan is a guess about memory, never trusted: everything read
 * from it is checked as any read is. */
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

/* Fetch the plan of the thread at tstate, if it has one, with the head
 * word at head_addr among its head words (see above). Recording of this
 * walk's regions starts either way. true: a snapshot is active. */
bool py_pf_fetch(struct py_prefetch *pf, uint64_t tstate, uint64_t head_addr);

/* Bytes [addr, addr + len): a head word (PY_PF_HEAD) from the head
 * words, a frame from copy A, a code window from the code windows; NULL
 * when the snapshot holds no such range of that kind (or none is
 * active). A hit is recorded for the next plan. */
const uint8_t *py_pf_get(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k);

/* A region the walk read from the target itself: part of the next plan. */
void py_pf_note(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k);

/* The word at addr in copy B (frames only): 0, or -ENOENT when copy B
 * does not hold it. */
int py_pf_after(struct py_prefetch *pf, uint64_t addr, uint64_t *v);

bool py_pf_active(const struct py_prefetch *pf);

/* The snapshot ends (a retry reads anew). Recording restarts. */
void py_pf_drop(struct py_prefetch *pf);

/* The walk of tstate is over: whole, its regions lead the thread's plan
 * (what earlier walks used stays for PF_AGE walks); not whole, the plan
 * stays as it was. */
void py_pf_done(struct py_prefetch *pf, uint64_t tstate, bool whole);

#endif

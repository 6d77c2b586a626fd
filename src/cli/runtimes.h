/* Choosing the sampler for a target (python, jvm, or native with
 * --native). */
#ifndef CGPROF_CLI_RUNTIMES_H
#define CGPROF_CLI_RUNTIMES_H

#include <stdbool.h>
#include <stddef.h>

#include "cgprof/sample.h"
#include "cgprof/target.h"

/* 0 and *out set; -ENOENT if no runtime (yet); other negative: final. */
int runtime_probe(struct target *t, bool native, const struct cg_sampler_ops **out);
/* cg_fail() naming what the process runs instead. Returns -ENOENT. */
/* How cgprof names a process in profiles and messages: its program and,
 * for an interpreter, the script or jar it runs (a file name, as its
 * frames show anyway). Never the other arguments: they may hold secrets. */
void runtime_label(struct target *t, char *buf, size_t n);
int runtime_explain_none(struct target *t);
/* A Python process's sys.path[0] as the interpreter sets it from its
 * command line: the script's directory, else its current directory.
 * 0, or -ENOENT (not Python, or -P/-I: no such entry). */
int runtime_python_path0(struct target *t, char *buf, size_t n);
/* The same two from a command line as the kernel keeps it (args each
 * NUL-ended, len bytes, untrusted: the target wrote it). */
void runtime_label_argv(const char *args, size_t len, char *buf, size_t n);
int runtime_path0_argv(const char *args, size_t len, const char *cwd, char *buf, size_t n);

#endif

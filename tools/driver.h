/* driver.h — what the subcommands of the `minfer` driver share: argument helpers and the
 * default-model search. The driver prints; the library never does. No math here. */
#ifndef MF_DRIVER_H
#define MF_DRIVER_H

#include <stdint.h>
#include <stdio.h>

#include "minfer.h"

/* subcommands (one file each: tools/cmd_<name>.c). Each returns the process exit code. */
int mf_cmd_run(int argc, char **argv);
int mf_cmd_tokenize(int argc, char **argv);
int mf_cmd_inspect(int argc, char **argv);
int mf_cmd_bench(int argc, char **argv);
int mf_cmd_check(int argc, char **argv);
int mf_cmd_plan(int argc, char **argv);
int mf_cmd_quantize(int argc, char **argv);
int mf_cmd_prune(int argc, char **argv);
int mf_cmd_perplexity(int argc, char **argv);
int mf_cmd_imatrix(int argc, char **argv);
int mf_cmd_serve(int argc, char **argv);

/* Argument parsing helpers: each returns 0, or prints "minfer NAME: bad value 'X' for
 * OPT (expected ...)" to stderr and returns -1. */
int drv_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out);
int drv_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out);
int drv_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
/* The value after option argv[*i], advancing *i; NULL (with a message) if missing. */
const char *drv_next(const char *cmd, int argc, char **argv, int *i);

/* A list of layer indices "3,7" or with ranges "0-2,9" (at most 4096 entries, each in
 * 0..65535, ranges ascending) into a malloc'd array (*out, *n); -1 with a message naming
 * opt. An empty list is an error. */
int drv_layer_list(const char *cmd, const char *opt, const char *val, int **out, int *n);
/* --skip-layers LIST on a loaded model (prune.h mf_model_skip_layers); spec NULL: nothing.
 * Prints "minfer CMD: ..." and returns -1 on a bad list or index. */
int drv_skip_layers(const char *cmd, mf_model *m, const char *spec);

/* 1 when both paths name the same existing file (an output that would replace its own
 * input), else 0. */
int drv_same_file(const char *a, const char *b);

/* A JSON string literal for s (quotes, backslashes and control bytes escaped). */
void drv_json_str(FILE *f, const char *s);

/* The model to use when -m is not given: $MINFER_MODEL, then the first weights/ *.gguf file,
 * then ../shared/models/stories260K.gguf — both relative to the current directory, then to
 * the checkout holding the binary. NULL if none exists (a message says how to get one). */
const char *drv_default_model(void);

/* The exact bytes of a file (NULs included), malloc'd with a NUL after the last byte;
 * *len (if not NULL) receives the count. NULL with a one-line message "minfer CMD: cannot
 * read 'PATH': why" (a directory, a read error) or out of memory. */
char *drv_read_file(const char *cmd, const char *path, size_t *len);

/* Sets o's progress callback when stderr is a terminal and the model file has 256 MiB or
 * more: a line "minfer: reading MODEL: 45% (1.2 of 2.6 GB)" is then redrawn as the file is
 * read into memory (mf_session_opts.progress). */
void drv_progress_on_terminal(mf_session_opts *o, const mf_model *m);

/* Seconds on a monotonic clock. */
double drv_now(void);

/* For commands that write a file (quantize, prune): installs SIGINT/SIGTERM/SIGHUP handlers
 * that set the returned flag, which the GGUF writer polls before each tensor, so an
 * interrupted write removes its temporary file and exits with the writer's error instead
 * of leaving a partial file behind. A second signal ends the process at once. */
const volatile sig_atomic_t *drv_interrupt_flag(void);

#endif

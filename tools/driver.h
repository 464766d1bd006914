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

int mf_cmd_chat(int argc, char **argv);

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

/* The options of the commands that generate text (run, chat): the model, the session, the
 * sampler, the answer's limits, the chat format's. */
typedef struct drv_gen_args {
    const char *model, *device, *chat_format, *system, *reasoning;
    int n_predict, n_ctx, n_threads, batch, kv_f16, no_graph, show_thinking, seed_given;
    mf_sampler_params sp;
    const char **stop; /* --stop, in the order given (drv_gen_args_free frees the list) */
    int n_stop;
} drv_gen_args;

/* Their help lines. */
#define DRV_GEN_USAGE                                                                                                    \
    "  -m, --model FILE        GGUF model (default: $MINFER_MODEL, weights/*.gguf, ../shared/models/stories260K.gguf)\n" \
    "  -n, --n-predict N       tokens to generate (-1: until end of text or context; default -1)\n"                      \
    "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"                                    \
    "  -t, --threads N         CPU threads (default: one per core)\n"                                                    \
    "  -b, --batch-size N      prompt tokens per forward step (default 512)\n"                                           \
    "      --device D          auto | cpu | cuda (default auto)\n"                                                       \
    "      --temp T            temperature, 0 = greedy (default 0.8)\n"                                                  \
    "      --top-k K           (default 40, 0 = off)\n"                                                                  \
    "      --top-p P           (default 0.95, 1 = off)\n"                                                                \
    "      --min-p P           (default 0.05, 0 = off)\n"                                                                \
    "      --repeat-penalty R  (default 1.0 = off)\n"                                                                    \
    "      --repeat-last-n N   tokens the penalty looks back (default 64)\n"                                             \
    "  -s, --seed S            random seed (default: from the clock; printed)\n"                                         \
    "      --stop STRING       end the text before STRING (repeatable; not printed)\n"                                   \
    "      --chat-format NAME  zephyr | llama2 | chatml | harmony | none (default: from the model)\n"                    \
    "      --system TEXT       system prompt\n"                                                                          \
    "      --reasoning LEVEL   low | medium | high (harmony, default medium)\n"                                          \
    "      --show-thinking     harmony: print the analysis channel to stderr\n"                                          \
    "      --kv-f16            store the KV cache in binary16 (the default)\n"                                           \
    "      --kv-f32            store the KV cache in float32\n"                                                          \
    "      --no-graph          do not capture CUDA graphs\n"

/* Defaults; -1 (with a message) when out of memory. argc bounds the number of --stop. */
int drv_gen_args_init(const char *cmd, drv_gen_args *a, int argc);
/* argv[*i] is one of the shared options: takes it (and its value) and returns 1; not one of
 * them: 0; a bad value: prints "minfer CMD: ..." and returns -1. */
int drv_gen_option(const char *cmd, int argc, char **argv, int *i, drv_gen_args *a);
/* After the arguments: the checks across them (--reasoning's word), the seed from the clock
 * when none was given. -1 with a message. */
int drv_gen_args_finish(const char *cmd, drv_gen_args *a);
void drv_gen_args_free(drv_gen_args *a);
/* The session they ask for. */
mf_session_opts drv_gen_session_opts(const drv_gen_args *a);

/* The chat format of a model: from its tokenizer.chat_template and architecture
 * (mf_chat_detect); MF_CHAT_NONE when nothing is recognized. */
int drv_chat_format(const mf_model *m);
/* Today's local date as YYYY-MM-DD (harmony's "Current date"). */
void drv_today(char *out, size_t cap);

/* Seconds on a monotonic clock. */
double drv_now(void);

/* For commands that write a file (quantize, prune): installs SIGINT/SIGTERM/SIGHUP handlers
 * that set the returned flag, which the GGUF writer polls before each tensor, so an
 * interrupted write removes its temporary file and exits with the writer's error instead
 * of leaving a partial file behind. A second signal ends the process at once. */
const volatile sig_atomic_t *drv_interrupt_flag(void);
/* The flag down again, so that the next signal is a first one (`minfer chat`: Ctrl-C stops
 * one answer, and the next answer can be stopped too). */
void drv_interrupt_clear(void);

#endif

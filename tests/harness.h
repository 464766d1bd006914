/* harness.h — shared helpers for the cmocka tests.
 *
 * Model files: tests read real models from $MINFER_MODELS (default ../shared/models beside
 * the checkout, passed by CMake as MINFER_MODELS_DEFAULT). A test that needs a missing file
 * calls MF_REQUIRE_FILE(): cmocka reports it SKIPPED with the reason, and mf_run() makes the
 * executable exit with 77, which ctest shows as "Skipped" — never as passed.
 */
#ifndef MF_HARNESS_H
#define MF_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Directory holding the shared model files (no trailing slash). */
const char *mf_models_dir(void);
/* Full path of a shared model file. The result is owned by the harness and lives until
 * exit: do not free it. */
const char *mf_model_path(const char *file);
/* Path for a temporary file unique to this process (under $TMPDIR or /tmp); owned by the
 * harness like mf_model_path's. */
const char *mf_tmp_path(const char *name);

/* Skip the current test (with a printed reason) unless `path` exists. */
void mf_skip_unless_exists(const char *path);
#define MF_REQUIRE_FILE(path)        \
    do {                             \
        mf_skip_unless_exists(path); \
    } while (0)
/* Skip the current test with a reason (e.g. no GPU). */
void mf_skip(const char *why);

/* Run a group; returns 77 when nothing failed but something was skipped. */
int mf_run(const char *name, const struct CMUnitTest *tests, size_t n);
#define MF_RUN(name, tests) mf_run(name, tests, sizeof(tests) / sizeof(tests[0]))

/* Deterministic random numbers for tests (xorshift64*). */
typedef struct mf_rng {
    uint64_t s;
} mf_rng;
uint64_t mf_rng_u64(mf_rng *r);
float mf_rng_uniform(mf_rng *r); /* [0, 1) */
float mf_rng_normal(mf_rng *r);  /* N(0, 1) */

/* Read a whole file; NULL if unreadable. *len receives its size. */
uint8_t *mf_read_file(const char *path, size_t *len);
/* A whole file as a NUL-terminated malloc'd string ("" if unreadable); *len (when not NULL)
 * receives its size. */
char *mf_read_text(const char *path, size_t *len);

/* A key set by mf_copy_gguf: type MF_GGUF_U32 (u), MF_GGUF_F32 (f) or MF_GGUF_STR (s). */
typedef struct mf_key_edit {
    const char *key;
    uint32_t type;
    uint32_t u;
    float f;
    const char *s;
} mf_key_edit;
/* Copy the GGUF file SRC to DST through the writer: every key except those named in edits,
 * then the edits (so a key is changed or added; general.alignment also sets the layout),
 * then every tensor with its data. Fails the test on any error. */
void mf_copy_gguf(const char *src, const char *dst, const mf_key_edit *edits, int n_edits);

/* A vocabulary file for `mkmodel --vocab-from`: the tokenizer.* keys of the GGUF file SRC,
 * with the text of token `id` replaced by the `len` bytes at `text`, written to DST. */
void mf_write_vocab_with(const char *src, const char *dst, uint64_t id, const char *text, size_t len);

/* Path of a program built beside the tests (minfer, mkmodel): $MINFER_BIN/NAME, else in the
 * build folder CMake configured. Owned by the harness like mf_model_path's. */
const char *mf_tool_path(const char *name);

/* One run of a built program with stdout and stderr captured. */
typedef struct mf_proc {
    char *out, *err; /* NUL-terminated, malloc'd */
    size_t out_len;
    int rc;  /* exit status; 128 when killed by a signal */
    int sig; /* the signal that killed it (SIGALRM: the time limit), else 0 */
} mf_proc;
/* Run tool NAME (mf_tool_path) with args (NULL-terminated, at most 30), directly (no shell).
 * Fails the test when the program cannot be executed. Free with mf_proc_free. */
mf_proc mf_run_tool(const char *name, const char *const *args);
/* The same with the child's file-size limit (RLIMIT_FSIZE) set to max_bytes and SIGXFSZ
 * ignored, so that a write past it fails with EFBIG as on a full disk; 0: no limit. */
mf_proc mf_run_tool_fsize(const char *name, const char *const *args, long max_bytes);
/* The same, killed by SIGALRM after `seconds` (> 0): a hang becomes sig == SIGALRM. */
mf_proc mf_run_tool_timeout(const char *name, const char *const *args, unsigned seconds);
void mf_proc_free(mf_proc *p);

/* `mkmodel -o TMP/name ARGS...` (mf_tmp_path; at most 28 args, NULL-terminated), loaded; the
 * file is unlinked (the mapping stays valid). Fails the test when mkmodel or the load fails.
 * Free with mf_model_free. */
struct mf_model;
struct mf_model *mf_mkmodel_load(const char *name, const char *const *args);

/* The names in folder `dir` (no "." or ".."), sorted and joined by single spaces, into out
 * (cut at cap): for "nothing else was left behind" checks. */
void mf_list_dir(const char *dir, char *out, size_t cap);

/* 1 when /usr/bin/python3 runs and imports numpy (tests that compare with
 * tools/reference.py skip with a reason otherwise). */
int mf_have_numpy(void);
/* The number after "key": in a flat JSON text; NAN when absent. */
double mf_json_num(const char *json, const char *key);

#endif

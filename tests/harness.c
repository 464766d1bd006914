/* harness.c — see harness.h. */
#include "harness.h"
#include "gguf.h"
#include "minfer.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_skipped;

const char *mf_models_dir(void)
{
    const char *d = getenv("MINFER_MODELS");
    if (!d || !*d) d = getenv("MINFER_MODELS_DEFAULT");
    if (!d || !*d) d = MF_SOURCE_DIR "/../shared/models";
    return d;
}

/* Paths handed out below live until exit. Chaining them from a static list keeps them
 * reachable, so LeakSanitizer (the sanitizer build) does not report them as leaks. */
typedef struct kept_path {
    struct kept_path *next;
    char path[];
} kept_path;
static kept_path *g_kept;

static char *keep_path(size_t n)
{
    kept_path *k = malloc(sizeof *k + n);
    if (!k) abort();
    k->next = g_kept;
    g_kept = k;
    return k->path;
}

const char *mf_model_path(const char *file)
{
    const char *d = mf_models_dir();
    size_t n = strlen(d) + strlen(file) + 2;
    char *p = keep_path(n);
    snprintf(p, n, "%s/%s", d, file);
    return p;
}

const char *mf_tmp_path(const char *name)
{
    const char *d = getenv("TMPDIR");
    if (!d || !*d) d = "/tmp";
    size_t n = strlen(d) + strlen(name) + 48;
    char *p = keep_path(n);
    snprintf(p, n, "%s/minfer-test-%ld-%s", d, (long)getpid(), name);
    return p;
}

void mf_skip(const char *why)
{
    g_skipped = 1;
    print_message("[ SKIPPED  ] %s\n", why);
    skip();
}

void mf_skip_unless_exists(const char *path)
{
    if (access(path, R_OK) == 0) return;
    char why[1200];
    snprintf(why, sizeof why, "needs %s (set MINFER_MODELS to the folder holding it)", path);
    mf_skip(why);
}

int mf_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    if (failed) return failed;
    return g_skipped ? 77 : 0;
}

uint64_t mf_rng_u64(mf_rng *r)
{
    uint64_t x = r->s ? r->s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float mf_rng_uniform(mf_rng *r) { return (float)(mf_rng_u64(r) >> 40) / (float)(1u << 24); }

float mf_rng_normal(mf_rng *r)
{
    /* Box-Muller */
    float u1 = mf_rng_uniform(r), u2 = mf_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

uint8_t *mf_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

char *mf_read_text(const char *path, size_t *len)
{
    size_t n = 0;
    char *b = (char *)mf_read_file(path, &n);
    if (!b) n = 0;
    char *s = realloc(b, n + 1);
    if (!s) abort();
    s[n] = 0;
    if (len) *len = n;
    return s;
}

void mf_copy_gguf(const char *src, const char *dst, const mf_key_edit *edits, int n_edits)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(src, &err);
    if (!g) fail_msg("%s", err.msg);
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_non_null(w);
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        int edited = 0;
        for (int e = 0; e < n_edits; e++) edited |= !strcmp(kv->key, edits[e].key);
        if (!edited) assert_int_equal(mf_gguf_w_copy_kv(w, kv), 0);
    }
    for (int e = 0; e < n_edits; e++) {
        const mf_key_edit *k = &edits[e];
        int rc = k->type == MF_GGUF_U32   ? mf_gguf_w_u32(w, k->key, k->u)
                 : k->type == MF_GGUF_F32 ? mf_gguf_w_f32(w, k->key, k->f)
                                          : mf_gguf_w_str(w, k->key, k->s);
        assert_int_equal(rc, 0);
    }
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        if (mf_gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) < 0) fail_msg("%s", err.msg);
    }
    if (mf_gguf_w_write(w, dst, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    mf_gguf_close(g);
}

void mf_write_vocab_with(const char *src, const char *dst, uint64_t id, const char *text, size_t len)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(src, &err);
    if (!g) fail_msg("%s", err.msg);
    const mf_gguf_kv *toks = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != MF_GGUF_ARR || toks->arr_type != MF_GGUF_STR || id >= toks->arr_n)
        fail_msg("%s: no token %llu", src, (unsigned long long)id);
    const char **strs = malloc(sizeof *strs * toks->arr_n);
    uint64_t *lens = malloc(sizeof *lens * toks->arr_n);
    assert_true(strs && lens);
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        strs[i] = i == id ? text : toks->arr_str[i].ptr;
        lens[i] = i == id ? len : toks->arr_str[i].len;
    }
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_int_equal(mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", strs, lens, toks->arr_n), 0);
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        if (!strncmp(kv->key, "tokenizer.", 10) && kv != toks) assert_int_equal(mf_gguf_w_copy_kv(w, kv), 0);
    }
    if (mf_gguf_w_write(w, dst, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    free(strs);
    free(lens);
    mf_gguf_close(g);
}

const char *mf_tool_path(const char *name)
{
    const char *d = getenv("MINFER_BIN");
    if (!d || !*d) d = MF_BUILD_DIR;
    size_t n = strlen(d) + strlen(name) + 2;
    char *p = keep_path(n);
    snprintf(p, n, "%s/%s", d, name);
    return p;
}

/* One run of a tool: a time limit (SIGALRM after `seconds`, 0 none) and a file-size limit
 * (max_bytes, 0 none) in the child. */
static mf_proc run_tool(const char *name, const char *const *args, unsigned seconds, long max_bytes);

mf_proc mf_run_tool(const char *name, const char *const *args) { return run_tool(name, args, 0, 0); }

struct mf_model *mf_mkmodel_load(const char *name, const char *const *args)
{
    const char *path = mf_tmp_path(name);
    const char *argv[31] = {"-o", path};
    int n = 2;
    for (int i = 0; args[i]; i++) {
        if (n == 30) fail_msg("mf_mkmodel_load: more than 28 arguments");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    mf_proc pr = mf_run_tool("mkmodel", argv);
    if (pr.rc) fail_msg("mkmodel: %s", pr.err);
    mf_proc_free(&pr);
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s: %s", path, err.msg);
    unlink(path);
    return m;
}

mf_proc mf_run_tool_fsize(const char *name, const char *const *args, long max_bytes)
{
    return run_tool(name, args, 0, max_bytes);
}

mf_proc mf_run_tool_timeout(const char *name, const char *const *args, unsigned seconds)
{
    return run_tool(name, args, seconds, 0);
}

static mf_proc run_tool(const char *name, const char *const *args, unsigned seconds, long max_bytes)
{
    const char *bin = mf_tool_path(name);
    const char *outp = mf_tmp_path("tool.out"), *errp = mf_tmp_path("tool.err");
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin;
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    fflush(NULL); /* nothing buffered here may be written twice by the child */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(outp, "w", stdout) || !freopen(errp, "w", stderr)) _exit(126);
        if (max_bytes > 0) {
            struct rlimit rl = {(rlim_t)max_bytes, (rlim_t)max_bytes};
            signal(SIGXFSZ, SIG_IGN); /* kept across exec */
            if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(126);
        }
        alarm(seconds); /* a pending alarm survives exec; 0 sets none */
        execv(bin, argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    mf_proc r;
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    r.sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    if (r.rc == 127) fail_msg("could not run %s (set MINFER_BIN to the build folder)", bin);
    r.out = mf_read_text(outp, &r.out_len);
    r.err = mf_read_text(errp, NULL);
    unlink(outp);
    unlink(errp);
    return r;
}

void mf_proc_free(mf_proc *p)
{
    free(p->out);
    free(p->err);
}

int mf_have_numpy(void)
{
    return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") == 0;
}

double mf_json_num(const char *json, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

void mf_list_dir(const char *dir, char *out, size_t cap)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, ".."))
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? " " : "", ents[i]->d_name);
        free(ents[i]);
    }
    if (n >= 0) free(ents);
}

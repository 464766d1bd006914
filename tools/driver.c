/* driver.c — argument helpers and default-model search shared by the subcommands. */
#include "driver.h"
#include "prune.h"

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int drv_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "minfer %s: bad value '%s' for %s (expected an integer in %ld..%ld)\n", cmd, val, opt, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int drv_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "minfer %s: bad value '%s' for %s (expected a number in %g..%g)\n", cmd, val, opt, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int drv_u64(const char *cmd, const char *opt, const char *val, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-') {
        fprintf(stderr, "minfer %s: bad value '%s' for %s (expected a non-negative integer)\n", cmd, val, opt);
        return -1;
    }
    *out = v;
    return 0;
}

const char *drv_next(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "minfer %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int drv_gen_args_init(const char *cmd, drv_gen_args *a, int argc)
{
    memset(a, 0, sizeof *a);
    a->stop = calloc((size_t)(argc > 0 ? argc : 1), sizeof *a->stop);
    if (!a->stop) {
        fprintf(stderr, "minfer %s: out of memory\n", cmd);
        return -1;
    }
    a->n_predict = -1;
    a->batch = 512;
    a->device = "auto";
    a->kv_f16 = -1;
    a->sp = mf_sampler_defaults();
    return 0;
}

void drv_gen_args_free(drv_gen_args *a)
{
    free(a->stop);
    a->stop = NULL;
}

int drv_gen_option(const char *cmd, int argc, char **argv, int *i, drv_gen_args *a)
{
    const char *o = argv[*i], *v = NULL;
    int r = 0;
#define IS(s, l) (!strcmp(o, s) || !strcmp(o, l))
#define VAL() (v = drv_next(cmd, argc, argv, i))
    if (IS("-m", "--model")) r = VAL() ? (a->model = v, 0) : -1;
    else if (IS("-n", "--n-predict")) r = VAL() ? drv_int(cmd, o, v, -1, 1 << 24, &a->n_predict) : -1;
    else if (IS("-c", "--ctx-size")) r = VAL() ? drv_int(cmd, o, v, 1, 1 << 24, &a->n_ctx) : -1;
    else if (IS("-t", "--threads")) r = VAL() ? drv_int(cmd, o, v, 1, 1024, &a->n_threads) : -1;
    else if (IS("-b", "--batch-size")) r = VAL() ? drv_int(cmd, o, v, 1, 1 << 16, &a->batch) : -1;
    else if (!strcmp(o, "--device")) r = VAL() ? (a->device = v, 0) : -1;
    else if (!strcmp(o, "--temp")) r = VAL() ? drv_float(cmd, o, v, 0, 100, &a->sp.temp) : -1;
    else if (!strcmp(o, "--top-k")) r = VAL() ? drv_int(cmd, o, v, 0, 1 << 24, &a->sp.top_k) : -1;
    else if (!strcmp(o, "--top-p")) r = VAL() ? drv_float(cmd, o, v, 0, 1, &a->sp.top_p) : -1;
    else if (!strcmp(o, "--min-p")) r = VAL() ? drv_float(cmd, o, v, 0, 1, &a->sp.min_p) : -1;
    else if (!strcmp(o, "--repeat-penalty")) r = VAL() ? drv_float(cmd, o, v, 0.01, 100, &a->sp.repeat_penalty) : -1;
    else if (!strcmp(o, "--repeat-last-n")) r = VAL() ? drv_int(cmd, o, v, 0, 1 << 24, &a->sp.repeat_last_n) : -1;
    else if (IS("-s", "--seed")) {
        r = VAL() ? drv_u64(cmd, o, v, &a->sp.seed) : -1;
        a->seed_given = 1;
    } else if (!strcmp(o, "--stop")) {
        r = VAL() ? 0 : -1;
        if (v && !v[0]) {
            fprintf(stderr, "minfer %s: --stop needs a non-empty string\n", cmd);
            r = -1;
        }
        if (!r) a->stop[a->n_stop++] = v;
    } else if (!strcmp(o, "--chat-format")) r = VAL() ? (a->chat_format = v, 0) : -1;
    else if (!strcmp(o, "--system")) r = VAL() ? (a->system = v, 0) : -1;
    else if (!strcmp(o, "--reasoning")) r = VAL() ? (a->reasoning = v, 0) : -1;
    else if (!strcmp(o, "--show-thinking")) a->show_thinking = 1;
    else if (!strcmp(o, "--kv-f16")) a->kv_f16 = 1;
    else if (!strcmp(o, "--kv-f32")) a->kv_f16 = 0;
    else if (!strcmp(o, "--no-graph")) a->no_graph = 1;
    else return 0;
#undef IS
#undef VAL
    return r ? -1 : 1;
}

int drv_gen_args_finish(const char *cmd, drv_gen_args *a)
{
    if (a->reasoning && strcmp(a->reasoning, "low") && strcmp(a->reasoning, "medium") && strcmp(a->reasoning, "high")) {
        fprintf(stderr, "minfer %s: bad value '%s' for --reasoning (expected low, medium or high)\n", cmd,
                a->reasoning);
        return -1;
    }
    if (a->chat_format && mf_chat_format_from_name(a->chat_format) < 0) {
        fprintf(stderr, "minfer %s: unknown chat format '%s'\n", cmd, a->chat_format);
        return -1;
    }
    if (!a->seed_given) a->sp.seed = (uint64_t)time(NULL);
    return 0;
}

mf_session_opts drv_gen_session_opts(const drv_gen_args *a)
{
    mf_session_opts so = mf_session_defaults();
    so.device = a->device;
    so.n_threads = a->n_threads;
    so.n_ctx = a->n_ctx;
    so.max_batch = a->batch;
    so.kv_f16 = a->kv_f16;
    so.no_graph = a->no_graph;
    return so;
}

int drv_layer_list(const char *cmd, const char *opt, const char *val, int **out, int *n)
{
    int cap = 4096, k = 0;
    int *v = malloc(sizeof *v * (size_t)cap);
    if (!v) {
        fprintf(stderr, "minfer %s: out of memory\n", cmd);
        return -1;
    }
    const char *p = val;
    for (;;) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b;
        if (end == p || errno || a < 0 || a > 65535 || (*p < '0' || *p > '9')) goto bad;
        b = a;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q || errno || *q < '0' || *q > '9' || b < a || b > 65535) goto bad;
        }
        for (long l = a; l <= b; l++) {
            if (k == cap) {
                fprintf(stderr, "minfer %s: %s lists more than %d layers\n", cmd, opt, cap);
                free(v);
                return -1;
            }
            v[k++] = (int)l;
        }
        if (*end == 0) break;
        if (*end != ',') goto bad;
        p = end + 1;
    }
    *out = v;
    *n = k;
    return 0;
bad:
    fprintf(stderr, "minfer %s: bad value '%s' for %s (expected layer numbers like 3,7 or 2-5)\n", cmd, val, opt);
    free(v);
    return -1;
}

int drv_skip_layers(const char *cmd, mf_model *m, const char *spec)
{
    if (!spec) return 0;
    int *l, n;
    if (drv_layer_list(cmd, "--skip-layers", spec, &l, &n)) return -1;
    mf_err err;
    int rc = mf_model_skip_layers(m, l, n, &err);
    if (rc) fprintf(stderr, "minfer %s: --skip-layers: %s\n", cmd, err.msg);
    free(l);
    return rc;
}

int drv_same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

void drv_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

const char *drv_default_model(void)
{
    static char found[4096];
    const char *env = getenv("MINFER_MODEL");
    if (env && *env) return env;
    glob_t gl;
    if (glob("weights/*.gguf", 0, NULL, &gl) == 0 && gl.gl_pathc > 0) {
        snprintf(found, sizeof found, "%s", gl.gl_pathv[0]);
        globfree(&gl);
        return found;
    }
    globfree(&gl);
    const char *shared = "../shared/models/stories260K.gguf";
    if (access(shared, R_OK) == 0) return shared;
    /* the same two places relative to the checkout holding this binary (build/minfer), so
     * the driver finds them from any working directory */
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
        }
        snprintf(found, sizeof found, "%s/weights/*.gguf", exe);
        if (glob(found, 0, NULL, &gl) == 0 && gl.gl_pathc > 0) {
            snprintf(found, sizeof found, "%s", gl.gl_pathv[0]);
            globfree(&gl);
            return found;
        }
        globfree(&gl);
        snprintf(found, sizeof found, "%s/../shared/models/stories260K.gguf", exe);
        if (access(found, R_OK) == 0) return found;
    }
    fprintf(stderr,
            "minfer: no model given and none found ($MINFER_MODEL, weights/*.gguf, %s).\n"
            "Get one with: weights/fetch.sh stories260K   (see weights/README.md)\n",
            shared);
    return NULL;
}

char *drv_read_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "minfer %s: cannot read '%s': %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = realloc(b, cap *= 2);
        if (!nb) {
            free(b);
            b = NULL;
        } else b = nb;
    }
    /* a directory opens but fails the first read (EISDIR): an error, not an empty text */
    int bad = ferror(f), e = errno;
    fclose(f);
    if (!b || bad) {
        free(b);
        if (bad) fprintf(stderr, "minfer %s: cannot read '%s': %s\n", cmd, path, strerror(e));
        else fprintf(stderr, "minfer %s: out of memory reading '%s'\n", cmd, path);
        return NULL;
    }
    b[n] = 0;
    if (len) *len = n;
    return b;
}

static void progress_line(void *user, uint64_t done, uint64_t total)
{
    const mf_model *m = user;
    fprintf(stderr, "\rminfer: reading %s: %3d%% (%.1f of %.1f GB)%s", m->path,
            (int)(100.0 * (double)done / (double)total), (double)done / 1e9, (double)total / 1e9,
            done == total ? "\n" : "");
    fflush(stderr);
}

void drv_progress_on_terminal(mf_session_opts *o, const mf_model *m)
{
    if (isatty(STDERR_FILENO) && mf_gguf_file_size(m->gguf) >= (256ull << 20)) {
        o->progress = progress_line;
        o->progress_user = (void *)m;
    }
}

/* The one flag a signal handler may set (C11 7.14.1.1: only a volatile sig_atomic_t object
 * may be written from a handler), hence a file-scope variable. */
static volatile sig_atomic_t drv_interrupted;

static void drv_on_signal(int sig)
{
    if (drv_interrupted) {
        /* second signal: the user insists; default action (terminate) */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    drv_interrupted = 1;
}

const volatile sig_atomic_t *drv_interrupt_flag(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = drv_on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
    return &drv_interrupted;
}

void drv_interrupt_clear(void) { drv_interrupted = 0; }

int drv_chat_format(const mf_model *m)
{
    const char *tmpl = NULL;
    mf_gguf_opt_str(m->gguf, "tokenizer.chat_template", NULL, &tmpl, NULL);
    return mf_chat_detect(tmpl, m->hp.arch_name);
}

void drv_today(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tmv;
    strftime(out, cap, "%Y-%m-%d", localtime_r(&now, &tmv));
}

double drv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

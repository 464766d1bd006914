/* cmd_imatrix.c — `minfer imatrix -m MODEL -f TEXT -o FILE`: the mean square of every
 * matrix input column over a text, for `minfer quantize --imatrix` (engine/imatrix.c,
 * docs/quantize.md §3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "imatrix.h"
#include "perplexity.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer imatrix [-m MODEL] -f TEXT -o FILE [options]\n"
               "  -f, --file FILE    calibration text (UTF-8)\n"
               "  -o, --output FILE  the importance file (GGUF, one F32 tensor per weight matrix)\n"
               "  -c, --ctx-size N   tokens per chunk, each evaluated from an empty cache (default 512,\n"
               "                     or the model's context if smaller)\n"
               "      --chunks N     use only the first N chunks\n"
               "  -b, --batch-size N tokens per forward step (default 512)\n"
               "  -t, --threads N    CPU threads (default: one per core); runs on the CPU\n"
               "      --kv-f16       store the KV cache in binary16 (the default)\n"
               "      --kv-f32       store the KV cache in float32\n");
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int mf_cmd_imatrix(int argc, char **argv)
{
    const char *C = "imatrix", *model = NULL, *file = NULL, *out = NULL;
    int n_ctx = 0, chunks = 0, batch = 512, threads = 0, kv_f16 = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
#define VAL()                                             \
    do {                                                  \
        if (!(v = drv_next(C, argc, argv, &i))) return 2; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            model = v;
        } else if (!strcmp(o, "-f") || !strcmp(o, "--file")) {
            VAL();
            file = v;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            VAL();
            out = v;
        } else if (!strcmp(o, "-c") || !strcmp(o, "--ctx-size")) {
            VAL();
            if (drv_int(C, o, v, 4, 1 << 20, &n_ctx)) return 2;
        } else if (!strcmp(o, "--chunks")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 20, &chunks)) return 2;
        } else if (!strcmp(o, "-b") || !strcmp(o, "--batch-size")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 16, &batch)) return 2;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &threads)) return 2;
        } else if (!strcmp(o, "--kv-f16")) {
            kv_f16 = 1;
        } else if (!strcmp(o, "--kv-f32")) {
            kv_f16 = 0;
        } else {
            fprintf(stderr, "minfer imatrix: unknown option '%s' (see minfer imatrix --help)\n", o);
            return 2;
        }
#undef VAL
    }
    if (!file || !out) {
        fprintf(stderr, "minfer imatrix: give the text with -f FILE and the output with -o FILE\n");
        return 2;
    }
    const char *path = model ? model : drv_default_model();
    if (!path) return 1;
    if (drv_same_file(out, path) || drv_same_file(out, file)) {
        fprintf(stderr, "minfer imatrix: the output '%s' would replace an input; write to another name\n", out);
        return 2;
    }
    int rc = 1, n_chunks = 0;
    mf_err err;
    char *text = NULL;
    int32_t *tokens = NULL;
    float *logits = NULL;
    mf_session *s = NULL;
    mf_imatrix *im = NULL;
    mf_model *m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "minfer imatrix: %s\n", err.msg);
        goto done;
    }
    if (!n_ctx) n_ctx = m->hp.n_ctx_train < 512 ? m->hp.n_ctx_train : 512;
    size_t text_len;
    if (!(text = drv_read_file(C, file, &text_len))) goto done;
    if (mf_ppl_chunks(m, text, text_len, n_ctx, &tokens, &n_chunks, &err)) {
        fprintf(stderr, "minfer imatrix: %s: %s\n", file, err.msg);
        goto done;
    }
    if (chunks && chunks < n_chunks) n_chunks = chunks;
    mf_session_opts so = mf_session_defaults();
    so.device = "cpu"; /* the CPU backend reports every matrix input (backend.h observe) */
    so.n_threads = threads;
    so.kv_f16 = kv_f16;
    so.n_ctx = n_ctx;
    so.max_batch = batch;
    if (!(s = mf_session_new(m, &so, &err)) || !(im = mf_imatrix_new(m, &err)) ||
        mf_session_observe(s, mf_imatrix_observe, im, &err)) {
        fprintf(stderr, "minfer imatrix: %s\n", err.msg);
        goto done;
    }
    /* every row's logits: the output matrix then sees every token, not only the last */
    if (!(logits = malloc(sizeof(float) * (size_t)n_ctx * (size_t)m->hp.n_vocab))) {
        fprintf(stderr, "minfer imatrix: out of memory\n");
        goto done;
    }
    double t0 = drv_now();
    for (int k = 0; k < n_chunks; k++) {
        mf_session_reset(s);
        if (mf_session_eval(s, tokens + (size_t)k * n_ctx, n_ctx, logits, &err)) {
            fprintf(stderr, "\nminfer imatrix: %s\n", err.msg);
            goto done;
        }
        double dt = drv_now() - t0;
        fprintf(stderr, "\rminfer imatrix: chunk %d/%d, %.0f tok/s   ", k + 1, n_chunks,
                (k + 1.0) * n_ctx / (dt > 0 ? dt : 1e-9));
        fflush(stderr);
    }
    fprintf(stderr, "\n");
    if (mf_imatrix_write(im, out, base_name(path), base_name(file), n_chunks, n_ctx,
                         (uint64_t)n_chunks * (uint64_t)n_ctx, &err)) {
        fprintf(stderr, "minfer imatrix: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "minfer imatrix: wrote %s (%d chunks of %d tokens)\n", out, n_chunks, n_ctx);
    rc = 0;
done:
    mf_imatrix_free(im);
    mf_session_free(s);
    free(logits);
    free(tokens);
    free(text);
    mf_model_free(m);
    return rc;
}

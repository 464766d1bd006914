/* cmd_check.c — `minfer check`: run the same prompt through two implementations and show
 * where they part, layer by layer.
 *
 *   --device cuda   GPU (fast path) against the CPU (fast path)      [default when a GPU exists]
 *   --device cpu    CPU fast path against the scalar reference (ref_forward.c)
 *
 * For every layer: the largest absolute difference of the residual stream over all prompt
 * positions, and that relative to the largest magnitude of the reference. Then the logits
 * of the last prompt position, and greedy agreement over N generated tokens: the reference
 * generates greedily, the tested side is fed the same tokens (teacher forcing, so one early
 * disagreement cannot cascade), and the fraction of positions with the same argmax counts.
 * Exit status 1 when the logits' relative difference exceeds --tol or the agreement falls
 * under --min-agree.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "ref_forward.h"

typedef struct side {
    const char *label;
    mf_session *s; /* NULL: scalar reference */
    mf_ref *ref;
    float *hidden; /* [n_layers + 1][n_prompt][d] */
    int n_prompt, pos;
    float *logits; /* [n_vocab] */
} side;

static void hook(void *user, int layer, const float *x, int rows, int width)
{
    side *sd = user;
    if (sd->pos != 0 || rows != sd->n_prompt) return; /* only the prompt step */
    memcpy(sd->hidden + (size_t)(layer + 1) * rows * width, x, sizeof(float) * (size_t)rows * width);
}

static int side_prompt(side *sd, const mf_model *m, const int32_t *ids, int n, mf_err *err)
{
    int d = m->hp.n_embd, V = m->hp.n_vocab, L = m->hp.n_layers;
    sd->n_prompt = n;
    if (sd->s) {
        if (mf_session_eval(sd->s, ids, n, NULL, err)) return -1;
        const float *lg = mf_session_logits(sd->s, err);
        if (!lg) return -1;
        memcpy(sd->logits, lg, sizeof(float) * (size_t)V);
    } else {
        float *hid = malloc(sizeof(float) * (size_t)L * d);
        if (!hid) return mf_errf(err, "out of memory");
        for (int t = 0; t < n; t++) {
            if (mf_ref_forward(sd->ref, ids[t], t, sd->logits, hid, err)) {
                free(hid);
                return -1;
            }
            for (int l = 0; l < L; l++)
                memcpy(sd->hidden + ((size_t)(l + 1) * n + t) * d, hid + (size_t)l * d, sizeof(float) * d);
        }
        free(hid);
    }
    sd->pos = n;
    return 0;
}

static int side_step(side *sd, const mf_model *m, int32_t tok, mf_err *err)
{
    if (sd->s) {
        if (mf_session_eval(sd->s, &tok, 1, NULL, err)) return -1;
        const float *lg = mf_session_logits(sd->s, err);
        if (!lg) return -1;
        memcpy(sd->logits, lg, sizeof(float) * (size_t)m->hp.n_vocab);
    } else if (mf_ref_forward(sd->ref, tok, sd->pos, sd->logits, NULL, err)) {
        return -1;
    }
    sd->pos++;
    return 0;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* max |a - b| and max |b| over n values */
static void diff(const float *a, const float *b, size_t n, double *max_abs, double *max_ref)
{
    *max_abs = 0;
    *max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double dv = fabs((double)a[i] - b[i]);
        if (dv > *max_abs || isnan(dv)) *max_abs = isnan(dv) ? INFINITY : dv;
        if (fabs(b[i]) > *max_ref) *max_ref = fabs(b[i]);
    }
}

static int all_float_weights(const mf_model *m)
{
    for (uint64_t i = 0; i < mf_gguf_n_tensors(m->gguf); i++) {
        uint32_t t = mf_gguf_tensor_at(m->gguf, i)->type;
        if (t != MF_TYPE_F32 && t != MF_TYPE_F16 && t != MF_TYPE_BF16) return 0;
    }
    return 1;
}

int mf_cmd_check(int argc, char **argv)
{
    const char *C = "check", *path = NULL, *prompt = "Once upon a time, there was a little girl", *device = NULL;
    int n_gen = 32, threads = 0;
    float tol = -1, min_agree = 0.95f;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
#define VAL()                                             \
    do {                                                  \
        if (!(v = drv_next(C, argc, argv, &i))) return 2; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf(
                "usage: minfer check [-m MODEL] [-p PROMPT] [-n N] [--device cuda|cpu] [--tol REL] [--min-agree F] [-t N]\n"
                "  cuda: GPU vs CPU fast path; cpu: CPU fast path vs the scalar reference\n"
                "  --tol: bound on max|dlogit| / max|logit| (default 1e-3 for float weights, 5e-2 for quantized)\n"
                "  --min-agree: least fraction of equal greedy tokens (default 0.95)\n");
            return 0;
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            path = v;
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            VAL();
            prompt = v;
        } else if (!strcmp(o, "-n")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 16, &n_gen)) return 2;
        } else if (!strcmp(o, "-t")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &threads)) return 2;
        } else if (!strcmp(o, "--device")) {
            VAL();
            device = v;
        } else if (!strcmp(o, "--tol")) {
            VAL();
            if (drv_float(C, o, v, 0, 1e9, &tol)) return 2;
        } else if (!strcmp(o, "--min-agree")) {
            VAL();
            if (drv_float(C, o, v, 0, 1, &min_agree)) return 2;
        } else {
            fprintf(stderr, "minfer check: unknown option '%s'\n", o);
            return 2;
        }
#undef VAL
    }
    if (!path && !(path = drv_default_model())) return 1;
    if (!device) {
        char names[1][128];
        device = mf_cuda_devices(names, 1, NULL, 0) > 0 ? "cuda" : "cpu";
    }
    if (strcmp(device, "cuda") && strcmp(device, "cpu")) {
        fprintf(stderr, "minfer check: bad value '%s' for --device (expected cuda or cpu)\n", device);
        return 2;
    }

    int rc = 1;
    mf_err err;
    int32_t *ids = NULL;
    side ref = {.label = "cpu"}, test = {.label = device};
    mf_model *m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "minfer check: %s\n", err.msg);
        return 1;
    }
    const mf_hparams *hp = &m->hp;
    int d = hp->n_embd, V = hp->n_vocab, L = hp->n_layers;
    if (tol < 0) tol = all_float_weights(m) ? 1e-3f : 5e-2f;

    int64_t n = mf_tokenize(m->tok, prompt, strlen(prompt), 1, 0, NULL, 0, &err);
    if (n <= 0) {
        fprintf(stderr, "minfer check: %s\n", n < 0 ? err.msg : "empty prompt");
        goto done;
    }
    int n_ctx = (int)n + n_gen + 1;
    ids = malloc(sizeof(int32_t) * (size_t)n_ctx);
    if (!ids) goto done;
    mf_tokenize(m->tok, prompt, strlen(prompt), 1, 0, ids, n, &err);

    mf_session_opts so = mf_session_defaults();
    so.n_ctx = n_ctx;
    so.max_batch = (int)n;
    so.no_graph = 1;
    so.n_threads = threads;
    so.kv_f16 = 0; /* compare the kernels, not the cache precision */
    so.device = device;
    drv_progress_on_terminal(&so, m);
    test.s = mf_session_new(m, &so, &err);
    if (!test.s) {
        fprintf(stderr, "minfer check: %s\n", err.msg);
        goto done;
    }
    so.progress = NULL; /* read once; the second session finds the pages in memory */
    if (!strcmp(device, "cuda")) {
        so.device = "cpu";
        ref.s = mf_session_new(m, &so, &err);
        if (!ref.s) {
            fprintf(stderr, "minfer check: %s\n", err.msg);
            goto done;
        }
    } else {
        ref.label = "reference";
        ref.ref = mf_ref_new(m, n_ctx, &err);
        if (!ref.ref) {
            fprintf(stderr, "minfer check: %s\n", err.msg);
            goto done;
        }
    }
    side *sides[2] = {&ref, &test};
    for (int k = 0; k < 2; k++) {
        sides[k]->hidden = calloc((size_t)(L + 1) * n * d, sizeof(float));
        sides[k]->logits = malloc(sizeof(float) * (size_t)V);
        if (!sides[k]->hidden || !sides[k]->logits) {
            fprintf(stderr, "minfer check: out of memory\n");
            goto done;
        }
        if (sides[k]->s) mf_session_set_hook(sides[k]->s, hook, sides[k]);
    }
    for (int k = 0; k < 2; k++)
        if (side_prompt(sides[k], m, ids, (int)n, &err)) {
            fprintf(stderr, "minfer check: %s: %s\n", sides[k]->label, err.msg);
            goto done;
        }

    printf("check: %s vs %s, %s, %lld prompt tokens\n", test.label, ref.label, path, (long long)n);
    printf("%-8s %14s %14s\n", "layer", "max |diff|", "relative");
    for (int l = 0; l < L; l++) {
        double ma, mr;
        size_t off = (size_t)(l + 1) * n * d;
        diff(test.hidden + off, ref.hidden + off, (size_t)n * d, &ma, &mr);
        printf("%-8d %14.3e %14.3e\n", l, ma, mr > 0 ? ma / mr : ma);
    }
    double la, lr;
    diff(test.logits, ref.logits, (size_t)V, &la, &lr);
    double lrel = lr > 0 ? la / lr : la;
    printf("%-8s %14.3e %14.3e   (bound %.1e)\n", "logits", la, lrel, tol);

    int agree = 0, total = 0;
    for (int g = 0; g < n_gen; g++) {
        int32_t a = argmax(ref.logits, V), b = argmax(test.logits, V);
        agree += a == b;
        total++;
        if ((int)n + g + 1 >= n_ctx) break;
        if (side_step(&ref, m, a, &err) || side_step(&test, m, a, &err)) {
            fprintf(stderr, "minfer check: %s\n", err.msg);
            goto done;
        }
    }
    double frac = total ? (double)agree / total : 1.0;
    printf("greedy agreement: %d / %d (%.1f%%, bound %.1f%%)\n", agree, total, 100 * frac, 100.0 * min_agree);
    int ok = lrel <= tol && frac >= min_agree;
    printf("%s\n", ok ? "PASS" : "FAIL");
    rc = ok ? 0 : 1;
done:
    for (int k = 0; k < 2; k++) {
        side *sd = k ? &test : &ref;
        free(sd->hidden);
        free(sd->logits);
        mf_session_free(sd->s);
        mf_ref_free(sd->ref);
    }
    free(ids);
    mf_model_free(m);
    return rc;
}

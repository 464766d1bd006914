/* cmd_perplexity.c — `minfer perplexity -m MODEL -f TEXT`: perplexity of a text, and with
 * --kl-divergence the distance of this model's predictions from a base model's saved with
 * --save-logits. The math is engine/perplexity.c (docs/perplexity.md); this file parses,
 * prints the progress line and the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "perplexity.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer perplexity [-m MODEL] -f TEXT [options]\n"
               "       minfer perplexity [-m MODEL] --kl-divergence BASE [-f TEXT] [options]\n"
               "  -f, --file FILE         the text (UTF-8)\n"
               "  -c, --ctx-size N        tokens per chunk (default 512, or the model's context if smaller);\n"
               "                          each chunk is scored on its second half\n"
               "      --chunks N          use only the first N chunks\n"
               "  -b, --batch-size N      tokens per forward step (default 512)\n"
               "  -t, --threads N         CPU threads (default: one per core)\n"
               "      --device D          auto | cpu | cuda\n"
               "      --kv-f16            store the KV cache in binary16 (the default)\n"
               "      --kv-f32            store the KV cache in float32\n"
               "      --save-logits FILE  store this model's log-probabilities of every scored token (the base\n"
               "                          of a later --kl-divergence run; F16, n_vocab x 2 bytes per token)\n"
               "      --kl-divergence F   compare with the base saved in F: mean KL divergence, 99th percentile,\n"
               "                          top-1 agreement, mean |dp| of the base's top token (the chunks come\n"
               "                          from F; -f, if given, must be the same text)\n"
               "      --skip-layers LIST  run without these layers, e.g. 3,7 or 2-5\n"
               "      --json              one JSON object on stdout instead of the text report\n");
}

typedef struct ppl_args {
    const char *model, *file, *device, *save, *base, *skip;
    int n_ctx, chunks, batch, threads, json, kv_f16;
} ppl_args;

static int parse(int argc, char **argv, ppl_args *a)
{
    memset(a, 0, sizeof *a);
    a->device = "auto";
    a->batch = 512;
    a->kv_f16 = -1; /* the backend's default */
    const char *C = "perplexity";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
#define VAL()                                              \
    do {                                                   \
        if (!(v = drv_next(C, argc, argv, &i))) return -1; \
    } while (0)
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            VAL();
            a->model = v;
        } else if (!strcmp(o, "-f") || !strcmp(o, "--file")) {
            VAL();
            a->file = v;
        } else if (!strcmp(o, "-c") || !strcmp(o, "--ctx-size")) {
            VAL();
            if (drv_int(C, o, v, 4, 1 << 20, &a->n_ctx)) return -1;
        } else if (!strcmp(o, "--chunks")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 20, &a->chunks)) return -1;
        } else if (!strcmp(o, "-b") || !strcmp(o, "--batch-size")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 16, &a->batch)) return -1;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &a->threads)) return -1;
        } else if (!strcmp(o, "--device")) {
            VAL();
            a->device = v;
        } else if (!strcmp(o, "--save-logits")) {
            VAL();
            a->save = v;
        } else if (!strcmp(o, "--kl-divergence")) {
            VAL();
            a->base = v;
        } else if (!strcmp(o, "--skip-layers")) {
            VAL();
            a->skip = v;
        } else if (!strcmp(o, "--json")) a->json = 1;
        else if (!strcmp(o, "--kv-f16")) a->kv_f16 = 1;
        else if (!strcmp(o, "--kv-f32")) a->kv_f16 = 0;
        else {
            fprintf(stderr, "minfer perplexity: unknown option '%s' (see minfer perplexity --help)\n", o);
            return -1;
        }
#undef VAL
    }
    if (!a->file && !a->base) {
        fprintf(stderr, "minfer perplexity: give the text with -f FILE\n");
        return -1;
    }
    if (a->save && a->base) {
        fprintf(
            stderr,
            "minfer perplexity: --save-logits and --kl-divergence are exclusive (save the base first, then compare)\n");
        return -1;
    }
    if (a->base && a->chunks) {
        fprintf(stderr,
                "minfer perplexity: --chunks does not apply to --kl-divergence (the base file fixes the chunks)\n");
        return -1;
    }
    return 0;
}

typedef struct prog {
    double t0;
    int json;
} prog;

static void progress(void *user, const mf_ppl_stats *st)
{
    prog *p = user;
    double dt = drv_now() - p->t0;
    fprintf(stderr, "\rminfer perplexity: chunk %d/%d, perplexity %.4f, %.0f tok/s", st->chunks_done, st->n_chunks,
            st->ppl, (double)st->chunks_done * st->n_ctx / (dt > 0 ? dt : 1e-9));
    if (st->has_base) fprintf(stderr, ", KLD %.6f", st->kld);
    fprintf(stderr, "   ");
    fflush(stderr);
}

static void print_json(const ppl_args *a, const char *path, const mf_ppl_stats *st, double secs, const char *skip)
{
    printf("{\"model\":");
    drv_json_str(stdout, path);
    printf(",\"text\":");
    drv_json_str(stdout, a->file ? a->file : "");
    if (skip) printf(",\"skip_layers\":"), drv_json_str(stdout, skip);
    printf(
        ",\"n_ctx\":%d,\"chunks\":%d,\"tokens_scored\":%lld,\"nll\":%.8f,\"nll_se\":%.8f,\"ppl\":%.6f,\"ppl_se\":%.6f",
        st->n_ctx, st->n_chunks, (long long)st->n, st->nll, st->nll_se, st->ppl, st->ppl_se);
    if (st->has_base) {
        printf(",\"base\":");
        drv_json_str(stdout, a->base);
        printf(",\"base_ppl\":%.6f,\"kld\":%.8f,\"kld_se\":%.8f,\"kld_p99\":%.8f,\"kld_max\":%.8f,\"top1\":%.6f,"
               "\"top1_se\":%.6f,\"dp_top\":%.8f",
               st->base_ppl, st->kld, st->kld_se, st->kld_p99, st->kld_max, st->top1, st->top1_se, st->dp_top);
    }
    printf(",\"seconds\":%.3f}\n", secs);
}

static void print_text(const ppl_args *a, const char *path, const mf_ppl_stats *st, double secs)
{
    printf("model:           %s\n", path);
    printf("text:            %s: %d chunks of %d tokens, second halves scored: %lld tokens (%.1f s)\n",
           a->file ? a->file : a->base, st->n_chunks, st->n_ctx, (long long)st->n, secs);
    printf("perplexity:      %.4f ± %.4f   (mean NLL %.5f ± %.5f nats)\n", st->ppl, st->ppl_se, st->nll, st->nll_se);
    if (!st->has_base) return;
    printf("base:            %s (perplexity %.4f over the same tokens)\n", a->base, st->base_ppl);
    printf("KL divergence:   mean %.6f ± %.6f, 99th percentile %.6f, max %.6f\n", st->kld, st->kld_se, st->kld_p99,
           st->kld_max);
    printf("top-1 agreement: %.2f ± %.2f %%\n", 100 * st->top1, 100 * st->top1_se);
    printf("mean |Δp| of the base's top token: %.6f\n", st->dp_top);
}

int mf_cmd_perplexity(int argc, char **argv)
{
    ppl_args a;
    if (parse(argc, argv, &a)) return 2;
    const char *path = a.model ? a.model : drv_default_model();
    if (!path) return 1;
    if ((a.save && drv_same_file(a.save, path)) || (a.save && a.file && drv_same_file(a.save, a.file))) {
        fprintf(stderr, "minfer perplexity: --save-logits '%s' would replace an input; write to another name\n",
                a.save);
        return 2;
    }
    int rc = 1;
    mf_err err;
    char *text = NULL;
    int32_t *tokens = NULL;
    mf_ppl *p = NULL;
    mf_model *m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "minfer perplexity: %s\n", err.msg);
        goto done;
    }
    if (drv_skip_layers("perplexity", m, a.skip)) goto done;
    int n_ctx = a.n_ctx ? a.n_ctx : (m->hp.n_ctx_train < 512 ? m->hp.n_ctx_train : 512), n_chunks = 0;
    if (a.file) {
        size_t text_len;
        if (!(text = drv_read_file("perplexity", a.file, &text_len))) goto done;
        if (mf_ppl_chunks(m, text, text_len, n_ctx, &tokens, &n_chunks, &err)) {
            fprintf(stderr, "minfer perplexity: %s: %s\n", a.file, err.msg);
            goto done;
        }
        if (a.chunks && a.chunks < n_chunks) n_chunks = a.chunks;
    }
    mf_session_opts so = mf_session_defaults();
    so.device = a.device;
    so.n_threads = a.threads;
    so.kv_f16 = a.kv_f16;
    so.max_batch = a.batch;
    p = mf_ppl_new(m, &so, tokens, n_chunks, n_ctx, a.base, &err);
    if (!p) {
        fprintf(stderr, "minfer perplexity: %s\n", err.msg);
        goto done;
    }
    if (mf_session_note(mf_ppl_session(p))) fprintf(stderr, "minfer: %s\n", mf_session_note(mf_ppl_session(p)));
    prog pr = {drv_now(), a.json};
    if (mf_ppl_run(p, a.save, progress, &pr, &err)) {
        fprintf(stderr, "\nminfer perplexity: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "\n");
    mf_ppl_stats st;
    mf_ppl_result(p, &st);
    if (a.json) print_json(&a, path, &st, drv_now() - pr.t0, a.skip);
    else print_text(&a, path, &st, drv_now() - pr.t0);
    if (a.save) fprintf(stderr, "minfer perplexity: saved the log-probabilities to %s\n", a.save);
    rc = 0;
done:
    mf_ppl_free(p);
    free(tokens);
    free(text);
    mf_model_free(m);
    return rc;
}

/* attbench.c — micro-benchmark of the CPU attention of one decoded token (engine/cpu/
 * attention.c), float32 against binary16 KV cache, at chosen context depths.
 *
 * For each depth it opens a session on the model (one thread, weights not packed: only the
 * cache matters here), fills every layer's cache with `depth` keys and values through the
 * backend's own store (values of a fixed pattern: the speed does not depend on them), and
 * times mf_cpu_attention_row for every layer and kv head of a token at position depth - 1:
 * the attention part of one decode step, on one thread. Time is the thread's CPU time, so
 * the other tenants of a shared machine distort it less than wall time; float32 and
 * binary16 runs alternate, and the figure is the median of the runs. "GB/s" is the cache
 * bytes the token reads (K and V of every layer up to the depth) over that time.
 *
 * usage: attbench -m MODEL [-d DEPTH[,DEPTH...]] [-r RUNS]   (defaults 512,2048,4096; 7)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu.h"
#include "minfer.h"
#include "session.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct run {
    mf_session *s;
    float *q, *out, *sc;
} run;

static int open_run(mf_model *m, int depth, int f16, run *r)
{
    mf_err err;
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_threads = 1;
    o.n_ctx = depth + 16;
    o.max_batch = 16;
    o.kv_f16 = f16;
    o.no_pack = 1;
    r->s = mf_session_new(m, &o, &err);
    if (!r->s) {
        fprintf(stderr, "attbench: %s\n", err.msg);
        return -1;
    }
    mf_bstate *st = r->s->bst;
    const mf_hparams *hp = &m->hp;
    int kvw = st->kv_width, grp = hp->n_heads / hp->n_kv_heads;
    float *k = malloc(sizeof(float) * (size_t)kvw), *v = malloc(sizeof(float) * (size_t)kvw);
    r->q = malloc(sizeof(float) * (size_t)grp * (size_t)hp->head_dim);
    r->out = malloc(sizeof(float) * (size_t)grp * (size_t)hp->head_dim);
    r->sc = malloc(sizeof(float) * (size_t)grp * (size_t)o.n_ctx);
    if (!k || !v || !r->q || !r->out || !r->sc) return -1;
    for (int l = 0; l < hp->n_layers; l++)
        for (int t = 0; t < depth; t++) {
            for (int i = 0; i < kvw; i++) {
                k[i] = (float)((t * 31 + i * 17) % 97) / 97.0f - 0.5f;
                v[i] = (float)((t * 13 + i * 7) % 89) / 89.0f - 0.5f;
            }
            mf_cpu_kv_store(st, l, 0, t % st->slots[l], k, v);
        }
    for (int i = 0; i < grp * hp->head_dim; i++) r->q[i] = (float)(i % 13) / 13.0f - 0.5f;
    st->pos[0] = depth - 1;
    st->seq[0] = 0;
    st->n = 1;
    free(k);
    free(v);
    return 0;
}

static double time_token(const run *r)
{
    const mf_hparams *hp = &r->s->m->hp;
    double t0 = cpu_now();
    for (int l = 0; l < hp->n_layers; l++) {
        const mf_weight *sk = &r->s->m->layers[l].sinks;
        for (int g = 0; g < hp->n_kv_heads; g++)
            mf_cpu_attention_row(r->s->bst, l, sk->name ? sk->data : NULL, 0, g, r->q, r->out, r->sc, 1);
    }
    return cpu_now() - t0;
}

static void close_run(run *r)
{
    mf_session_free(r->s);
    free(r->q), free(r->out), free(r->sc);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int depths[8] = {512, 2048, 4096}, nd = 3, runs = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            nd = 0;
            for (char *t = strtok(argv[++i], ","); t && nd < 8; t = strtok(NULL, ",")) depths[nd++] = atoi(t);
        } else {
            fprintf(stderr, "usage: attbench -m MODEL [-d DEPTH[,DEPTH...]] [-r RUNS]\n");
            return 2;
        }
    }
    if (!path || runs < 1 || runs > 99 || nd < 1) {
        fprintf(stderr, "usage: attbench -m MODEL [-d DEPTH[,DEPTH...]] [-r RUNS]\n");
        return 2;
    }
    for (int i = 0; i < nd; i++)
        if (depths[i] < 1 || depths[i] > (1 << 20)) {
            fprintf(stderr, "attbench: bad depth %d\n", depths[i]);
            return 2;
        }
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "attbench: %s\n", err.msg);
        return 1;
    }
    const mf_hparams *hp = &m->hp;
    printf("attbench: attention of one decoded token, all %d layers, 1 thread, thread CPU time, median of %d "
           "alternating runs\n%8s %24s %24s %8s\n",
           hp->n_layers, runs, "depth", "float32 ms (GB/s)", "binary16 ms (GB/s)", "f32/f16");
    for (int di = 0; di < nd; di++) {
        int d = depths[di];
        run r[2];
        if (open_run(m, d, 0, &r[0]) || open_run(m, d, 1, &r[1])) return 1;
        double t[2][99];
        time_token(&r[0]), time_token(&r[1]); /* warm-up */
        for (int k = 0; k < runs; k++)        /* f32 first on even runs, f16 first on odd ones */
            for (int i = 0; i < 2; i++) {
                int f = (k + i) % 2;
                t[f][k] = time_token(&r[f]);
            }
        double med[2];
        for (int f = 0; f < 2; f++) {
            qsort(t[f], (size_t)runs, sizeof(double), cmp_d);
            med[f] = t[f][runs / 2];
        }
        double bytes = 2.0 * hp->n_layers * (double)d * r[0].s->bst->kv_width;
        printf("%8d %14.3f (%6.2f) %14.3f (%6.2f) %8.2f\n", d, 1e3 * med[0], 4 * bytes / med[0] / 1e9, 1e3 * med[1],
               2 * bytes / med[1] / 1e9, med[0] / med[1]);
        close_run(&r[0]);
        close_run(&r[1]);
    }
    mf_model_free(m);
    return 0;
}

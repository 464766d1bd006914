/* cmd_bench.c — `minfer bench`: prompt-processing and generation speed, and how close
 * generation comes to the memory-bandwidth roofline.
 *
 * Method (like llama-bench): each run starts from an empty cache; "ppN" evaluates N random
 * tokens as one prompt; "tgN" evaluates N single tokens one after the other (after `depth`
 * untimed tokens when -d is given). Every test runs -r times after one warm-up; the table
 * shows the median, min and max. The roofline: a decoded token must read every weight once
 * (MoE: only the active experts, memory.h mf_mem_bytes_per_token) plus the KV cache up to its
 * position, so bytes/token ÷ measured bandwidth is the fastest possible token; "% roofline"
 * is achieved GB/s over the bandwidth measured by the built-in probe on the same machine.
 *
 * --parallel N[,N...]: the tg test again with N sequences decoding together (one session of
 * max N sequences, each with its own cache: every step evaluates one token of each, reading
 * the weights once for all; docs/batching.md): "tgNxK" gives the aggregate tok/s of the K
 * sequences and the rate of each; N = 1 is the plain tg test in the same session. The runs
 * of every N alternate within each repetition, so they see the same machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "memory.h"
#include "mf_git_commit.h"
#include "sha256.h"

typedef struct bench_args {
    const char *model, *device, *save, *skip;
    int pp, tg, reps, threads, json, bw_only, batch, kv_f16, no_graph, no_pack;
    int depths[8], n_depths;
    int par[8], n_par; /* --parallel: sequences decoding together (0 entries: the plain tg) */
} bench_args;

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer bench [-m MODEL] [options]\n"
               "  -p N            prompt tokens for the pp test (default 512, 0 = skip)\n"
               "  -n N            generated tokens for the tg test (default 128, 0 = skip)\n"
               "  -r N            runs per test (default 5)\n"
               "  -d N[,N...]     context depth before the tg test (default 0)\n"
               "  -t N            CPU threads (default: one per core)\n"
               "  -b N            prompt batch size (default 512)\n"
               "  --device D      auto | cpu | cuda\n"
               "  --kv-f16        binary16 KV cache\n"
               "  --kv-f32        float32 KV cache (default: the session's, docs/cpu.md)\n"
               "  --no-graph      no CUDA graph capture\n"
               "  --no-pack       CPU: no packed copy of the weights (the file's layout)\n"
               "  --json          one JSON object on stdout instead of the table\n"
               "  --save FILE     append one JSON record per test to FILE (JSON Lines)\n"
               "  --bandwidth     only run the memory-bandwidth probe\n"
               "  --skip-layers L run without these layers, e.g. 3,7 or 2-5 (an experiment)\n"
               "  --parallel N[,N...]  also decode with N sequences together (aggregate and per-sequence\n"
               "                  tok/s; the runs of each N alternate with the others)\n");
}

static int parse_depths(const char *v, bench_args *a)
{
    a->n_depths = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (a->n_depths == 8 || drv_int("bench", "-d", tok, 0, 1 << 24, &a->depths[a->n_depths])) return -1;
        a->n_depths++;
    }
    return a->n_depths ? 0 : -1;
}

static int parse_par(const char *v, bench_args *a)
{
    a->n_par = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (a->n_par == 8) {
            fprintf(stderr, "minfer bench: --parallel lists at most 8 numbers of sequences\n");
            return -1;
        }
        if (drv_int("bench", "--parallel", tok, 1, 4096, &a->par[a->n_par])) return -1;
        a->n_par++;
    }
    if (!a->n_par) {
        fprintf(stderr, "minfer bench: --parallel '%s' lists no number of sequences\n", v);
        return -1;
    }
    return 0;
}

static int parse(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->pp = 512;
    a->tg = 128;
    a->reps = 5;
    a->batch = 512;
    a->device = "auto";
    a->kv_f16 = -1;
    a->n_depths = 1;
    const char *C = "bench";
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
        } else if (!strcmp(o, "-p")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 20, &a->pp)) return -1;
        } else if (!strcmp(o, "-n")) {
            VAL();
            if (drv_int(C, o, v, 0, 1 << 20, &a->tg)) return -1;
        } else if (!strcmp(o, "-r")) {
            VAL();
            if (drv_int(C, o, v, 1, 1000, &a->reps)) return -1;
        } else if (!strcmp(o, "-d")) {
            VAL();
            if (parse_depths(v, a)) {
                fprintf(stderr, "minfer bench: bad -d '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(o, "-t")) {
            VAL();
            if (drv_int(C, o, v, 1, 1024, &a->threads)) return -1;
        } else if (!strcmp(o, "-b")) {
            VAL();
            if (drv_int(C, o, v, 1, 1 << 16, &a->batch)) return -1;
        } else if (!strcmp(o, "--device")) {
            VAL();
            a->device = v;
        } else if (!strcmp(o, "--kv-f16")) a->kv_f16 = 1;
        else if (!strcmp(o, "--kv-f32")) a->kv_f16 = 0;
        else if (!strcmp(o, "--no-graph")) a->no_graph = 1;
        else if (!strcmp(o, "--no-pack")) a->no_pack = 1;
        else if (!strcmp(o, "--json")) a->json = 1;
        else if (!strcmp(o, "--save")) {
            VAL();
            a->save = v;
        } else if (!strcmp(o, "--bandwidth")) a->bw_only = 1;
        else if (!strcmp(o, "--skip-layers")) {
            VAL();
            a->skip = v;
        } else if (!strcmp(o, "--parallel")) {
            VAL();
            if (parse_par(v, a)) return -1;
        } else {
            fprintf(stderr, "minfer bench: unknown option '%s' (see minfer bench --help)\n", o);
            return -1;
        }
#undef VAL
    }
    if (!a->bw_only && a->pp == 0 && a->tg == 0) {
        fprintf(stderr,
                "minfer bench: -p 0 and -n 0 leave nothing to measure (give -p or -n above 0, or --bandwidth)\n");
        return -1;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    char test[48];
    int depth, parallel;  /* parallel: sequences decoding together (tg), else 0 */
    double med, min, max; /* tok/s */
    double bytes_per_tok; /* tg only */
    double bw;            /* GB/s the roofline is taken against */
} result;

static double probe(const bench_args *a, int gpu)
{
    if (gpu) return mf_cuda_bandwidth(0, (size_t)1 << 30, 10);
    return mf_cpu_read_bandwidth(a->threads, (size_t)1 << 30, 5);
}

/* random token ids, fixed seed: every run and every build sees the same input */
static void fill_tokens(int32_t *t, int n, int vocab, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        t[i] = (int32_t)((x * 0x2545F4914F6CDD1Dull >> 33) % (uint64_t)vocab);
    }
}

static void types_summary(const mf_model *m, char *out, size_t cap)
{
    uint64_t bytes[MF_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < mf_gguf_n_tensors(m->gguf); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(m->gguf, i);
        if (t->type < MF_TYPE_COUNT) bytes[t->type] += t->nbytes;
    }
    out[0] = 0;
    for (int ty = 0; ty < MF_TYPE_COUNT; ty++) {
        if (!bytes[ty]) continue;
        char tb[32];
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s:%.1f%%", n ? "," : "", mf_type_name((uint32_t)ty, tb),
                 100.0 * (double)bytes[ty] / (double)m->weight_bytes);
    }
}

/* multiply-adds per prompt token: the output matrix runs for the last token only */
static double pp_macs(const mf_model *m, int n)
{
    double out = (double)m->output.ne[0] * (double)m->output.ne[1];
    return (double)mf_model_macs_per_token(m) - out + out / n;
}

/* Sequences 0 .. N-1 of session s (reset) each read `depth` tokens, untimed, then decode tg
 * tokens each, one step per token with all N together (N = 1: one token of sequence 0 per
 * step, as mf_session_eval makes it). Returns the seconds of the decoding, -1 with err. */
static double bench_decode(mf_session *s, const int32_t *tok, int depth, int tg, int N, mf_err *err)
{
    mf_seq_chunk *ch = malloc(sizeof *ch * (size_t)N);
    if (!ch) return mf_errf(err, "out of memory");
    int B = mf_session_max_batch(s);
    double t = -1;
    for (int q = 0; q < N; q++)
        for (int done = 0; done < depth; done += B) {
            ch[0] = (mf_seq_chunk){q, tok + q % 16 + done, depth - done < B ? depth - done : B, 1};
            if (mf_session_step(s, ch, 1, err)) goto out;
        }
    mf_session_seq_argmax(s, 0); /* waits for a GPU to finish */
    double t0 = drv_now();
    for (int i = 0; i < tg; i++) {
        for (int q = 0; q < N; q++) ch[q] = (mf_seq_chunk){q, tok + q % 16 + depth + i, 1, 1};
        if (mf_session_step(s, ch, N, err)) goto out;
    }
    mf_session_seq_argmax(s, 0);
    t = drv_now() - t0;
out:
    free(ch);
    return t;
}

/* the 1-minute load average (/proc/loadavg), -1 when unknown: the machine is shared */
static double load_1m(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int mf_cmd_bench(int argc, char **argv)
{
    bench_args a;
    if (parse(argc, argv, &a)) return 2;
    if (a.bw_only) {
        int gpu = !strcmp(a.device, "cuda");
        double bw = probe(&a, gpu);
        if (bw <= 0) {
            fprintf(stderr, "minfer bench: bandwidth probe failed\n");
            return 1;
        }
        printf("%s memory bandwidth: %.1f GB/s (%s)\n", gpu ? "GPU" : "CPU", bw,
               gpu ? "device-to-device copy, read+write bytes" : "streaming read, median of 5");
        return 0;
    }
    const char *path = a.model ? a.model : drv_default_model();
    if (!path) return 1;

    int rc = 1, n_res = 0;
    mf_err err;
    mf_session *s = NULL;
    int32_t *tok = NULL;
    double *times = malloc(sizeof(double) * (size_t)a.reps);
    result res[96];
    double *ptimes = NULL; /* [configurations][reps] of one depth */
    mf_model *m = mf_model_load(path, &err);
    if (!m || !times) {
        fprintf(stderr, "minfer bench: %s\n", m ? "out of memory" : err.msg);
        goto done;
    }
    if (drv_skip_layers("bench", m, a.skip)) goto done;

    int max_depth = 0;
    for (int i = 0; i < a.n_depths; i++) max_depth = a.depths[i] > max_depth ? a.depths[i] : max_depth;
    int need = a.pp > max_depth + a.tg ? a.pp : max_depth + a.tg;
    mf_session_opts so = mf_session_defaults();
    so.device = a.device;
    so.n_threads = a.threads;
    so.n_ctx = need > 16 ? need : 16;
    so.max_batch = a.batch;
    for (int i = 0; i < a.n_par; i++) so.n_seq = a.par[i] > so.n_seq ? a.par[i] : so.n_seq;
    if (so.n_seq > so.max_batch) so.max_batch = so.n_seq; /* one token of each in a step */
    so.kv_f16 = a.kv_f16;
    so.no_graph = a.no_graph;
    so.no_pack = a.no_pack;
    drv_progress_on_terminal(&so, m);
    double t_open = drv_now();
    s = mf_session_new(m, &so, &err);
    t_open = drv_now() - t_open;
    if (!s) {
        fprintf(stderr, "minfer bench: %s\n", err.msg);
        goto done;
    }
    if (mf_session_note(s)) fprintf(stderr, "minfer: %s\n", mf_session_note(s));
    const mf_backend *be = mf_session_backend(s);
    int gpu = strcmp(be->name, "cpu") != 0;
    tok = malloc(sizeof(int32_t) * (size_t)(need + 16));
    if (!tok) goto done;
    fill_tokens(tok, need + 16, m->hp.n_vocab, 42);

    double load = load_1m();
    double bw = probe(&a, gpu);
    mf_mem_token per_tok;
    mf_mem_bytes_per_token(m->gguf, &m->hp, m->layers, &per_tok);
    uint64_t dense = per_tok.dense, experts = per_tok.experts;
    int kv_esz = mf_session_kv_f16(s) ? 2 : 4;

    /* warm-up: page in the weights, start the threads, compile/capture on a GPU */
    if (mf_session_eval(s, tok, 8 < need ? 8 : need, NULL, &err) || mf_session_eval(s, tok + 8, 1, NULL, &err) ||
        mf_session_eval(s, tok + 9, 1, NULL, &err)) {
        fprintf(stderr, "minfer bench: %s\n", err.msg);
        goto done;
    }

    if (a.pp > 0) {
        for (int r = 0; r < a.reps; r++) {
            mf_session_reset(s);
            double t0 = drv_now();
            if (mf_session_eval(s, tok, a.pp, NULL, &err)) {
                fprintf(stderr, "minfer bench: %s\n", err.msg);
                goto done;
            }
            mf_session_argmax(s); /* waits for a GPU to finish */
            times[r] = a.pp / (drv_now() - t0);
        }
        qsort(times, (size_t)a.reps, sizeof *times, cmp_d);
        result *x = &res[n_res++];
        snprintf(x->test, sizeof x->test, "pp%d", a.pp);
        x->depth = 0;
        x->med = times[a.reps / 2];
        x->min = times[0];
        x->max = times[a.reps - 1];
        x->bytes_per_tok = 0;
        x->bw = bw;
    }
    /* tg: for each depth, each number of sequences decoding together (1 alone without
     * --parallel), their runs alternating within each repetition */
    int n_cfg = a.n_par ? a.n_par : 1, one[1] = {1}, *cfg = a.n_par ? a.par : one;
    ptimes = malloc(sizeof(double) * (size_t)n_cfg * (size_t)a.reps);
    if (!ptimes) goto done;
    for (int di = 0; a.tg > 0 && di < a.n_depths && n_res + n_cfg <= 96; di++) {
        int depth = a.depths[di];
        /* the bandwidth this machine gives varies from minute to minute (other tenants of
         * the host): probe it right before every run and take the median of those probes */
        double bws[64];
        int nbw = 0;
        for (int r = 0; r < a.reps; r++)
            for (int ci = 0; ci < n_cfg; ci++) {
                int N = cfg[ci];
                if (nbw < 64) bws[nbw++] = gpu ? bw : mf_cpu_read_bandwidth(a.threads, (size_t)1 << 30, 3);
                mf_session_reset(s);
                double t = bench_decode(s, tok, depth, a.tg, N, &err);
                if (t < 0) {
                    fprintf(stderr, "minfer bench: %s\n", err.msg);
                    goto done;
                }
                ptimes[ci * a.reps + r] = (double)N * a.tg / t;
            }
        qsort(bws, (size_t)nbw, sizeof *bws, cmp_d);
        for (int ci = 0; ci < n_cfg; ci++) {
            double *tm = ptimes + ci * a.reps;
            qsort(tm, (size_t)a.reps, sizeof *tm, cmp_d);
            result *x = &res[n_res++];
            int N = cfg[ci], n = snprintf(x->test, sizeof x->test, "tg%d", a.tg);
            if (N > 1) n += snprintf(x->test + n, sizeof x->test - (size_t)n, "x%d", N);
            if (depth) snprintf(x->test + n, sizeof x->test - (size_t)n, "@d%d", depth);
            x->depth = depth;
            x->parallel = a.n_par ? N : 0;
            x->med = tm[a.reps / 2];
            x->min = tm[0];
            x->max = tm[a.reps - 1];
            /* weights once + the KV cache up to the average position of the timed tokens;
             * with several sequences a step reads the weights once for all of them (and the
             * experts of their union of choices): no single figure, no roofline */
            x->bytes_per_tok =
                N > 1 ? 0 : (double)(dense + experts) + (double)mf_mem_kv_bytes(&m->hp, depth + a.tg / 2, 1, kv_esz);
            x->bw = bws[nbw / 2];
        }
    }

    char types[256], fname[256];
    types_summary(m, types, sizeof types);
    const char *base = strrchr(path, '/');
    snprintf(fname, sizeof fname, "%s", base ? base + 1 : path);
    if (a.json) {
        printf("{\"model\":");
        drv_json_str(stdout, fname);
        printf(",\"arch\":\"%s\",\"params\":%llu,\"bytes\":%llu,\"types\":\"%s\",\"backend\":\"%s\",\"device\":",
               m->hp.arch_name, (unsigned long long)m->n_params, (unsigned long long)m->weight_bytes, types, be->name);
        drv_json_str(stdout, be->device_name);
        if (a.skip) {
            printf(",\"skip_layers\":");
            drv_json_str(stdout, a.skip);
        }
        printf(",\"kv\":\"%s\",\"bandwidth_gbs\":%.2f,\"weight_bytes_per_token\":%llu,\"load_1m\":%.2f,\"results\":[",
               kv_esz == 2 ? "f16" : "f32", bw, (unsigned long long)(dense + experts), load);
        for (int i = 0; i < n_res; i++) {
            result *x = &res[i];
            printf("%s{\"test\":\"%s\",\"tok_s_median\":%.3f,\"tok_s_min\":%.3f,\"tok_s_max\":%.3f,\"runs\":%d",
                   i ? "," : "", x->test, x->med, x->min, x->max, a.reps);
            if (x->bytes_per_tok > 0)
                printf(",\"bytes_per_token\":%.0f,\"gb_s\":%.3f,\"roofline_pct\":%.2f", x->bytes_per_tok,
                       x->bytes_per_tok * x->med / 1e9,
                       x->bw > 0 ? 100.0 * x->bytes_per_tok * x->med / 1e9 / x->bw : 0.0);
            printf(",\"bandwidth_gbs\":%.2f", x->bw);
            if (x->parallel) printf(",\"parallel\":%d,\"tok_s_per_seq\":%.3f", x->parallel, x->med / x->parallel);
            printf("}");
        }
        printf("]}\n");
    } else {
        printf("model:     %s (%s, %.2fM params, %.1f MB, %s)\n", fname, m->hp.arch_name, m->n_params / 1e6,
               m->weight_bytes / 1e6, types);
        printf("device:    %s: %s (session opened in %.0f ms%s)\n", be->name, be->device_name, 1e3 * t_open,
               a.no_pack ? ", weights unpacked" : "");
        printf("KV cache:  %s\n", kv_esz == 2 ? "binary16" : "float32");
        if (a.skip) printf("skipped:   layers %s\n", a.skip);
        printf("bandwidth: %.1f GB/s measured (%s); weights read per token: %.1f MB (%s)\n", bw,
               gpu ? "device copy" : "streaming read", (dense + experts) / 1e6,
               experts ? "active experts only" : "all weights");
        printf("%-14s %10s %10s %10s %9s %11s\n", "test", "tok/s med", "min", "max", "GB/s", "% roofline");
        for (int i = 0; i < n_res; i++) {
            result *x = &res[i];
            if (x->parallel > 1) {
                /* against one sequence at the same depth, measured in the same repetitions */
                const result *o = NULL;
                for (int j = 0; j < n_res; j++)
                    if (res[j].parallel == 1 && res[j].depth == x->depth) o = &res[j];
                printf("%-14s %10.2f %10.2f %10.2f %9s %11s   (%d sequences: %.2f tok/s each", x->test, x->med, x->min,
                       x->max, "-", "-", x->parallel, x->med / x->parallel);
                if (o) printf("; %.2fx one sequence", x->med / o->med);
                printf(")\n");
            } else if (x->bytes_per_tok > 0) {
                double gbs = x->bytes_per_tok * x->med / 1e9;
                printf("%-14s %10.2f %10.2f %10.2f %9.2f %10.1f%%\n", x->test, x->med, x->min, x->max, gbs,
                       x->bw > 0 ? 100.0 * gbs / x->bw : 0.0);
            } else {
                printf("%-14s %10.2f %10.2f %10.2f %9s %11s   (%.1f GFLOP/s)\n", x->test, x->med, x->min, x->max, "-",
                       "-", 2.0 * pp_macs(m, a.pp) * x->med / 1e9);
            }
        }
        printf("(median of %d runs; roofline = bytes per token x tok/s / bandwidth probed before each run, median)\n",
               a.reps);
        if (load >= 0) printf("(load average before the runs: %.2f)\n", load);
    }

    if (a.save) {
        FILE *f = fopen(a.save, "a");
        if (!f) {
            fprintf(stderr, "minfer bench: cannot append to '%s'\n", a.save);
            goto done;
        }
        char sha[65], date[32];
        /* the header (metadata + tensor infos) identifies the file without hashing gigabytes */
        drv_header_sha256(m->gguf, sha);
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        for (int i = 0; i < n_res; i++) {
            result *x = &res[i];
            fprintf(f, "{\"date\":\"%s\",\"commit\":\"%s\",\"backend\":\"%s\",\"device\":", date, MF_GIT_COMMIT,
                    be->name);
            drv_json_str(f, be->device_name);
            fprintf(f, ",\"model\":");
            drv_json_str(f, fname);
            if (a.skip) {
                fprintf(f, ",\"skip_layers\":");
                drv_json_str(f, a.skip);
            }
            fprintf(
                f,
                ",\"header_sha256\":\"%s\",\"arch\":\"%s\",\"types\":\"%s\",\"kv\":\"%s\",\"test\":\"%s\",\"depth\":%d,"
                "\"tok_s_median\":%.3f,\"tok_s_min\":%.3f,\"tok_s_max\":%.3f,\"runs\":%d,\"bandwidth_gbs\":%.2f",
                sha, m->hp.arch_name, types, kv_esz == 2 ? "f16" : "f32", x->test, x->depth, x->med, x->min, x->max,
                a.reps, x->bw);
            if (x->bytes_per_tok > 0)
                fprintf(f, ",\"bytes_per_token\":%.0f,\"roofline_pct\":%.2f", x->bytes_per_tok,
                        x->bw > 0 ? 100.0 * x->bytes_per_tok * x->med / 1e9 / x->bw : 0.0);
            if (x->parallel) fprintf(f, ",\"parallel\":%d,\"tok_s_per_seq\":%.3f", x->parallel, x->med / x->parallel);
            /* graphs change decode speed on a GPU: a record says which way it ran */
            if (!strcmp(be->name, "cuda")) fprintf(f, ",\"cuda_graphs\":%s", a.no_graph ? "false" : "true");
            if (load >= 0) fprintf(f, ",\"load_1m\":%.2f", load);
            fprintf(f, "}\n");
        }
        fclose(f);
    }
    rc = 0;
done:
    free(times);
    free(ptimes);
    free(tok);
    mf_session_free(s);
    mf_model_free(m);
    return rc;
}

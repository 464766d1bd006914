/* cmd_quantize.c — `minfer quantize IN.gguf OUT.gguf TYPE`: a quantized copy of a model.
 * The plan and the conversion are engine/quantize_model.c; this file parses, prints the
 * progress line, the notes and the report. docs/quantize.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "quantize_model.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer quantize IN.gguf OUT.gguf TYPE [options]\n"
               "  TYPE                    F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K: every\n"
               "                          weight matrix in that type; MXFP4: expert matrices MXFP4, the\n"
               "                          others Q8_0; recipes Q3_K_M Q4_K_M Q5_K_M: mixed precision\n"
               "                          (docs/quantize.md). Norms, biases and 1-D tensors stay as they are.\n"
               "  --tensor-type PAT=TYPE  TYPE for the matrices whose name matches PAT (POSIX extended\n"
               "                          regex, searched; repeatable, the first match wins)\n"
               "  --keep-output           leave output.weight (or the tied embedding) in its source type\n"
               "  --imatrix FILE          importance weights from `minfer imatrix` for the scale search\n"
               "  -t, --threads N         threads (default: one per core)\n"
               "  --report                print every tensor's type, rule and relative RMS error\n"
               "  --dry-run               print the plan (every tensor's type and why), write nothing\n"
               "Sources: F32, F16, BF16 (Q8_0 with a warning). Rows that do not fit a type's block get a\n"
               "fallback type, and a note says so. OUT is written under a temporary name and renamed\n"
               "when complete.\n");
}

static void progress(void *user, const mf_qplan *p, int64_t i)
{
    int64_t *done = user, total = 0;
    for (int64_t k = 0; k < p->n; k++) total += p->t[k].convert;
    char a[32], b[32];
    fprintf(stderr, "\rminfer quantize: [%lld/%lld] %-28.28s %s -> %-6s", (long long)++*done, (long long)total,
            p->t[i].src->name, mf_type_name(p->t[i].src->type, a), mf_type_name(p->t[i].type, b));
    fflush(stderr);
}

static void print_plan(const mf_qplan *p, int with_error)
{
    printf("%-32s %-6s    %-6s %-10s %s\n", "tensor", "source", "type", with_error ? "rel. RMS" : "", "rule");
    for (int64_t i = 0; i < p->n; i++) {
        const mf_qtensor *q = &p->t[i];
        char a[32], b[32], e[32] = "";
        if (with_error) snprintf(e, sizeof e, "%.6f", q->rel_rms);
        printf("%-32s %-6s -> %-6s %-10s %s%s\n", q->src->name, mf_type_name(q->src->type, a), mf_type_name(q->type, b),
               e, q->rule, q->type != q->wanted ? " (fallback)" : "");
    }
}

int mf_cmd_quantize(int argc, char **argv)
{
    const char *C = "quantize", *pos[3] = {0};
    int n_pos = 0, report = 0, dry = 0;
    mf_quant_opts o = {0};
    const char **ov = calloc((size_t)argc, sizeof *ov);
    if (!ov) return 1;
    o.overrides = ov;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(ov);
            return 0;
        } else if (!strcmp(a, "--tensor-type")) {
            if (!(v = drv_next(C, argc, argv, &i))) goto done;
            ov[o.n_overrides++] = v;
        } else if (!strcmp(a, "--keep-output")) o.keep_output = 1;
        else if (!strcmp(a, "--imatrix")) {
            if (!(o.imatrix = drv_next(C, argc, argv, &i))) goto done;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = drv_next(C, argc, argv, &i)) || drv_int(C, a, v, 1, 1024, &o.n_threads)) goto done;
        } else if (!strcmp(a, "--report")) report = 1;
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "minfer quantize: unknown option '%s' (see minfer quantize --help)\n", a);
            goto done;
        } else if (n_pos < 3) pos[n_pos++] = a;
        else {
            fprintf(stderr, "minfer quantize: unexpected argument '%s'\n", a);
            goto done;
        }
    }
    if (n_pos != 3) {
        fprintf(stderr, "minfer quantize: need IN.gguf OUT.gguf TYPE (see minfer quantize --help)\n");
        goto done;
    }
    if (drv_same_file(pos[0], pos[1])) {
        fprintf(stderr, "minfer quantize: the output '%s' is the input file; write to another name\n", pos[1]);
        goto done;
    }
    o.target = pos[2];
    o.report = report;
    o.cancel = drv_interrupt_flag();
    int64_t done_n = 0;
    o.progress = progress;
    o.user = &done_n;
    mf_err err;
    rc = 1;
    double t0 = drv_now();
    mf_qplan *p = mf_qplan_new(pos[0], &o, &err);
    if (!p) {
        fprintf(stderr, "minfer quantize: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < p->n_notes; i++) fprintf(stderr, "minfer quantize: note: %s\n", p->notes[i]);
    if (dry) {
        print_plan(p, 0);
        rc = 0;
    } else if (mf_qplan_write(p, pos[1], &err)) {
        fprintf(stderr, "%sminfer quantize: %s (nothing written to %s)\n", done_n ? "\n" : "", err.msg, pos[1]);
    } else {
        if (done_n) fprintf(stderr, "\n");
        fprintf(stderr,
                "minfer quantize: wrote %s (%s): tensors %.2f MB -> %.2f MB, %.2f -> %.2f bits per weight, %.1f s\n",
                pos[1], o.target, p->in_bytes / 1e6, p->out_bytes / 1e6,
                8.0 * (double)p->in_bytes / (double)p->n_elements, 8.0 * (double)p->out_bytes / (double)p->n_elements,
                drv_now() - t0);
        if (report) print_plan(p, 1);
        rc = 0;
    }
    mf_qplan_free(p);
done:
    free(ov);
    return rc;
}

/* quantize_model.h — a quantized copy of a model file: which tensor gets which type (the
 * plan: a type or a mixed-precision recipe, overrides, fallbacks), then the conversion,
 * multithreaded, written through the GGUF writer. `minfer quantize` is a thin driver over
 * this; docs/quantize.md explains every rule.
 *
 *     mf_quant_opts o = {.target = "Q4_K_M", .n_threads = 0};
 *     mf_qplan *p = mf_qplan_new("in.gguf", &o, &err);      // decide, validate, no writing
 *     for (i < p->n_notes) print(p->notes[i]);                // fallbacks, warnings
 *     mf_qplan_write(p, "out.gguf", &err);                    // convert + write (atomic)
 *     mf_qplan_free(p);
 *
 * Which tensors change: the weight matrices (".weight" tensors of two or more dimensions),
 * except the gpt-oss router (ffn_gate_inp), whose top-k choice a small error flips. Every
 * other tensor — norms, biases, sinks, 1-D tensors — is copied byte for byte (minfer's
 * loader requires F32 for them, and they are a tiny part of a file). Sources: F32, F16,
 * BF16, and Q8_0 (allowed with a warning: its rounding error adds to the new one); any
 * other source type of a tensor that would change is refused. A tensor whose new type
 * equals its source type is copied unchanged.
 */
#ifndef MF_QUANTIZE_MODEL_H
#define MF_QUANTIZE_MODEL_H

#include <stdint.h>

#include "err.h"
#include "gguf.h"

typedef struct mf_qplan mf_qplan;

/* Called after each converted tensor is written (index into p->t). */
typedef void (*mf_quant_progress)(void *user, const mf_qplan *p, int64_t i);

typedef struct mf_quant_opts {
    const char *target;           /* a type (F32, F16, BF16, Q4_0 .. Q6_K, MXFP4) or a
                                     recipe (Q3_K_M, Q4_K_M, Q5_K_M); case-insensitive */
    const char *const *overrides; /* "PATTERN=TYPE": a POSIX extended regular expression
                                     searched in the tensor name; the first match wins */
    int n_overrides;
    int keep_output;     /* output.weight (or the tied embedding) keeps its type */
    const char *imatrix; /* importance file written by `minfer imatrix`, or NULL */
    int n_threads;       /* <= 0: one per core */
    int report;          /* compute every tensor's relative RMS error */
    mf_quant_progress progress;
    void *user;
    const volatile sig_atomic_t *cancel; /* non-zero stops the write (mf_gguf_w_set_cancel) */
} mf_quant_opts;

typedef struct mf_qtensor {
    const mf_gguf_tensor *src; /* in the input's mapping */
    uint32_t type;             /* written type */
    uint32_t wanted;           /* type the target/override asked for (!= type: fallback) */
    int convert;               /* 0: bytes copied unchanged */
    const char *rule;          /* why this type: "recipe", "override", "kept", ... */
    const float *imp;          /* importance per column (ne[0] x matrices), or NULL */
    double rel_rms;            /* with report: sqrt(Σ(x-y)²/Σx²) over the tensor, x the
                                  source values, y the written ones; 0 when copied */
} mf_qtensor;

struct mf_qplan {
    mf_gguf *in;   /* the input, open */
    mf_gguf *imat; /* the importance file, open (or NULL) */
    mf_quant_opts o;
    uint32_t file_type; /* general.file_type written (llama_ftype numbering) */
    int64_t n;
    mf_qtensor *t; /* one per input tensor, in file order */
    char **notes;  /* one line each: fallbacks, warnings */
    int n_notes;
    uint64_t in_bytes, out_bytes, n_elements; /* tensor data totals */
};

/* Open IN, decide every tensor's type, check everything that can be checked before
 * writing (target name, patterns, source types, the importance file). NULL with a message
 * on error. */
mf_qplan *mf_qplan_new(const char *in, const mf_quant_opts *o, mf_err *err);
/* Convert and write OUT (temporary name, renamed when complete: never a partial OUT).
 * Metadata: every key of IN copied, general.file_type set, general.quantization_version = 2
 * when a block type is written. */
int mf_qplan_write(mf_qplan *p, const char *out, mf_err *err);
void mf_qplan_free(mf_qplan *p);

/* general.file_type (llama.cpp's llama_ftype) for a target name; 0 (all F32) for unknown
 * names. Plain K types count as their _S variants (Q4_K -> Q4_K_S = 14). */
uint32_t mf_quant_file_type(const char *target);

#endif

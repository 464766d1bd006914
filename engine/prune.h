/* prune.h — a model with fewer layers: drop them from a file (`minfer prune`), or skip them
 * at run time (`--skip-layers` of run, bench, perplexity). docs/quantize.md §5.
 *
 * Skipping layer l means the block adds nothing: the residual stream leaves it as it came,
 * x_{l+1} = x_l. Both forward passes (forward.c, ref_forward.c) honour the per-layer flag
 * mf_layer.skip; the layer's weights stay mapped and its KV cache allocated (a quick
 * experiment, not a smaller model). Dropping layers from the file gives the same logits
 * (tests/test_prune.c compares them bit for bit) in a smaller file.
 */
#ifndef MF_PRUNE_H
#define MF_PRUNE_H

#include "err.h"
#include "model.h"

/* Mark layers[0..n) of m as skipped. Every index must name a layer of the model; repeats
 * are an error (a typo, most likely). n == 0 clears nothing and succeeds. */
int mf_model_skip_layers(mf_model *m, const int *layers, int n, mf_err *err);

/* Write OUT, a copy of the GGUF file IN without the layers drop[0..n):
 *   - the kept layers' tensors are renamed blk.<new index>.* (in the order of IN) and their
 *     bytes are copied unchanged, like every other tensor;
 *   - every metadata key is copied, <arch>.block_count set to the new count, and every
 *     array under <arch>. whose length is the old block count (a per-layer property) loses
 *     the dropped layers' entries;
 *   - gpt-oss alternates sliding-window and full-attention layers by index (layer l slides
 *     iff l % P < P - 1): a drop that would change a kept layer's kind is refused, naming
 *     the layer; that holds exactly when the number of dropped layers below every kept
 *     layer is a multiple of P.
 * Refused as well: an index out of range, a repeat, dropping every layer. OUT is written
 * through the GGUF writer (temporary file, renamed when complete; a non-zero *cancel stops
 * it, see mf_gguf_w_set_cancel; cancel may be NULL); IN is only read. */
int mf_prune_file(const char *in, const char *out, const int *drop, int n, const volatile sig_atomic_t *cancel,
                  mf_err *err);

#endif

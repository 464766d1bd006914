/* forward.h — one step of the fast forward pass (forward.c), and everything it works with,
 * handed over in one small struct: the model, the backend and its state for this sequence,
 * the activation buffers, and an optional hook after each layer. The forward pass knows
 * nothing of sessions (session.c makes this struct for every step).
 */
#ifndef MF_FORWARD_H
#define MF_FORWARD_H

#include <stdint.h>

#include "backend.h"
#include "err.h"
#include "model.h"

/* Activation buffers of the backend (device memory on a GPU), max_batch rows each, row
 * widths in memory.h mf_mem_acts_of: the residual stream x, the normed h, the projections
 * q, k, v, the attention output attn_out, and the logits. */
typedef struct mf_fwd_bufs {
    float *x, *h, *q, *k, *v, *attn_out, *logits;
} mf_fwd_bufs;

/* Called after the embeddings (layer -1) and after each layer with the step's rows of x in
 * the backend's buffer; returns 0, or -1 with err to fail the step. */
typedef int (*mf_fwd_hook)(void *user, int layer, int rows, mf_err *err);

typedef struct mf_forward {
    const mf_model *m;
    mf_backend *be;
    mf_bstate *st;
    mf_fwd_bufs buf;
    mf_fwd_hook hook; /* NULL: none. With a hook every step runs eagerly (backend.h) */
    void *hook_user;
} mf_forward;

/* One step of n tokens (n <= max_batch) at positions pos0 .. pos0 + n - 1. all_logits: logits
 * for every row (n rows of buf.logits), else only for the last (row 0). */
int mf_forward_step(const mf_forward *f, const int32_t *tokens, int n, int pos0, int all_logits, mf_err *err);

#endif

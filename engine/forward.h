/* forward.h — one step of the fast forward pass (forward.c), and everything it works with,
 * handed over in one small struct: the model, the backend and its state for the sequences,
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

/* One step (backend.h mf_step): n <= max_batch rows, each a token of some sequence at some
 * position; the logits of the rows s->out[0 .. n_out) land in rows 0 .. n_out of
 * buf.logits. */
int mf_forward_step(const mf_forward *f, const mf_step *s, mf_err *err);

#endif

/* session.h — internals of a session (engine/session.c, engine/forward.c): the backend, its
 * state, and the activation buffers the forward pass moves between operations. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include "minfer.h"

struct mf_session {
    mf_model *m;
    mf_backend *be;
    mf_bstate *bst;
    mf_session_opts o;
    int n_ctx, max_batch, logits_rows;
    int pos;                    /* tokens in the cache */
    /* activation buffers of the backend (device memory on a GPU), max_batch rows each */
    float *x, *h, *q, *k, *v, *att;
    float *logits;              /* [logits_rows][n_vocab] */
    int last_row;               /* row of `logits` holding the last token's logits */
    float *host_logits;         /* [n_vocab] */
    int host_valid;
    float *hook_buf;            /* [max_batch][n_embd] host copy for the layer hook */
    mf_layer_hook hook;
    void *hook_user;
    char note[256];             /* e.g. why "auto" fell back to the CPU */
};

/* One forward step (forward.c). all_logits: logits for every row (n <= logits_rows), else
 * only for the last. */
int mf_forward_step(mf_session *s, const int32_t *tokens, int n, int pos0, int all_logits, mf_err *err);
/* Copy the hidden state to the host and call the hook (session.c); -1 with err when the
 * copy fails (the hook is then not called). */
int mf_session_call_hook(mf_session *s, int layer, int rows, mf_err *err);

#endif

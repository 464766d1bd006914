/* session.h — internals of a session (engine/session.c): the backend, the model prepared on
 * it, the sequence's state, and the activation buffers the forward pass (forward.h) moves
 * between operations. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include "forward.h"
#include "minfer.h"

struct mf_session {
    mf_model *m;
    mf_backend *be;
    mf_bmodel *bm; /* the model prepared on be */
    mf_bstate *bst;
    mf_session_opts o;
    int n_ctx, max_batch, logits_rows;
    int pos;            /* tokens in the cache */
    mf_fwd_bufs buf;    /* activation buffers; logits: [logits_rows][n_vocab] */
    int last_row;       /* row of `logits` holding the last token's logits */
    float *host_logits; /* [n_vocab] */
    int host_valid;
    float *hook_buf; /* [max_batch][n_embd] host copy for the layer hook */
    mf_layer_hook hook;
    void *hook_user;
    char note[256]; /* e.g. why "auto" fell back to the CPU */
};

/* The forward pass's view of the session for one step (forward.h). */
mf_forward mf_session_forward(mf_session *s);

#endif

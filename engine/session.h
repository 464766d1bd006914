/* session.h — internals of a session (engine/session.c): the backend, the model prepared on
 * it, the sequences' state (each its own KV cache in the backend's state, its position and
 * the tokens its cache holds), and the activation buffers the forward pass (forward.h) moves
 * between operations. */
#ifndef MF_SESSION_H
#define MF_SESSION_H

#include "forward.h"
#include "minfer.h"

/* One sequence of a session. */
typedef struct mf_seq {
    int pos;         /* tokens in its cache */
    int32_t *tokens; /* [cap] the tokens its cache holds, positions 0 .. pos − 1 */
    int cap;
    /* row of the session's logits holding its last token's, −1: none (it had no row with
     * logits in the last step) */
    int logits_row;
    /* every position from swa_lo to pos − 1 is still in the sliding-window layers' rings
     * (docs/session.md §5) */
    int swa_lo;
} mf_seq;

struct mf_session {
    mf_model *m;
    mf_backend *be;
    mf_bmodel *bm; /* the model prepared on be */
    mf_bstate *bst;
    mf_session_opts o;
    int n_ctx, max_batch, logits_rows, n_seq;
    int swa_slots;      /* ring slots of the sliding-window layers (0: none slides) */
    mf_seq *seq;        /* [n_seq] */
    int32_t *step_rows; /* [4][max_batch] the step being built: tokens, sequences, positions,
                           rows with logits (backend.h mf_step) */
    mf_fwd_bufs buf;    /* activation buffers; logits: [logits_rows][n_vocab] */
    float *host_logits; /* [n_vocab] */
    int host_seq;       /* the sequence whose logits host_logits holds, −1: none */
    float *hook_buf;    /* [max_batch][n_embd] host copy for the layer hook */
    mf_layer_hook hook;
    void *hook_user;
    char note[256]; /* e.g. why "auto" fell back to the CPU */
};

/* The forward pass's view of the session for one step (forward.h). */
mf_forward mf_session_forward(mf_session *s);

#endif

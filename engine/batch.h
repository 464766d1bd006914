/* batch.h — several generations decoded together (continuous batching), driven from one
 * thread: one model, one backend, a session of S sequences (minfer.h mf_session_step), and
 * per running request one generation (generate.h mf_gen) that turns its sequence's logits
 * into tokens and text. docs/batching.md is the chapter.
 *
 *     mf_batcher *b = mf_batcher_new(m, &opts, &err);
 *     int id = mf_batcher_submit(b, prompt, n, &params, on_delta, on_done, user, &err);
 *     while (mf_batcher_active(b)) mf_batcher_step(b, &err);   // deltas, then on_done
 *     mf_batcher_free(b);
 *
 * A step evaluates, in one forward pass, the next token of every sequence that is
 * generating and prompt tokens of the sequences that are still reading theirs, then hands
 * each sequence's logits to its generation. Requests join (submit) and leave (their end,
 * cancel) between steps. A request goes to the free sequence whose cache already holds the
 * longest prefix of its prompt (those tokens are not evaluated again).
 *
 * Threads: every function here is for one thread (the server's engine thread); callbacks
 * run on it, inside step, submit's caller never sees one. A callback may cancel requests
 * or submit new ones.
 */
#ifndef MF_BATCH_H
#define MF_BATCH_H

#include <stdint.h>

#include "generate.h"
#include "minfer.h"

typedef struct mf_batcher mf_batcher;

typedef struct mf_batcher_opts {
    mf_session_opts session; /* device, threads, n_ctx (of each sequence), max_batch (the most
                                rows of one step, 512), ...; its n_seq is ignored */
    int n_seq;               /* S: sequences decoded together (<= 0: 1) */
    int prompt_chunk;        /* the most prompt rows a step carries while sequences are
                                generating (<= 0: MF_BATCH_PROMPT_CHUNK); with none
                                generating, prompts get the whole step */
} mf_batcher_opts;

#define MF_BATCH_PROMPT_CHUNK 64

mf_batcher *mf_batcher_new(mf_model *m, const mf_batcher_opts *o, mf_err *err);
/* Cancels what still runs (their done callbacks run), then frees. */
void mf_batcher_free(mf_batcher *b);

/* Called once when a request ends, with its result (owned by the library during the call:
 * copy what you keep). */
typedef void (*mf_done_fn)(void *user, const mf_gen_result *r);

/* Start a generation of `prompt` (n tokens, copied) on a free sequence: the one whose cache
 * holds the longest prefix of it that can be kept (minfer.h mf_session_seq_reusable), those
 * tokens not evaluated again — unless keeping it would discard more of that cache than it
 * keeps (then it counts as no match); among equals the one unused the longest. Returns a request id >= 0; -1 with err when the request is wrong (an empty
 * prompt, a token outside the vocabulary, a prompt longer than the context — the message
 * gives both lengths —, parameters the generation cannot honour); -2 when every sequence is
 * busy (the caller queues). on_delta (may be NULL) receives the text as it becomes safe,
 * on_done the result, both from inside mf_batcher_step (or cancel/free). */
int mf_batcher_submit(mf_batcher *b, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta,
                      mf_done_fn on_done, void *user, mf_err *err);
/* End a request now: its done callback runs with MF_FINISH_CANCELLED and its sequence is
 * free for the next submit. Unknown or finished ids are ignored. */
void mf_batcher_cancel(mf_batcher *b, int id);
/* One forward step over the active sequences (docs/batching.md §3: which rows a step
 * carries), then each sequence's next token: deltas, and done callbacks for the requests
 * that ended. Returns the number of requests still active; -1 with err when the device
 * failed, after ending every active request with MF_FINISH_ERROR and that message. */
int mf_batcher_step(mf_batcher *b, mf_err *err);
int mf_batcher_active(const mf_batcher *b);

/* Counters for /metrics and statistics. */
typedef struct mf_batcher_stats {
    uint64_t prompt_tokens;    /* tokens of the prompts submitted */
    uint64_t cached_tokens;    /* of which were in a sequence's cache already */
    uint64_t generated_tokens; /* tokens chosen by the generations */
    uint64_t steps;            /* forward steps */
    double decode_tok_s;       /* tokens generated per second of the steps that carried
                                  generating sequences (all sequences together) */
    int active, n_seq;
} mf_batcher_stats;
void mf_batcher_stats_get(const mf_batcher *b, mf_batcher_stats *s);

/* The model (tokenizer, chat format) for rendering and counting. */
const mf_model *mf_batcher_model(const mf_batcher *b);
/* Context positions of each sequence: a prompt and its answer must fit. */
int mf_batcher_n_ctx(const mf_batcher *b);
/* The session underneath (its sequences are the batcher's): for statistics and tests. */
mf_session *mf_batcher_session(mf_batcher *b);

#endif

/* engine.c — the adapter between the server and the library's generation API, and the
 * STAND-IN conversation renderer (engine.h says what and until when): a system (or
 * developer) message and one user turn, through the library's one-turn mf_chat_render.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err)
{
    static const char *why = "this build renders a system (or developer) message and one user message; "
                             "conversations with more turns need the library of issue 14";
    if (n < 1) {
        mf_errf(err, "the conversation is empty");
        return NULL;
    }
    if (!add_generation_prompt) {
        mf_errf(err, "%s", why);
        return NULL;
    }
    mf_chat_opts co = o ? *o : (mf_chat_opts){0};
    int i = 0;
    if (n == 2 && (msgs[0].role == MF_ROLE_SYSTEM || msgs[0].role == MF_ROLE_DEVELOPER)) {
        if (fmt == MF_CHAT_NONE) {
            mf_errf(err, "the model has no chat template, so a system message cannot be rendered");
            return NULL;
        }
        co.system = msgs[0].content ? msgs[0].content : "";
        i = 1;
    }
    if (n - i != 1 || msgs[i].role != MF_ROLE_USER || msgs[i].n_tool_calls) {
        mf_errf(err, "%s", why);
        return NULL;
    }
    return mf_chat_render(fmt, msgs[i].content ? msgs[i].content : "", &co, err);
}

int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err)
{
    (void)o;
    if (!tools_json) return 0;
    return mf_errf(err, "tools are not supported by this build yet (they need the library of issue 14)");
}

int srv_engine_n_seq(int requested) { return requested > 0 ? requested : 1; }
int srv_engine_n_ctx(const mf_batcher *b) { return mf_batcher_n_ctx(b); }

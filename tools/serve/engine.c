/* engine.c — the adapters between the server and the library's generation API (engine.h). */
#include "engine.h"

int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err)
{
    if (!tools_json) return 0;
    if (mf_chat_tools_check(tools_json, err)) return -1;
    o->tools_json = tools_json;
    return 0;
}

int srv_engine_n_seq(int requested) { return requested > 0 ? requested : 1; }
int srv_engine_n_ctx(const mf_batcher *b) { return mf_batcher_n_ctx(b); }

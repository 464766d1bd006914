/* chat.c — prompt formats for chat models and the harmony output parser (contract:
 * chat.h; docs/chat.md §2).
 *
 * minfer runs no Jinja: it recognizes the format from the GGUF's chat template (or the
 * architecture) and renders a conversation with the hard-coded rules below. The rendered
 * text is then tokenized with parse_special = 1, so the special-token texts it contains
 * (</s>, <|im_end|>, <|start|>...) become their ids. Harmony's tool list is rendered by
 * chat_tools.c; generate.c reads the model's output with the parser at the end.
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* ------------------------------------------------------------------ names, detection */

static const char *const format_names[] = {"none", "zephyr", "llama2", "chatml", "harmony"};

int mf_chat_format_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < (int)(sizeof format_names / sizeof format_names[0]); i++)
        if (!strcmp(name, format_names[i])) return i;
    return -1;
}

const char *mf_chat_format_name(int fmt)
{
    if (fmt < 0 || fmt >= (int)(sizeof format_names / sizeof format_names[0])) return "unknown";
    return format_names[fmt];
}

int mf_chat_detect(const char *tmpl, const char *arch)
{
    /* harmony first: its template also mentions roles in other spellings */
    if (arch && !strcmp(arch, "gpt-oss")) return MF_CHAT_HARMONY;
    if (!tmpl) return MF_CHAT_NONE;
    if (strstr(tmpl, "<|start|>") && strstr(tmpl, "<|channel|>")) return MF_CHAT_HARMONY;
    if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|assistant|>")) return MF_CHAT_ZEPHYR;
    if (strstr(tmpl, "<|im_start|>")) return MF_CHAT_CHATML;
    if (strstr(tmpl, "[INST]")) return MF_CHAT_LLAMA2;
    return MF_CHAT_NONE;
}

/* ------------------------------------------------------------------ rendering */

static const char *const role_names[] = {"system", "developer", "user", "assistant", "tool"};

const char *mf_role_name(int role)
{
    if (role < 0 || role >= (int)(sizeof role_names / sizeof role_names[0])) return "unknown";
    return role_names[role];
}

/* Llama-2 strips each message (Meta's reference code and the Hugging Face template) */
static void add_trimmed(mf_sb *b, const char *s)
{
    const char *e = s + strlen(s);
    while (s < e && strchr(" \t\n\r\f\v", *s)) s++;
    while (e > s && strchr(" \t\n\r\f\v", e[-1])) e--;
    mf_sb_add_n(b, s, (size_t)(e - s));
}

static int valid_date(const char *d)
{
    /* YYYY-MM-DD, digits only: it is pasted into the system message as it is */
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) return 0;
    return 1;
}

static int is_sys(int role) { return role == MF_ROLE_SYSTEM || role == MF_ROLE_DEVELOPER; }

/* A conversation as the renderers see it: o->system (when given) and the leading system
 * and developer messages joined into one system text, then the other messages. */
typedef struct conv {
    const mf_chat_msg *m;
    int n;     /* messages after the leading system ones */
    mf_sb sys; /* the joined system text */
    int has_sys;
} conv;

/* Checks every message and collects the system text. Only Zephyr and ChatML can say a system
 * message anywhere (`anywhere`); elsewhere one after the start is an error. */
static int conv_init(conv *c, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int fmt, int anywhere, mf_err *err)
{
    memset(c, 0, sizeof *c);
    if (n < 1 || !msgs) return mf_errf(err, "chat: the conversation is empty");
    for (int i = 0; i < n; i++) {
        const mf_chat_msg *m = &msgs[i];
        if (m->role < MF_ROLE_SYSTEM || m->role > MF_ROLE_TOOL)
            return mf_errf(err, "chat: message %d has an unknown role (%d)", i + 1, m->role);
        if (!m->content && !(m->role == MF_ROLE_ASSISTANT && m->n_tool_calls > 0))
            return mf_errf(err, "chat: message %d (%s) has no content", i + 1, mf_role_name(m->role));
        if ((m->role == MF_ROLE_TOOL || m->n_tool_calls > 0) && fmt != MF_CHAT_HARMONY)
            return mf_errf(err,
                           "chat: message %d is a tool %s, which only the harmony format (gpt-oss) can render, "
                           "not %s",
                           i + 1, m->role == MF_ROLE_TOOL ? "result" : "call", mf_chat_format_name(fmt));
        if (m->n_tool_calls < 0 || (m->n_tool_calls > 0 && !m->tool_calls))
            return mf_errf(err, "chat: message %d has a bad tool call list", i + 1);
    }
    int lead = 0;
    if (!anywhere) {
        while (lead < n && is_sys(msgs[lead].role)) lead++;
        for (int i = lead; i < n; i++)
            if (is_sys(msgs[i].role))
                return mf_errf(err,
                               "chat: message %d (%s) comes after the conversation started; the %s format "
                               "takes system messages only at the start",
                               i + 1, mf_role_name(msgs[i].role), mf_chat_format_name(fmt));
    }
    if (o && o->system) {
        mf_sb_add(&c->sys, o->system);
        c->has_sys = 1;
    }
    for (int i = 0; i < lead; i++) {
        if (c->has_sys) mf_sb_add(&c->sys, "\n\n");
        mf_sb_add(&c->sys, msgs[i].content);
        c->has_sys = 1;
    }
    c->m = msgs + lead;
    c->n = n - lead;
    return 0;
}

static const char *text_of(const char *s) { return s ? s : ""; }

/* none: one running text (chat.h) */
static int render_plain(mf_sb *b, const conv *c, mf_err *err)
{
    int any = 0;
    if (c->has_sys) {
        mf_sb_add(b, c->sys.p);
        any = 1;
    }
    for (int i = 0; i < c->n; i++) {
        if (any && c->m[i].role != MF_ROLE_ASSISTANT) mf_sb_add(b, "\n");
        mf_sb_add(b, c->m[i].content);
        any = 1;
    }
    (void)err;
    return 0;
}

/* zephyr and chatml: each message in its markers, the system ones wherever they are */
static int render_tagged(mf_sb *b, int fmt, const conv *c, int gen)
{
    static const char *const zephyr_tag[] = {"<|system|>\n", "<|system|>\n", "<|user|>\n", "<|assistant|>\n"};
    static const char *const chatml_role[] = {"system", "system", "user", "assistant"};
    if (c->has_sys) {
        mf_sb_add(b, fmt == MF_CHAT_ZEPHYR ? zephyr_tag[0] : "<|im_start|>system\n");
        mf_sb_add(b, c->sys.p);
        mf_sb_add(b, fmt == MF_CHAT_ZEPHYR ? "</s>\n" : "<|im_end|>\n");
    }
    for (int i = 0; i < c->n; i++) {
        int r = c->m[i].role;
        if (fmt == MF_CHAT_ZEPHYR) mf_sb_add(b, zephyr_tag[r]);
        else mf_sb_addf(b, "<|im_start|>%s\n", chatml_role[r]);
        mf_sb_add(b, c->m[i].content);
        mf_sb_add(b, fmt == MF_CHAT_ZEPHYR ? "</s>\n" : "<|im_end|>\n");
    }
    if (gen) mf_sb_add(b, fmt == MF_CHAT_ZEPHYR ? "<|assistant|>\n" : "<|im_start|>assistant\n");
    return 0;
}

/* llama2: [INST] <<SYS>>\n{s}\n<</SYS>>\n\n{u} [/INST] {a} </s><s>[INST] {u} [/INST] — user and
 * assistant alternate, starting and (for generation) ending with the user, as Meta's
 * reference code requires */
static int render_llama2(mf_sb *b, const conv *c, int gen, mf_err *err)
{
    for (int i = 0; i < c->n; i++) {
        int want = i % 2 == 0 ? MF_ROLE_USER : MF_ROLE_ASSISTANT;
        if (c->m[i].role != want)
            return mf_errf(err,
                           "chat: the llama2 format needs user and assistant messages in turn, starting with "
                           "the user; message %d is from the %s",
                           i + 1, mf_role_name(c->m[i].role));
    }
    if (gen && c->n % 2 == 0)
        return mf_errf(err, "chat: the llama2 format generates after a user message; the last one is the "
                            "assistant's");
    for (int i = 0; i < c->n; i++) {
        if (c->m[i].role == MF_ROLE_USER) {
            mf_sb_add(b, i == 0 ? "[INST] " : "<s>[INST] ");
            if (i == 0 && c->has_sys) {
                mf_sb_add(b, "<<SYS>>\n");
                add_trimmed(b, c->sys.p);
                mf_sb_add(b, "\n<</SYS>>\n\n");
            }
            add_trimmed(b, c->m[i].content);
            mf_sb_add(b, " [/INST]");
        } else {
            mf_sb_add(b, " ");
            add_trimmed(b, c->m[i].content);
            mf_sb_add(b, " </s>");
        }
    }
    return 0;
}

/* A function name put into a harmony header: the tool list allows letters, digits, '_' and
 * '-' (chat_tools.c); history also takes a namespace dot ("browser.search"). Anything else
 * (spaces, '<') would change the header's meaning. */
static int header_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", s[i])) return 0;
    return 1;
}

/* harmony recipient of a function: "functions.NAME", or NAME itself when it has a namespace */
static void add_recipient(mf_sb *b, const char *name)
{
    if (!strchr(name, '.')) mf_sb_add(b, "functions.");
    mf_sb_add(b, name);
}

/* The name of the call `id` among the tool calls of msgs[0..upto) (latest first). */
static const char *call_name(const mf_chat_msg *msgs, int upto, const char *id)
{
    for (int i = upto - 1; i >= 0; i--)
        for (int k = 0; k < msgs[i].n_tool_calls; k++) {
            const mf_tool_call *tc = &msgs[i].tool_calls[k];
            if (id && tc->id && !strcmp(tc->id, id)) return tc->name;
        }
    return NULL;
}

/* harmony (docs/chat.md §2, docs/generate.md §6): the system message as the GGUF Jinja template renders it,
 * the system text as the developer message's "# Instructions", the tools as its "# Tools" */
static int render_harmony(mf_sb *b, const conv *c, const mf_chat_opts *o, int gen, mf_err *err)
{
    const char *effort = o && o->reasoning ? o->reasoning : "medium";
    if (strcmp(effort, "low") && strcmp(effort, "medium") && strcmp(effort, "high"))
        return mf_errf(err, "chat: reasoning effort '%.32s' is not low, medium or high", effort);
    if (o && o->date && !valid_date(o->date)) return mf_errf(err, "chat: date '%.32s' is not YYYY-MM-DD", o->date);
    int n_tools = 0;
    char *tools = NULL;
    if (o && o->tools_json && !(tools = mf_harmony_tools_section(o->tools_json, &n_tools, err))) return -1;
    mf_sb_add(b, "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                 "Knowledge cutoff: 2024-06\n");
    if (o && o->date) mf_sb_addf(b, "Current date: %s\n", o->date);
    mf_sb_addf(b, "\nReasoning: %s\n\n", effort);
    mf_sb_add(b, "# Valid channels: analysis, commentary, final. Channel must be included for every message.");
    if (n_tools) mf_sb_add(b, "\nCalls to these tools must go to the commentary channel: 'functions'.");
    mf_sb_add(b, "<|end|>");
    if (c->has_sys || n_tools) {
        mf_sb_add(b, "<|start|>developer<|message|>");
        if (c->has_sys) mf_sb_addf(b, "# Instructions\n\n%s\n\n", c->sys.p);
        if (n_tools) mf_sb_add(b, tools);
        mf_sb_add(b, "<|end|>");
    }
    free(tools);
    const mf_chat_msg *m = c->m;
    for (int i = 0; i < c->n; i++) {
        if (m[i].role == MF_ROLE_USER) {
            mf_sb_addf(b, "<|start|>user<|message|>%s<|end|>", m[i].content);
        } else if (m[i].role == MF_ROLE_TOOL) {
            const char *name = m[i].name ? m[i].name : call_name(m, i, m[i].tool_call_id);
            if (!name)
                return mf_errf(err,
                               "chat: the tool result of message %d answers call '%.64s', which no earlier "
                               "assistant message made (give the function's name)",
                               i + 1, text_of(m[i].tool_call_id));
            if (!header_name_ok(name))
                return mf_errf(err, "chat: message %d names the function '%.64s' (letters, digits, '_', '-', '.')",
                               i + 1, name);
            mf_sb_add(b, "<|start|>");
            add_recipient(b, name);
            mf_sb_addf(b, " to=assistant<|channel|>commentary<|message|>%s<|end|>", m[i].content);
        } else if (m[i].n_tool_calls == 0) {
            /* an earlier answer: its final message only (its analysis is dropped) */
            mf_sb_addf(b, "<|start|>assistant<|channel|>final<|message|>%s<|end|>", m[i].content);
        } else {
            /* a tool call: its analysis is kept while no final answer follows it */
            int answered = 0;
            for (int k = i + 1; k < c->n && !answered; k++)
                answered = m[k].role == MF_ROLE_ASSISTANT && m[k].n_tool_calls == 0;
            if (m[i].reasoning && m[i].reasoning[0] && !answered)
                mf_sb_addf(b, "<|start|>assistant<|channel|>analysis<|message|>%s<|end|>", m[i].reasoning);
            if (m[i].content && m[i].content[0])
                mf_sb_addf(b, "<|start|>assistant<|channel|>commentary<|message|>%s<|end|>", m[i].content);
            for (int k = 0; k < m[i].n_tool_calls; k++) {
                const mf_tool_call *tc = &m[i].tool_calls[k];
                if (!tc->name || !header_name_ok(tc->name))
                    return mf_errf(err, "chat: tool call %d of message %d has no valid function name ('%.64s')", k + 1,
                                   i + 1, text_of(tc->name));
                mf_sb_add(b, "<|start|>assistant<|channel|>commentary to=");
                add_recipient(b, tc->name);
                mf_sb_addf(b, " <|constrain|>json<|message|>%s<|call|>", text_of(tc->arguments));
            }
        }
    }
    if (gen) mf_sb_add(b, "<|start|>assistant");
    return 0;
}

char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err)
{
    if (fmt < MF_CHAT_NONE || fmt > MF_CHAT_HARMONY) {
        mf_errf(err, "chat: unknown format %d", fmt);
        return NULL;
    }
    if (fmt != MF_CHAT_HARMONY && o && o->tools_json) {
        mf_errf(err, "chat: tools need the harmony format (gpt-oss); this model's format is %s",
                mf_chat_format_name(fmt));
        return NULL;
    }
    conv c;
    mf_sb b = {0};
    int anywhere = fmt == MF_CHAT_ZEPHYR || fmt == MF_CHAT_CHATML;
    int rc = conv_init(&c, msgs, n, o, fmt, anywhere, err);
    if (!rc) {
        switch (fmt) {
        case MF_CHAT_NONE: rc = render_plain(&b, &c, err); break;
        case MF_CHAT_ZEPHYR:
        case MF_CHAT_CHATML: rc = render_tagged(&b, fmt, &c, add_generation_prompt); break;
        case MF_CHAT_LLAMA2: rc = render_llama2(&b, &c, add_generation_prompt, err); break;
        default: rc = render_harmony(&b, &c, o, add_generation_prompt, err); break;
        }
    }
    int oom = c.sys.oom;
    mf_sb_free(&c.sys);
    if (rc) {
        mf_sb_free(&b);
        return NULL;
    }
    char *s = oom ? (mf_sb_free(&b), NULL) : mf_sb_take(&b);
    if (!s) mf_errf(err, "chat: out of memory rendering the prompt");
    return s;
}

char *mf_chat_render(int fmt, const char *user, const mf_chat_opts *o, mf_err *err)
{
    if (!user) {
        mf_errf(err, "chat: no user message");
        return NULL;
    }
    mf_chat_msg m = {.role = MF_ROLE_USER, .content = user};
    return mf_chat_render_conv(fmt, &m, 1, o, 1, err);
}

int64_t mf_chat_tokenize(const mf_tokenizer *t, int fmt, const char *rendered, int32_t *out, int64_t cap, mf_err *err)
{
    return mf_tokenize(t, rendered, strlen(rendered), 1, fmt != MF_CHAT_NONE, out, cap, err);
}

/* tokens of msgs[keep[0..n_keep)] rendered for generation; -1 with err */
static int64_t kept_tokens(const mf_tokenizer *t, int fmt, const mf_chat_msg *msgs, const int *keep, int n_keep,
                           const mf_chat_opts *o, mf_chat_msg *tmp, mf_err *err)
{
    for (int i = 0; i < n_keep; i++) tmp[i] = msgs[keep[i]];
    char *s = mf_chat_render_conv(fmt, tmp, n_keep, o, 1, err);
    if (!s) return -1;
    int64_t k = mf_chat_tokenize(t, fmt, s, NULL, 0, err);
    free(s);
    return k;
}

int mf_chat_fit(const mf_tokenizer *t, int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int max_tokens,
                int *keep, mf_err *err)
{
    if (n < 1) return mf_errf(err, "chat: the conversation is empty");
    mf_chat_msg *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!tmp) return mf_errf(err, "out of memory");
    int lead = 0;
    while (lead < n && is_sys(msgs[lead].role)) lead++;
    /* the turns: each starts at a user message; whatever precedes the first one goes with it */
    int last_user = -1;
    for (int i = lead; i < n; i++)
        if (msgs[i].role == MF_ROLE_USER) last_user = i;
    int from = lead, n_keep = -1;
    int64_t have = -1;
    for (;;) {
        int k = 0;
        for (int i = 0; i < lead; i++) keep[k++] = i;
        for (int i = from; i < n; i++) keep[k++] = i;
        have = kept_tokens(t, fmt, msgs, keep, k, o, tmp, err);
        if (have < 0) break;
        if (have <= max_tokens) {
            n_keep = k;
            break;
        }
        /* drop the oldest turn: up to the next user message, never past the last one */
        int next = from + 1;
        while (next < n && msgs[next].role != MF_ROLE_USER) next++;
        if (last_user < 0 || next > last_user) {
            mf_errf(err,
                    "chat: the conversation's last turn alone has %lld tokens, more than the %d there is room "
                    "for",
                    (long long)have, max_tokens);
            break;
        }
        from = next;
    }
    free(tmp);
    return n_keep;
}

/* ------------------------------------------------------------------ harmony parser */

/* docs/chat.md §4: the completion starts in HEADER (the prompt ended with <|start|>assistant) */
enum { HS_HEADER = 0, HS_CHANNEL, HS_CONTENT, HS_WAIT };

int mf_harmony_init(mf_harmony *h, const mf_tokenizer *t)
{
    memset(h, 0, sizeof *h);
    h->tok_start = mf_tok_find(t, "<|start|>");
    h->tok_channel = mf_tok_find(t, "<|channel|>");
    h->tok_message = mf_tok_find(t, "<|message|>");
    h->tok_end = mf_tok_find(t, "<|end|>");
    h->tok_return = mf_tok_find(t, "<|return|>");
    h->tok_call = mf_tok_find(t, "<|call|>");
    h->tok_constrain = mf_tok_find(t, "<|constrain|>");
    if (h->tok_start < 0 || h->tok_channel < 0 || h->tok_message < 0 || h->tok_end < 0 || h->tok_return < 0) return -1;
    h->state = HS_HEADER;
    h->channel = MF_HCH_NONE;
    h->assistant = 1;
    return 0;
}

/* <|message|> closes the header: the channel is the first word after the last
 * <|channel|> (the rest may be " to=functions.x" or a content type); the role is the first
 * word before the first one (none: the assistant's, whose <|start|>assistant the prompt
 * gave); the
 * recipient is the word after "to=" in the role part or the channel part. */
static void close_header(mf_harmony *h)
{
    h->channel = MF_HCH_NONE;
    h->n_messages++;
    const char *r = h->header, *re = h->header + (h->state == HS_CHANNEL ? h->role_end : h->header_len);
    while (r < re && *r == ' ') r++;
    const char *e = r;
    while (e < re && *e != ' ') e++;
    h->assistant = e == r || (e - r == 9 && !strncmp(r, "assistant", 9));
    h->recipient[0] = 0;
    for (const char *t = strstr(h->header, "to="); t; t = strstr(t + 1, "to="))
        if (t == h->header || t[-1] == ' ') {
            size_t n = strcspn(t + 3, " ");
            if (n >= sizeof h->recipient) n = sizeof h->recipient - 1;
            memcpy(h->recipient, t + 3, n);
            h->recipient[n] = 0;
            break;
        }
    h->has_recipient = h->recipient[0] != 0;
    if (h->state != HS_CHANNEL) return;
    const char *w = h->header + h->channel_off;
    while (*w == ' ') w++;
    size_t n = strcspn(w, " ");
    if (n == 8 && !strncmp(w, "analysis", 8)) h->channel = MF_HCH_ANALYSIS;
    else if (n == 10 && !strncmp(w, "commentary", 10)) h->channel = MF_HCH_COMMENTARY;
    else if (n == 5 && !strncmp(w, "final", 5)) h->channel = MF_HCH_FINAL;
}

int mf_harmony_feed(mf_harmony *h, const mf_tokenizer *t, int32_t id, int *stop)
{
    *stop = 0;
    if (id == h->tok_return || id == h->tok_call || mf_tok_is_eog(t, id)) {
        *stop = 1;
        return MF_HCH_NONE;
    }
    if (id == h->tok_start) {
        h->state = HS_HEADER;
        h->header_len = 0;
        h->header[0] = 0;
        return MF_HCH_NONE;
    }
    if (id == h->tok_channel) {
        /* a new channel name; a repeated <|channel|> (gpt-oss-20b sometimes emits a stray
         * "<|channel|>commentary" first) simply starts the name again */
        if (h->state == HS_CONTENT || h->state == HS_WAIT) {
            h->header_len = 0;
            h->header[0] = 0;
        }
        if (h->state != HS_CHANNEL) h->role_end = h->header_len;
        /* a space keeps the parts' words apart ("to=functions.x<|channel|>commentary") */
        if (h->header_len && h->header_len + 1 < sizeof h->header) {
            h->header[h->header_len++] = ' ';
            h->header[h->header_len] = 0;
        }
        h->state = HS_CHANNEL;
        h->channel_off = h->header_len;
        return MF_HCH_NONE;
    }
    if (id == h->tok_message) {
        close_header(h);
        h->state = HS_CONTENT;
        return MF_HCH_NONE;
    }
    if (id == h->tok_end) {
        h->state = HS_WAIT;
        return MF_HCH_NONE;
    }
    if (id == h->tok_constrain) {
        /* the content type follows as text; a space keeps it apart from a recipient written
         * right before the token ("to=functions.x<|constrain|>json") */
        if ((h->state == HS_HEADER || h->state == HS_CHANNEL) && h->header_len + 1 < sizeof h->header) {
            h->header[h->header_len++] = ' ';
            h->header[h->header_len] = 0;
        }
        return MF_HCH_NONE;
    }

    switch (h->state) {
    case HS_HEADER:
    case HS_CHANNEL: {
        size_t room = sizeof h->header - 1 - h->header_len;
        size_t k = mf_tok_piece(t, id, 0, h->header + h->header_len, room);
        h->header_len += k < room ? k : room;
        h->header[h->header_len] = 0;
        return MF_HCH_NONE;
    }
    case HS_CONTENT:
        if (!h->assistant) return MF_HCH_NONE;
        return h->has_recipient ? MF_HCH_TOOL : h->channel;
    default: return MF_HCH_NONE; /* WAIT: nothing printable until the next <|start|> */
    }
}

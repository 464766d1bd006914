/* chat.c — prompt formats for chat models and the harmony output parser (contract:
 * chat.h; docs/chat.md §2).
 *
 * minfer runs no Jinja: it recognizes the format from the GGUF's chat template (or the
 * architecture) and renders one user turn with the hard-coded rules below. The rendered
 * text is then tokenized with parse_special = 1, so the special-token texts it contains
 * (</s>, <|im_end|>, <|start|>...) become their ids.
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

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

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void add_n(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void add(sbuf *b, const char *s) { add_n(b, s, strlen(s)); }

/* Llama-2 strips each message (Meta's reference code and the Hugging Face template) */
static void add_trimmed(sbuf *b, const char *s)
{
    const char *e = s + strlen(s);
    while (s < e && strchr(" \t\n\r\f\v", *s)) s++;
    while (e > s && strchr(" \t\n\r\f\v", e[-1])) e--;
    add_n(b, s, (size_t)(e - s));
}

static int valid_date(const char *d)
{
    /* YYYY-MM-DD, digits only: it is pasted into the system message as it is */
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) return 0;
    return 1;
}

/* docs/chat.md §2: the system message as the GGUF Jinja template renders it, and the user's
 * system prompt as the developer message "# Instructions". */
static int render_harmony(sbuf *b, const char *user, const mf_chat_opts *o, mf_err *err)
{
    const char *effort = o && o->reasoning ? o->reasoning : "medium";
    if (strcmp(effort, "low") && strcmp(effort, "medium") && strcmp(effort, "high"))
        return mf_errf(err, "chat: reasoning effort '%.32s' is not low, medium or high", effort);
    if (o && o->date && !valid_date(o->date)) return mf_errf(err, "chat: date '%.32s' is not YYYY-MM-DD", o->date);
    add(b, "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
           "Knowledge cutoff: 2024-06\n");
    if (o && o->date) {
        add(b, "Current date: ");
        add(b, o->date);
        add(b, "\n");
    }
    add(b, "\nReasoning: ");
    add(b, effort);
    add(b, "\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>");
    if (o && o->system) {
        add(b, "<|start|>developer<|message|># Instructions\n\n");
        add(b, o->system);
        add(b, "\n\n<|end|>");
    }
    add(b, "<|start|>user<|message|>");
    add(b, user);
    add(b, "<|end|><|start|>assistant");
    return 0;
}

char *mf_chat_render(int fmt, const char *user, const mf_chat_opts *o, mf_err *err)
{
    if (!user) {
        mf_errf(err, "chat: no user message");
        return NULL;
    }
    const char *sys = o ? o->system : NULL;
    sbuf b = {0};
    switch (fmt) {
    case MF_CHAT_NONE: add(&b, user); break;
    case MF_CHAT_ZEPHYR: /* docs/chat.md §2: no BOS here, the tokenizer adds it */
        if (sys) {
            add(&b, "<|system|>\n");
            add(&b, sys);
            add(&b, "</s>\n");
        }
        add(&b, "<|user|>\n");
        add(&b, user);
        add(&b, "</s>\n<|assistant|>\n");
        break;
    case MF_CHAT_LLAMA2: /* [INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] */
        add(&b, "[INST] ");
        if (sys) {
            add(&b, "<<SYS>>\n");
            add_trimmed(&b, sys);
            add(&b, "\n<</SYS>>\n\n");
        }
        add_trimmed(&b, user);
        add(&b, " [/INST]");
        break;
    case MF_CHAT_CHATML:
        if (sys) {
            add(&b, "<|im_start|>system\n");
            add(&b, sys);
            add(&b, "<|im_end|>\n");
        }
        add(&b, "<|im_start|>user\n");
        add(&b, user);
        add(&b, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    case MF_CHAT_HARMONY:
        if (render_harmony(&b, user, o, err)) {
            free(b.p);
            return NULL;
        }
        break;
    default: mf_errf(err, "chat: unknown format %d", fmt); return NULL;
    }
    if (b.oom) {
        free(b.p);
        mf_errf(err, "chat: out of memory rendering the prompt");
        return NULL;
    }
    return b.p;
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
    return 0;
}

/* <|message|> closes the header: the channel is the first word after the last
 * <|channel|> (the rest may be " to=functions.x" or a content type); the message has a
 * recipient when " to=" appears in the role part or the channel part. */
static void close_header(mf_harmony *h)
{
    h->channel = MF_HCH_NONE;
    h->has_recipient = strstr(h->header, "to=") != NULL;
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
    if (id == h->tok_constrain) return MF_HCH_NONE; /* the content type follows as text */

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
        if (h->channel == MF_HCH_COMMENTARY && h->has_recipient) return MF_HCH_NONE; /* a tool call */
        return h->channel;
    default: return MF_HCH_NONE; /* WAIT: nothing printable until the next <|start|> */
    }
}

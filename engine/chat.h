/* chat.h — prompt formats for chat models, and the harmony output parser.
 *
 * The formats: docs/chat.md §2 (Zephyr for TinyLlama-Chat, Llama-2, ChatML, and OpenAI's
 * harmony format for gpt-oss, https://cookbook.openai.com/articles/openai-harmony). minfer
 * does not run Jinja: it recognizes the format from tokenizer.chat_template (or the
 * --chat-format flag) and renders it with hard-coded rules that give the same text.
 */
#ifndef MF_CHAT_H
#define MF_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer.h"

enum mf_chat_format {
    MF_CHAT_NONE = 0, /* raw prompt */
    MF_CHAT_ZEPHYR,   /* <|user|>\n...</s>\n<|assistant|>\n  (TinyLlama-Chat) */
    MF_CHAT_LLAMA2,   /* [INST] <<SYS>>...<</SYS>> ... [/INST] */
    MF_CHAT_CHATML,   /* <|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n */
    MF_CHAT_HARMONY,  /* gpt-oss harmony */
};

enum mf_role { MF_ROLE_SYSTEM, MF_ROLE_DEVELOPER, MF_ROLE_USER, MF_ROLE_ASSISTANT, MF_ROLE_TOOL };

/* A function call the assistant made: generated (generate.h) or given back in the history. */
typedef struct mf_tool_call {
    char *id;        /* "call_..." (the library makes one for a generated call) */
    char *name;      /* function name (harmony recipient functions.NAME without "functions.") */
    char *arguments; /* JSON text as generated (never re-serialized) */
} mf_tool_call;

/* One message of a conversation. Texts are borrowed (the caller owns them). */
typedef struct mf_chat_msg {
    int role;                       /* enum mf_role */
    const char *content;            /* NULL only for an assistant message with tool calls */
    const char *reasoning;          /* assistant: the analysis text (harmony), may be NULL */
    const mf_tool_call *tool_calls; /* assistant */
    int n_tool_calls;
    const char *tool_call_id; /* tool: the call this message answers */
    const char *name;         /* tool: the function's name; NULL: the name of the call
                                 tool_call_id names, found in the history */
} mf_chat_msg;

typedef struct mf_chat_opts {
    const char *system;     /* a system prompt placed before the messages (run --system),
                               may be NULL */
    const char *reasoning;  /* harmony: "low" | "medium" | "high" (NULL: medium) */
    const char *date;       /* harmony: "YYYY-MM-DD" for the Current date line, NULL: none */
    const char *tools_json; /* OpenAI "tools" array as JSON text (harmony only), or NULL */
} mf_chat_opts;

/* Format from a name ("zephyr", "llama2", "chatml", "harmony", "none"); -1 if unknown. */
int mf_chat_format_from_name(const char *name);
const char *mf_chat_format_name(int fmt);
/* "system", "developer", "user", "assistant", "tool"; "unknown" out of range. */
const char *mf_role_name(int role);
/* Recognize the format from the chat_template text and architecture name (either may be
 * NULL). Returns MF_CHAT_NONE when nothing matches. */
int mf_chat_detect(const char *chat_template, const char *arch);

/* A whole conversation rendered as the prompt (docs/chat.md §2, docs/generate.md §6), ending with the
 * assistant's generation prompt when add_generation_prompt. Returns a malloc'd
 * NUL-terminated string, NULL with err (an empty conversation, a message without content,
 * a role or tool the format cannot say, a bad effort or date, tools JSON that is invalid or
 * not a list of functions). The result is meant to be tokenized with add_special = 1 and
 * parse_special = (fmt != MF_CHAT_NONE): mf_chat_tokenize does both. Contents are inserted
 * verbatim, except Llama-2, which strips each message as Meta's reference code does.
 *   none:    one running text: the system text, each user message on a new line, each
 *            assistant answer continuing the text right after it (a single user message
 *            renders as itself: what `minfer run -p` evaluates)
 *   zephyr:  <|system|>\n{s}</s>\n <|user|>\n{u}</s>\n <|assistant|>\n{a}</s>\n ... <|assistant|>\n
 *   llama2:  [INST] <<SYS>>\n{s}\n<</SYS>>\n\n{u} [/INST] {a} </s><s>[INST] {u} [/INST]
 *   chatml:  <|im_start|>{role}\n{text}<|im_end|>\n ... <|im_start|>assistant\n
 *   harmony: the system message (identity, knowledge cutoff, optional date, effort, valid
 *            channels), the developer message (# Instructions, # Tools), then the messages:
 *            an earlier answer as its final message, its analysis dropped unless the answer
 *            is a tool call with no final answer after it; tool calls as commentary
 *            messages to functions.NAME ending in <|call|>; tool results as messages of
 *            functions.NAME to=assistant; then <|start|>assistant.
 * System and developer messages must come first (any number; their texts are joined by a
 * blank line), except for Zephyr and ChatML, which can say them anywhere. */
char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err);

/* One user turn (o->system as the system message), ready for generation: the same as
 * mf_chat_render_conv of that one message. */
char *mf_chat_render(int fmt, const char *user, const mf_chat_opts *o, mf_err *err);

/* Tokenize a rendered prompt as mf_chat_render_conv says (BOS as the vocabulary asks; a
 * template's special-token texts parsed, plain text not). Same contract as mf_tokenize. */
int64_t mf_chat_tokenize(const mf_tokenizer *t, int fmt, const char *rendered, int32_t *out, int64_t cap, mf_err *err);

/* Context shift (docs/generate.md §7): the messages to keep so that the rendered prompt has at
 * most max_tokens tokens. The leading system and developer messages are always kept; whole
 * turns (a user message and everything up to the next one) are dropped, oldest first; the
 * last user turn is never dropped. Writes the kept messages' indices into keep (at most n)
 * and returns their count, or -1 with err when even the last turn does not fit. */
int mf_chat_fit(const mf_tokenizer *t, int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int max_tokens,
                int *keep, mf_err *err);

/* ---- tools (harmony; engine/chat_tools.c, docs/generate.md §6) ---- */

/* 0 when tools_json is an OpenAI "tools" array this build can render (each item
 * {"type": "function", "function": {"name", "description"?, "parameters"?}}, names of
 * letters, digits, '_' and '-', at most 64); -1 with err naming what is wrong. A build
 * without jansson (libjansson-dev) refuses every tool list and says so. */
int mf_chat_tools_check(const char *tools_json, mf_err *err);
/* The "# Tools" section of the developer message: the functions as a TypeScript namespace
 * in the harmony renderer's syntax. *n_tools receives their count; for none the result is
 * "" (nothing to render). malloc'd; NULL with err. */
char *mf_harmony_tools_section(const char *tools_json, int *n_tools, mf_err *err);

/* ---- harmony output: which channel each generated token belongs to (docs/chat.md §4) ---- */

enum mf_harmony_channel {
    MF_HCH_NONE = 0,
    MF_HCH_ANALYSIS,
    MF_HCH_COMMENTARY,
    MF_HCH_FINAL,
    MF_HCH_TOOL /* the content of an assistant message to a recipient: a tool call's arguments */
};

typedef struct mf_harmony {
    int state;           /* internal: header / channel / content / wait */
    int channel;         /* enum mf_harmony_channel of the current content */
    int has_recipient;   /* the current message is addressed (" to=...") */
    int assistant;       /* the current message's role is the assistant's (the prompt's
                          <|start|>assistant, or a header that names it) */
    int n_messages;      /* <|message|> tokens seen: a new value starts a new message */
    char recipient[128]; /* the current message's recipient ("functions.get_weather"), "" if
                            none; cut at 127 bytes */
    char header[256];    /* role and channel text of the current header (NUL-terminated,
                            cut at 255 bytes) */
    size_t header_len;
    size_t channel_off; /* where the text after the last <|channel|> starts in header */
    size_t role_end;    /* where the first <|channel|> came: the role part ends there */
    int32_t tok_start, tok_channel, tok_message, tok_end, tok_return, tok_call, tok_constrain;
} mf_harmony;

/* Look the harmony special tokens up in the vocabulary; -1 if it is not a harmony vocab
 * (<|start|>, <|channel|>, <|message|>, <|end|>, <|return|> are required; <|call|> and
 * <|constrain|> are used when present). The parser starts in the header of an assistant
 * message, as a prompt rendered for generation ends with <|start|>assistant. */
int mf_harmony_init(mf_harmony *h, const mf_tokenizer *t);
/* Feed one generated token. Returns what this token's bytes are: MF_HCH_FINAL,
 * MF_HCH_ANALYSIS (the caller decides whether to show reasoning), MF_HCH_COMMENTARY (a
 * preamble: commentary without recipient), MF_HCH_TOOL (the arguments of a call: an
 * assistant message with a recipient, h->recipient, whatever its channel), or MF_HCH_NONE
 * (structure tokens, headers, anything between messages, and messages of roles other than
 * the assistant's). *stop is set to 1 when generation should stop (<|return|>, <|call|>,
 * or any end-of-generation token of the vocabulary). */
int mf_harmony_feed(mf_harmony *h, const mf_tokenizer *t, int32_t id, int *stop);

#endif

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

typedef struct mf_chat_opts {
    const char *system;    /* system prompt (harmony: developer instructions), may be NULL */
    const char *reasoning; /* harmony: "low" | "medium" | "high" (NULL: medium) */
    const char *date;      /* harmony: "YYYY-MM-DD" for the Current date line, NULL: none */
} mf_chat_opts;

/* Format from a name ("zephyr", "llama2", "chatml", "harmony", "none"); -1 if unknown. */
int mf_chat_format_from_name(const char *name);
const char *mf_chat_format_name(int fmt);
/* Recognize the format from the chat_template text and architecture name (either may be
 * NULL). Returns MF_CHAT_NONE when nothing matches. */
int mf_chat_detect(const char *chat_template, const char *arch);

/* Render one user turn, ready for generation. Returns a malloc'd NUL-terminated string
 * (the caller frees it), NULL with err on failure. The result is meant to be tokenized
 * with parse_special = 1 (and add_special = 1: BOS is added by the tokenizer when the
 * vocabulary asks for it). Contents are inserted verbatim, except Llama-2, which strips
 * leading and trailing whitespace of each message as Meta's reference code does.
 *   zephyr:  [<|system|>\n{system}</s>\n]<|user|>\n{user}</s>\n<|assistant|>\n
 *   llama2:  [INST] [<<SYS>>\n{system}\n<</SYS>>\n\n]{user} [/INST]
 *   chatml:  [<|im_start|>system\n{system}<|im_end|>\n]<|im_start|>user\n{user}<|im_end|>\n
 *            <|im_start|>assistant\n
 *   harmony: system message (identity, knowledge cutoff, optional "Current date", reasoning
 *            effort, valid channels), optional developer message "# Instructions\n\n{system}\n\n",
 *            the user message, then <|start|>assistant (docs/chat.md §2). An effort
 *            other than low/medium/high or a date not shaped YYYY-MM-DD is an error.
 *   none:    {user} */
char *mf_chat_render(int fmt, const char *user, const mf_chat_opts *o, mf_err *err);

/* ---- harmony output: which channel each generated token belongs to (docs/chat.md §4) ---- */

enum mf_harmony_channel { MF_HCH_NONE = 0, MF_HCH_ANALYSIS, MF_HCH_COMMENTARY, MF_HCH_FINAL };

typedef struct mf_harmony {
    int state;         /* internal: header / channel / content / wait */
    int channel;       /* enum mf_harmony_channel of the current content */
    int has_recipient; /* the current message is addressed (" to=...") */
    char header[256];  /* role and channel text of the current header (NUL-terminated,
                          cut at 255 bytes) */
    size_t header_len;
    size_t channel_off; /* where the text after the last <|channel|> starts in header */
    int32_t tok_start, tok_channel, tok_message, tok_end, tok_return, tok_call, tok_constrain;
} mf_harmony;

/* Look the harmony special tokens up in the vocabulary; -1 if it is not a harmony vocab
 * (<|start|>, <|channel|>, <|message|>, <|end|>, <|return|> are required; <|call|> and
 * <|constrain|> are used when present). The parser starts in the header of an assistant
 * message, as the prompt of mf_chat_render ends with <|start|>assistant. */
int mf_harmony_init(mf_harmony *h, const mf_tokenizer *t);
/* Feed one generated token. Returns the channel whose content this token is when it is
 * printable content: MF_HCH_FINAL, MF_HCH_ANALYSIS (the caller decides whether to show
 * reasoning), MF_HCH_COMMENTARY only for a message without recipient (a preamble; a tool
 * call's arguments are not printable). MF_HCH_NONE for structure tokens, headers and
 * anything between messages. *stop is set to 1 when generation should stop (<|return|>,
 * <|call|>, or any end-of-generation token of the vocabulary). */
int mf_harmony_feed(mf_harmony *h, const mf_tokenizer *t, int32_t id, int *stop);

#endif

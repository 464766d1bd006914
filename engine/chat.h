/* chat.h — prompt formats for chat models, and the harmony output parser.
 *
 * Specs: chat-templates.md (TinyLlama / Zephyr), harmony.md (gpt-oss). minfer does not run
 * Jinja: it recognizes the format from tokenizer.chat_template (or the --chat-format flag)
 * and renders it with the hard-coded rules of the spec.
 */
#ifndef MF_CHAT_H
#define MF_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer.h"

enum mf_chat_format {
    MF_CHAT_NONE = 0,        /* raw prompt */
    MF_CHAT_ZEPHYR,          /* <|user|>\n...</s>\n<|assistant|>\n  (TinyLlama-Chat) */
    MF_CHAT_LLAMA2,          /* [INST] <<SYS>>...<</SYS>> ... [/INST] */
    MF_CHAT_CHATML,          /* <|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n */
    MF_CHAT_HARMONY,         /* gpt-oss harmony */
};

typedef struct mf_chat_opts {
    const char *system;      /* system prompt (harmony: developer instructions), may be NULL */
    const char *reasoning;   /* harmony: "low" | "medium" | "high" (NULL: medium) */
    const char *date;        /* harmony: "YYYY-MM-DD" for the Current date line, NULL: none */
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
 * vocabulary asks for it). */
char *mf_chat_render(int fmt, const char *user, const mf_chat_opts *o, mf_err *err);

/* ---- harmony output: which channel each generated token belongs to (harmony.md §5) ---- */

enum mf_harmony_channel { MF_HCH_NONE = 0, MF_HCH_ANALYSIS, MF_HCH_COMMENTARY, MF_HCH_FINAL };

typedef struct mf_harmony {
    int state;               /* internal: header / channel / content / wait */
    int channel;             /* enum mf_harmony_channel of the current content */
    int has_recipient;       /* the current message is addressed (" to=...") */
    char header[256];
    size_t header_len;
    int32_t tok_start, tok_channel, tok_message, tok_end, tok_return, tok_call, tok_constrain;
} mf_harmony;

/* Look the harmony special tokens up in the vocabulary; -1 if it is not a harmony vocab. */
int mf_harmony_init(mf_harmony *h, const mf_tokenizer *t);
/* Feed one generated token. Returns the channel whose content this token is (MF_HCH_* when
 * it is printable content, MF_HCH_NONE for structure tokens and headers); *stop is set to 1
 * when generation should stop (<|return|>, <|call|>). */
int mf_harmony_feed(mf_harmony *h, const mf_tokenizer *t, int32_t id, int *stop);

#endif

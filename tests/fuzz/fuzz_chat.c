/* fuzz_chat.c — libFuzzer entry point: the chat formats and the harmony parser
 * (engine/chat.c) on any text and any token sequence.
 *
 * Input layout: byte 0 picks the format (value % 6: none, zephyr, llama2, chatml, harmony,
 * and one that does not exist), byte 1 the options (bit 0: a system prompt, bits 1-2 the
 * reasoning effort: none, low, high or a bad one, bit 3: a date); the rest is split at NUL
 * bytes into the user text, the system text, the date, and a chat template; whatever
 * follows the fourth NUL is a sequence of 16-bit token ids fed to the harmony parser.
 * Checked: detection and name lookup stay in range; a rendered prompt holds the user text
 * (Llama-2 trims it); the parser's channel is one of its enum, its header
 * stays NUL-terminated within its buffer, and it asks to stop on <|return|> and <|call|>.
 * The vocabulary is the small harmony one of fuzz_vocab.h (structure tokens, channel names,
 * " to=", bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "fuzz_vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the next NUL-terminated piece of [*p, end), NULL-safe; advances past the NUL */
static char *piece(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *s = *p;
    const uint8_t *z = memchr(s, 0, (size_t)(end - s));
    size_t n = z ? (size_t)(z - s) : (size_t)(end - s);
    char *out = malloc(n + 1);
    if (!out) __builtin_trap();
    memcpy(out, s, n);
    out[n] = 0;
    *p = z ? z + 1 : end;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const mf_tokenizer *t = mf_fuzz_harmony_vocab();
    int fmt = data[0] % 6, flags = data[1];
    const uint8_t *p = data + 2, *end = data + size;
    char *user = piece(&p, end), *sys = piece(&p, end), *date = piece(&p, end), *tmpl = piece(&p, end);

    int d = mf_chat_detect(tmpl, flags & 16 ? "gpt-oss" : "llama");
    if (d < MF_CHAT_NONE || d > MF_CHAT_HARMONY) __builtin_trap();
    int byname = mf_chat_format_from_name(user);
    if (byname < -1 || byname > MF_CHAT_HARMONY) __builtin_trap();
    (void)mf_chat_format_name(fmt);

    static const char *const efforts[] = {NULL, "low", "high", "extreme"};
    mf_chat_opts o = {
        .system = flags & 1 ? sys : NULL, .reasoning = efforts[(flags >> 1) & 3], .date = flags & 8 ? date : NULL};
    mf_err err = {{0}};
    char *r = mf_chat_render(fmt, user, &o, &err);
    if (r) {
        if (fmt != MF_CHAT_LLAMA2 && !strstr(r, user)) __builtin_trap();
        /* the special-token texts the format put in are parsed; the small vocabulary has no
         * token for most bytes, so the call may also fail, with a message (fuzz_gguf.c
         * fuzzes tokenization with complete vocabularies) */
        int64_t n = mf_tokenize(t, r, strlen(r), 1, 1, NULL, 0, &err);
        if (n < 0 && !err.msg[0]) __builtin_trap();
        free(r);
    }

    mf_harmony h;
    if (mf_harmony_init(&h, t)) __builtin_trap();
    int32_t V = mf_tok_n_vocab(t);
    for (; p + 1 < end; p += 2) {
        int32_t id = (int32_t)(p[0] | p[1] << 8) % (V + 2) - 1; /* -1 and V: ids outside the vocabulary */
        int stop = -1;
        int ch = mf_harmony_feed(&h, t, id, &stop);
        if (ch < MF_HCH_NONE || ch > MF_HCH_TOOL || (stop != 0 && stop != 1)) __builtin_trap();
        if (h.header_len >= sizeof h.header || h.header[h.header_len] != 0) __builtin_trap();
        if ((id == h.tok_return || id == h.tok_call) && !stop) __builtin_trap();
        if (stop) mf_harmony_init(&h, t);
    }
    free(user);
    free(sys);
    free(date);
    free(tmpl);
    return 0;
}

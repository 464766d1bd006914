/* cmd_tokenize.c — `minfer tokenize`: the token ids of a text, as the model's tokenizer
 * makes them. Loads only the GGUF metadata and the tokenizer, never the weights.
 *
 *   minfer tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--no-parse-special] [--pieces]
 *
 * Defaults follow llama.cpp's llama-tokenize: BOS/EOS as the vocabulary asks
 * (add_bos_token), special-token texts in the input parsed into their ids.
 * Output: the ids on one line separated by spaces; with --pieces one line per token,
 * "id<TAB>'piece'", with special tokens shown as their text and bytes that are not
 * printable (controls, quotes, backslash, broken UTF-8) escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--no-parse-special] [--pieces]\n"
               "  -m MODEL            GGUF file (default: $MINFER_MODEL, weights/*.gguf, stories260K)\n"
               "  -p TEXT             text to tokenize\n"
               "  -f FILE             read the text from FILE (its exact bytes)\n"
               "  --no-bos            do not add BOS/EOS even if the vocabulary asks for them\n"
               "  --no-parse-special  treat special-token texts such as </s> as plain text\n"
               "  --pieces            one line per token: id<TAB>'piece'\n");
}

/* Length of the well-formed UTF-8 character at s (n bytes left), 0 if not one. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    if (!len || n < len) return 0;
    unsigned char lo = s[0] == 0xE0 ? 0xA0 : s[0] == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = s[0] == 0xED ? 0x9F : s[0] == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

static void print_escaped(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t u;
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c >= 0x20 && c < 0x7F) putchar(c);
        else if (c >= 0x80 && (u = utf8_char(s + i, n - i))) {
            fwrite(s + i, 1, u, stdout);
            i += u;
            continue;
        } else printf("\\x%02X", c);
        i++;
    }
}

int mf_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *file = NULL;
    int add_special = 1, parse_special = 1, pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m")) {
            if (!(model = drv_next("tokenize", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-p")) {
            if (!(text = drv_next("tokenize", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f")) {
            if (!(file = drv_next("tokenize", argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--no-bos")) add_special = 0;
        else if (!strcmp(a, "--no-parse-special")) parse_special = 0;
        else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "minfer tokenize: unknown option '%s' (see minfer tokenize --help)\n", a);
            return 1;
        }
    }
    if (!text == !file) {
        fprintf(stderr, "minfer tokenize: give the text with -p TEXT or -f FILE (exactly one of them)\n");
        return 1;
    }
    if (!model && !(model = drv_default_model())) return 1;

    size_t len = 0;
    char *owned = NULL;
    if (file) {
        if (!(owned = drv_read_file("tokenize", file, &len))) return 1;
        text = owned;
    } else {
        len = strlen(text);
    }

    int rc = 1;
    mf_err err;
    mf_tokenizer *t = NULL;
    int32_t *ids = NULL;
    mf_gguf *g = mf_gguf_open(model, &err);
    if (!g || !(t = mf_tokenizer_load(g, &err))) {
        fprintf(stderr, "minfer tokenize: %s\n", err.msg);
        goto done;
    }
    int64_t n = mf_tokenize(t, text, len, add_special, parse_special, NULL, 0, &err);
    if (n >= 0 && !(ids = malloc((size_t)(n ? n : 1) * sizeof *ids))) {
        fprintf(stderr, "minfer tokenize: out of memory for %lld ids\n", (long long)n);
        goto done;
    }
    if (n < 0 || mf_tokenize(t, text, len, add_special, parse_special, ids, n, &err) < 0) {
        fprintf(stderr, "minfer tokenize: %s\n", err.msg);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!pieces) {
            printf(i ? " %d" : "%d", ids[i]);
            continue;
        }
        char small[256];
        size_t k = mf_tok_piece(t, ids[i], 1, small, sizeof small);
        char *p = k <= sizeof small ? small : malloc(k);
        if (!p) {
            fprintf(stderr, "minfer tokenize: out of memory\n");
            goto done;
        }
        if (p != small) mf_tok_piece(t, ids[i], 1, p, k);
        printf("%d\t'", ids[i]);
        print_escaped(p, k);
        printf("'\n");
        if (p != small) free(p);
    }
    if (!pieces) printf("\n");
    rc = fflush(stdout) ? 1 : 0;
done:
    free(ids);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    free(owned);
    return rc;
}

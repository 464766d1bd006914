/* tokenizer_o200k.c — the o200k pre-tokenizer (tokenizer.ggml.pre = "gpt-4o"): cuts text
 * into the pieces that BPE then encodes one by one (docs/tokenizer.md §4.2).
 *
 * The pattern of tiktoken's o200k_base, seven alternatives tried in order at each position:
 *   A1 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   A2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   A3 \p{N}{1,3}
 *   A4  ?[^\s\p{L}\p{N}]+[\r\n/]*
 *   A5 \s*[\r\n]+
 *   A6 \s+(?!\S)
 *   A7 \s+
 * implemented without a regex engine as the deterministic procedure of docs/tokenizer.md §4.2, with the real
 * Unicode categories (unicode.h). What backtracking would do is worked out once, in the
 * comments of each step, so the code is a plain forward scan: linear in the text.
 *
 * Bytes that are not well-formed UTF-8 are 1-byte units of no class (like a symbol: they
 * join A4 runs and can be the optional prefix of A1/A2), so any byte string is cut into
 * pieces and every byte is kept.
 */
#include "tokenizer_impl.h"
#include "unicode.h"

/* the character at byte i: code point, byte length, class bits */
typedef struct uch {
    uint32_t cp;
    size_t len;
    unsigned cls;
} uch;

static uch at(const uint8_t *s, size_t n, size_t i)
{
    uch c;
    c.len = mf_utf8_decode(s + i, n - i, &c.cp);
    c.cls = c.cp == MF_UTF8_INVALID ? 0 : mf_unicode_class(c.cp);
    return c;
}

#define UP_BITS (MF_UC_LU | MF_UC_LT | MF_UC_LM | MF_UC_LO | MF_UC_M) /* "upper-ish" */
#define LOW_BITS (MF_UC_LL | MF_UC_LM | MF_UC_LO | MF_UC_M)           /* "lower-ish" */

static int is_up(uch c) { return (c.cls & UP_BITS) != 0; }
static int is_low(uch c) { return (c.cls & LOW_BITS) != 0; }
static int is_num(uch c) { return (c.cls & MF_UC_N) != 0; }
static int is_ws(uch c) { return (c.cls & MF_UC_WS) != 0; }
static int is_nl(uch c) { return c.cp == '\r' || c.cp == '\n'; }
/* [^\r\n\p{L}\p{N}]: the optional one-character prefix of A1/A2 */
static int is_pre(uch c) { return !(c.cls & (MF_UC_L | MF_UC_N)) && !is_nl(c); }
/* [^\s\p{L}\p{N}]: the run of A4 */
static int is_other(uch c) { return !(c.cls & (MF_UC_WS | MF_UC_L | MF_UC_N)); }

/* End of the maximal run of `pred` characters from i. */
static size_t run(const uint8_t *s, size_t n, size_t i, int (*pred)(uch))
{
    while (i < n) {
        uch c = at(s, n, i);
        if (!pred(c)) break;
        i += c.len;
    }
    return i;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: the end after the contraction, or i. Case-insensitive
 * matching in the regex engine behind tiktoken uses Unicode simple case folding, under
 * which 's' also matches U+017F LATIN SMALL LETTER LONG S (C5 BF); the other letters have
 * no fold partners outside ASCII. */
static size_t contraction(const uint8_t *s, size_t n, size_t i)
{
    if (i >= n || s[i] != '\'') return i;
    size_t j = i + 1;
    if (j >= n) return i;
    uint8_t c = s[j] | 0x20; /* ASCII lower case (harmless on the bytes compared below) */
    if (c == 's' && s[j] < 0x80) return j + 1;
    if (s[j] == 0xC5 && j + 1 < n && s[j + 1] == 0xBF) return j + 2; /* U+017F */
    if ((c == 't' || c == 'm' || c == 'd') && s[j] < 0x80) return j + 1;
    if (j + 1 < n && s[j] < 0x80 && s[j + 1] < 0x80) {
        uint8_t d = s[j + 1] | 0x20;
        if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return j + 2;
    }
    return i;
}

/* The body of A1 (a1 = 1) or A2 (a1 = 0) from position p, after the optional prefix:
 * the end of the match, or 0 if it fails there (a match is never empty, so 0 is free).
 *   UP* / UP+ is greedy: take the maximal UP run [p, q).
 *   A1 then needs LOW+. If s[q] is LOW, LOW+ takes the maximal LOW run from q. Otherwise
 *   the engine gives back UP characters one at a time until the one at the boundary is
 *   LOW (Lm, Lo and M are both UP and LOW); that character alone is then the LOW+ (the
 *   next one is not LOW), so the match ends right after the last LOW character of the UP
 *   run. No LOW character at all: A1 fails here.
 *   A2 needs q > p, then LOW* takes the maximal LOW run from q (possibly empty).
 * Either way an optional contraction follows. */
static size_t word(const uint8_t *s, size_t n, size_t p, int a1)
{
    size_t q = p, after_last_low = 0;
    while (q < n) {
        uch c = at(s, n, q);
        if (!is_up(c)) break;
        q += c.len;
        if (is_low(c)) after_last_low = q;
    }
    size_t end;
    if (a1) {
        if (q < n && is_low(at(s, n, q))) end = run(s, n, q, is_low);
        else if (after_last_low) end = after_last_low;
        else return 0;
    } else {
        if (q == p) return 0;
        end = run(s, n, q, is_low);
    }
    return contraction(s, n, end);
}

size_t mf_o200k_next(const uint8_t *s, size_t n, size_t pos)
{
    uch c = at(s, n, pos);

    /* A1, A2: the optional prefix is greedy, so each is tried with it first, then without
     * (a mark is both a possible prefix and an UP/LOW character) */
    for (int a1 = 1; a1 >= 0; a1--) {
        size_t e;
        if (is_pre(c) && (e = word(s, n, pos + c.len, a1))) return e;
        if ((e = word(s, n, pos, a1))) return e;
    }

    /* A3: one to three numbers */
    if (is_num(c)) {
        size_t e = pos;
        for (int k = 0; k < 3 && e < n; k++) {
            uch d = at(s, n, e);
            if (!is_num(d)) break;
            e += d.len;
        }
        return e;
    }

    /* A4: " ?" is greedy but gives the space back when no OTHER character follows it
     * (a space is not OTHER itself); then the maximal OTHER run and any \r \n / after it */
    size_t p = pos;
    if (c.cp == ' ' && pos + 1 < n && is_other(at(s, n, pos + 1))) p = pos + 1;
    else if (!is_other(c)) p = n + 1; /* A4 does not match here */
    if (p <= n) {
        size_t e = run(s, n, p, is_other);
        while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) e++;
        return e;
    }

    /* Whitespace [pos, e). A5: \s* gives back characters until [\r\n]+ can match, so the
     * piece ends right after the run's last \r or \n. A6: \s+ then (?!\S): at e comes a
     * non-space (the run is maximal), so the lookahead holds only at the end of the text,
     * or one character back (a space follows there) if the run has two or more. A7: the
     * whole run (a single whitespace character before a non-space). */
    size_t e = pos, after_nl = 0, last = pos;
    while (e < n) {
        uch d = at(s, n, e);
        if (!is_ws(d)) break;
        last = e;
        e += d.len;
        if (is_nl(d)) after_nl = e;
    }
    if (after_nl) return after_nl;
    if (e == n) return e;
    if (last > pos) return last;
    if (e > pos) return e;
    return pos + c.len; /* unreachable: every character is L, N, \s or OTHER */
}

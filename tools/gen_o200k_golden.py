#!/usr/bin/python3
"""gen_o200k_golden.py — writes tests/golden/o200k_split.txt: random strings cut into
pieces by the o200k split pattern, as a real backtracking regex engine (the `regex`
module, Debian package python3-regex) cuts them. test_tokenizer_bpe.c checks the C
pre-tokenizer (engine/tokenizer_o200k.c) against every line.

    /usr/bin/python3 tools/gen_o200k_golden.py > tests/golden/o200k_split.txt

The strings are drawn from a palette that exercises every alternative of the pattern
(letters of each case category, marks, numbers, whitespace of each kind, apostrophes,
symbols, CJK, emoji) and holds only characters assigned before Unicode 14.0, the version
of engine/unicode_tables.c, so that a newer Unicode in `regex` cannot change the result.

Line format: the string's UTF-8 bytes in hex, a tab, then the end offset (in bytes) of
each piece, space-separated.
"""
import random
import sys
import unicodedata

import regex

PATTERN = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

PALETTE = (list("abcxyzXYZ sStTrRevVmMlLdD'''   \t\r\n\n/.,!?-_()\"0123456789") +
           ["\u00e9", "\u00c9", "\u00df", "\u00f1", "\u0301", "\u0303", "\u0308", "\u65e5", "\u672c",
            "\u8a9e", "\u30c6", "\u30a2", "\U0001F600", "\U0001F999", "\u200d", "\ufe0f", "\u01c5",
            "\u02b0", "\u00aa", "\u216b", "\u00bd", "\u0663", "\u00a0", "\u2028", "\u3000", "\u0085",
            "\u017f", "\u212a", "\u01c8", "\u0345", "\u0640", "\u0903", "\u03a9", "\u03c9", "\ufb01",
            "\u00ad", "\x0b", "\x0c", "\x1c", "\u180e", "\ufeff", "\U0001D538", "\U0001F3FB", "\u0416",
            "\u0436", "\u05d0", "\u0e01", "\u0e31", "\u2160", "\u00b2"])


def main():
    for ch in PALETTE:
        assert unicodedata.category(ch) != "Cn", hex(ord(ch))
    rx = regex.compile(PATTERN)
    rnd = random.Random(20240607)
    out = sys.stdout
    for _ in range(600):
        s = "".join(rnd.choice(PALETTE) for _ in range(rnd.randint(1, 24)))
        ends, covered = [], 0
        for m in rx.finditer(s):
            assert m.start() == covered, "pieces must tile the text"
            covered = m.end()
            ends.append(len(s[:m.end()].encode()))
        assert covered == len(s)
        out.write("%s\t%s\n" % (s.encode().hex(), " ".join(map(str, ends))))


if __name__ == "__main__":
    main()

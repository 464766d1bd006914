/* fuzz_vocab.h — the small harmony vocabulary the chat and generation fuzzers share
 * (fuzz_chat.c, fuzz_generate.c). Ids, which the seeds of both corpora (make_seeds.c) use:
 *    0 <|start|>   1 <|channel|>   2 <|message|>   3 <|end|>   4 <|return|>   5 <|call|>
 *    6 <|constrain|>   7 <|endoftext|> (end of generation)   8 assistant   9 analysis
 *   10 commentary   11 final   12 " to"   13 =   14 functions   15 .x   16 json   17 H   18 i
 *   19 " "   20 !   21 a   22 l   23 y   24 Hi   25 byte 0xC3   26 byte 0xA9 (25 26: "é" in
 *   two tokens)   27 "é"   28 "ab"   29 "\n"
 * A byte-level BPE vocabulary (GPT-2 byte map: "Ã" is the byte 0xC3, "©" 0xA9). Built at the
 * first call and kept for the life of the process (a fuzzer calls its entry point millions
 * of times). */
#ifndef MF_FUZZ_VOCAB_H
#define MF_FUZZ_VOCAB_H

#include "tokenizer.h"

const mf_tokenizer *mf_fuzz_harmony_vocab(void);

#endif

/* types.c — block sizes of every ggml type id (docs/gguf.md §1, values of llama.cpp's
 * type_traits[]). */
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const mf_type_info TYPES[MF_TYPE_COUNT] = {
    [MF_TYPE_F32] = {"F32", 1, 4},
    [MF_TYPE_F16] = {"F16", 1, 2},
    [MF_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [MF_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [MF_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [MF_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [MF_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [MF_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [MF_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [MF_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [MF_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [MF_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [MF_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [MF_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [MF_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [MF_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [MF_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [MF_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [MF_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [MF_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [MF_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [MF_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [MF_TYPE_I8] = {"I8", 1, 1},
    [MF_TYPE_I16] = {"I16", 1, 2},
    [MF_TYPE_I32] = {"I32", 1, 4},
    [MF_TYPE_I64] = {"I64", 1, 8},
    [MF_TYPE_F64] = {"F64", 1, 8},
    [MF_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [MF_TYPE_BF16] = {"BF16", 1, 2},
    [MF_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [MF_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
    [MF_TYPE_MXFP4] = {"MXFP4", 32, 17},
    [MF_TYPE_NVFP4] = {"NVFP4", 64, 36},
    [MF_TYPE_Q1_0] = {"Q1_0", 128, 18},
    [MF_TYPE_Q2_0] = {"Q2_0", 64, 18},
    /* ids 4, 5, 31, 32, 33, 36, 37, 38 were removed from the format: left zero */
};

const mf_type_info *mf_type_get(uint32_t type)
{
    if (type >= MF_TYPE_COUNT || TYPES[type].blck == 0) return NULL;
    return &TYPES[type];
}

const char *mf_type_name(uint32_t type, char buf[32])
{
    const mf_type_info *t = mf_type_get(type);
    if (t) return t->name;
    snprintf(buf, 32, "unknown(%u)", type);
    return buf;
}

int mf_type_supported(uint32_t type)
{
    switch (type) {
    case MF_TYPE_F32:
    case MF_TYPE_F16:
    case MF_TYPE_BF16:
    case MF_TYPE_Q4_0:
    case MF_TYPE_Q4_1:
    case MF_TYPE_Q5_0:
    case MF_TYPE_Q5_1:
    case MF_TYPE_Q8_0:
    case MF_TYPE_Q2_K:
    case MF_TYPE_Q3_K:
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K:
    case MF_TYPE_Q6_K:
    case MF_TYPE_MXFP4: return 1;
    default: return 0;
    }
}

size_t mf_type_row_bytes(uint32_t type, int64_t n)
{
    const mf_type_info *t = mf_type_get(type);
    if (!t || n <= 0 || n % t->blck) return 0;
    return (size_t)(n / t->blck) * t->size;
}

int64_t mf_first_nonfinite_f32(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, b + 4 * i, 4);
        if (!isfinite(v)) return (int64_t)i;
    }
    return -1;
}

/* quant.c — scaffold: replaced by the block formats implementation. */
#include "quant.h"
int mf_quant_simd(void) { return 0; }

/* mkmodel.c — scaffold: replaced by the synthetic model generator. */
#include <stdio.h>
int main(void) { fprintf(stderr, "mkmodel: not implemented yet\n"); return 1; }

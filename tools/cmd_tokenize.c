/* cmd_tokenize.c — `minfer tokenize` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer tokenize: not implemented yet\n");
    return 1;
}

/* cmd_bench.c — `minfer bench` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer bench: not implemented yet\n");
    return 1;
}

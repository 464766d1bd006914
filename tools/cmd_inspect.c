/* cmd_inspect.c — `minfer inspect` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer inspect: not implemented yet\n");
    return 1;
}

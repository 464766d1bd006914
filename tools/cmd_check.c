/* cmd_check.c — `minfer check` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer check: not implemented yet\n");
    return 1;
}

/* cmd_plan.c — `minfer plan` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_plan(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer plan: not implemented yet\n");
    return 1;
}

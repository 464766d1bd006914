/* cmd_run.c — `minfer run` (scaffold: replaced by the implementation). */
#include <stdio.h>

#include "driver.h"

int mf_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "minfer run: not implemented yet\n");
    return 1;
}

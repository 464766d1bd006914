/* cmd_prune.c — `minfer prune IN.gguf OUT.gguf --drop-layers LIST`: a copy of a model
 * without some of its layers (engine/prune.c does the work; docs/quantize.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "prune.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: minfer prune IN.gguf OUT.gguf --drop-layers LIST\n"
               "  --drop-layers LIST  layers to remove, e.g. 3,7 or 2-5; the others are renumbered\n"
               "                      0.. in order, their tensors copied byte for byte, block_count\n"
               "                      and per-layer metadata arrays updated. gpt-oss: a drop that\n"
               "                      would change a kept layer's attention kind (sliding window or\n"
               "                      full) is refused.\n"
               "To try a drop without writing a file: minfer run/bench/perplexity --skip-layers LIST\n");
}

int mf_cmd_prune(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *list = NULL, *C = "prune";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(o, "--drop-layers")) {
            if (!(list = drv_next(C, argc, argv, &i))) return 2;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "minfer prune: unknown option '%s' (see minfer prune --help)\n", o);
            return 2;
        } else if (!in) {
            in = o;
        } else if (!out) {
            out = o;
        } else {
            fprintf(stderr, "minfer prune: unexpected argument '%s'\n", o);
            return 2;
        }
    }
    if (!in || !out || !list) {
        fprintf(stderr, "minfer prune: need IN.gguf, OUT.gguf and --drop-layers LIST (see minfer prune --help)\n");
        return 2;
    }
    if (drv_same_file(in, out)) {
        fprintf(stderr, "minfer prune: the output '%s' is the input file; write to another name\n", out);
        return 2;
    }
    int *drop, n;
    if (drv_layer_list(C, "--drop-layers", list, &drop, &n)) return 2;
    mf_err err;
    int rc = mf_prune_file(in, out, drop, n, drv_interrupt_flag(), &err);
    free(drop);
    if (rc) {
        fprintf(stderr, "minfer prune: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "minfer prune: wrote %s without layers %s\n", out, list);
    return 0;
}

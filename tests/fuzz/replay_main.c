/* replay_main.c — runs every file of the given folders (the committed corpus and the
 * crashers found by fuzzing, kept as regression inputs) through the fuzz entry point once.
 * Built with any compiler, so the regression inputs are part of the ordinary test suite
 * (and of the sanitizer build in CI). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0; /* sub-folders, FIFOs */
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    size_t got = b ? fread(b, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!b) return 0;
    LLVMFuzzerTestOneInput(b, got);
    free(b);
    return 1;
}

int main(int argc, char **argv)
{
    int n = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            n += run_file(argv[a]);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[a], e->d_name);
            n += run_file(p);
        }
        closedir(d);
    }
    printf("replayed %d inputs\n", n);
    return 0;
}

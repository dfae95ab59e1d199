/* replay_main.c — runs a libFuzzer target over files without libFuzzer.
 *
 * Linked with every tests/fuzz/fuzz_*.c so that each seed corpus replays as a ctest
 * test under ASan/UBSan with gcc too. Arguments are files or directories (one level).
 * Exit 0 when every input ran; a crash is the sanitizer's report and a non-zero exit. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 0, fails = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: no such path %s\n", argv[i]); return 1; }
        if (!S_ISDIR(st.st_mode)) { fails += replay_file(argv[i]); runs++; continue; }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            fails += replay_file(p);
            runs++;
        }
        if (d) closedir(d);
    }
    printf("replayed %d inputs\n", runs);
    if (runs == 0) { fprintf(stderr, "replay: empty corpus\n"); return 1; }
    return fails ? 1 : 0;
}

/* bench/membw.c — sustainable memory read bandwidth (src/runtime/membw.c) at 1 and 2
 * threads (or 1..max_threads), per supported ISA; the default ISA (widest) last.
 * Usage: bench_membw [max_threads] [MiB] [reps]   Prints one line per case; not a test. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/membw.h"

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t bytes = argc > 2 ? (size_t)atoll(argv[2]) << 20 : membw_default_bytes();
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (max_threads < 1) max_threads = 1;
    printf("LLC %.1f MiB, buffer %.0f MiB, best of %d passes\n", (double)membw_llc_bytes() / (1 << 20),
           (double)bytes / (1 << 20), reps);
    for (int isa = 0; isa < MEMBW_ISA_COUNT; isa++) {
        if (!membw_isa_supported((membw_isa)isa)) continue;
        for (int t = 1; t <= max_threads; t++)
            printf("read %-6s %2d thread%s  %7.2f GB/s\n", membw_isa_name((membw_isa)isa), t, t == 1 ? " " : "s",
                   membw_read_gbps_isa((membw_isa)isa, t, bytes, reps));
    }
    return 0;
}

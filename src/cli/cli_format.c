/* cli_format.c — human-readable sizes and counts for CLI output (info, bench).
 * Writes into caller buffers; never allocates. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/cli.h"

void cli_human_count(uint64_t n, const char *sep, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2f%sB", n / 1e9, sep);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2f%sM", n / 1e6, sep);
    else if (n >= 1000ull) snprintf(buf, cap, "%.2f%sK", n / 1e3, sep);
    else snprintf(buf, cap, "%" PRIu64, n);
}

void cli_human_bytes(uint64_t n, char *buf, size_t cap) {
    if (n >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", n / 1073741824.0);
    else if (n >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", n / 1048576.0);
    else if (n >= (1ull << 10)) snprintf(buf, cap, "%.2f KiB", n / 1024.0);
    else snprintf(buf, cap, "%" PRIu64 " B", n);
}

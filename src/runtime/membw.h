/* membw.h — the machine's sustainable memory READ bandwidth (internal API).
 *
 * A decode step streams every weight from DRAM once per token, so its speed limit is
 * bytes_of_weights / read_bandwidth. membw_read_gbps measures that bandwidth the same
 * way: a buffer far larger than the last-level cache, touched first (so every page is
 * resident), then read start to end with the widest loads the CPU has, split into
 * chunks over a thread pool, best of several passes. `quarrel bench` divides by it.
 *
 * Every read kernel computes the same value (the wrapping 64-bit sum of the buffer's
 * words) so the scalar kernel is the SIMD kernels' test twin and the compiler cannot
 * drop the loads. Not here: write or copy bandwidth, latency, NUMA placement. */
#ifndef QUARREL_RUNTIME_MEMBW_H
#define QUARREL_RUNTIME_MEMBW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum membw_isa {
    MEMBW_ISA_SCALAR,   /* 8-byte loads, 4 independent sums */
    MEMBW_ISA_AVX2,     /* 32-byte loads */
    MEMBW_ISA_AVX512,   /* 64-byte loads */
    MEMBW_ISA_COUNT
} membw_isa;

#define MEMBW_CHUNK_ALIGN 256   /* kernels take 64-byte-aligned buffers of a multiple of this */

const char *membw_isa_name(membw_isa isa);
bool        membw_isa_supported(membw_isa isa);   /* compiled in and the CPU has it */
membw_isa   membw_isa_best(void);                 /* widest supported */

/* Wrapping sum of the bytes/8 little-endian u64 words of buf. buf 64-byte aligned,
 * bytes a multiple of MEMBW_CHUNK_ALIGN; isa must be supported (asserted). */
uint64_t membw_sum(membw_isa isa, const void *buf, size_t bytes);

/* Size of the largest (highest-level) data/unified cache of cpu0 under cpu_root
 * (normally /sys/devices/system/cpu), from cache/indexN/{level,size}; 0 if unknown. */
size_t membw_llc_bytes_at(const char *cpu_root);
size_t membw_llc_bytes(void);

/* max(1 GiB, 8 x LLC): large enough that caches hold a negligible share. */
size_t membw_default_bytes(void);

/* Best-of-reps read bandwidth in GB/s (1e9 bytes/s) over a buffer of `bytes` (0: the
 * default; rounded down to whole chunks) with n_threads threads (<= 0: one per physical
 * core); reps <= 0 means 5. Uses the widest supported ISA. Returns 0 if the buffer
 * cannot be allocated. */
double membw_read_gbps(int n_threads, size_t bytes, int reps);

/* The same with an explicit ISA (for the bench and the tests). */
double membw_read_gbps_isa(membw_isa isa, int n_threads, size_t bytes, int reps);

#endif

/* profile.h — per-op timing of the forward pass (internal API; `quarrel bench --profile`).
 *
 * A profiling backend wraps the context's real q_backend: every op calls the real one
 * and adds its wall time (CLOCK_MONOTONIC ns, on the thread that called the op, so an
 * op that runs on the pool counts once, start to finish) to a q_profile. Matmuls are
 * split by the role of their weight (attention q/k/v, attention output, FFN, output
 * projection), found by where the q_tensor lives in the model.
 *
 * Not here: timing inside an op (per thread, per tile). The normal path pays nothing:
 * a context runs the real backend unless q_context_profile_set attached a profile.
 *
 * Memory: the caller owns the q_profile and keeps it alive while it is attached; the
 * wrapper allocates nothing. */
#ifndef QUARREL_RUNTIME_PROFILE_H
#define QUARREL_RUNTIME_PROFILE_H

#include <stdint.h>

#include "model/model.h"

struct q_backend;
struct q_context;

typedef enum q_prof_op {
    Q_PROF_MM_ATTN_QKV = 0,   /* matmul by wq, wk, wv */
    Q_PROF_MM_ATTN_OUT,       /* matmul by wo */
    Q_PROF_MM_FFN,            /* gate, up, down; MoE router and experts */
    Q_PROF_MM_OUTPUT,         /* the output (logits) projection */
    Q_PROF_MM_OTHER,          /* a weight the model does not own */
    Q_PROF_ATTENTION,
    Q_PROF_RMSNORM,
    Q_PROF_ROPE,
    Q_PROF_SWIGLU,
    Q_PROF_ADD,               /* add_scaled */
    Q_PROF_SCALE,
    Q_PROF_SOFTMAX,
    Q_PROF_GET_ROWS,
    Q_PROF_KV_STORE,
    Q_PROF_COUNT
} q_prof_op;

/* The ops that are matmuls: [Q_PROF_MM_ATTN_QKV, Q_PROF_MM_LAST]. */
#define Q_PROF_MM_LAST Q_PROF_MM_OTHER

typedef struct q_profile {
    uint64_t ns[Q_PROF_COUNT];      /* wall time summed over calls */
    uint64_t calls[Q_PROF_COUNT];
    uint64_t dispatches;            /* thread-pool dispatches (q_exec_parallel) inside the ops */
    /* set by q_context_profile_set */
    const q_model          *model;  /* to tell matmul roles apart */
    const struct q_backend *inner;  /* the backend that does the work */
} q_profile;

/* "matmul.attn_qkv", "attention", "rmsnorm", ...: stable keys (bench's JSON uses them). */
const char *q_prof_op_name(q_prof_op op);

/* The wrapper backend; its ops find the profile through q_profile_current. */
extern const struct q_backend q_backend_profiled;

/* The profile the calling thread's ops add to (the engine sets it around a forward
 * pass of a profiled context); NULL = none. */
void       q_profile_set_current(q_profile *p);
q_profile *q_profile_current(void);

/* Attaches p to the context (p's counters are zeroed; its ops run through the wrapper
 * from the next q_decode on) or, with p NULL, detaches it (engine.c). */
void q_context_profile_set(struct q_context *c, q_profile *p);

/* Monotonic clock in ns. */
uint64_t q_profile_now_ns(void);

#endif

/* sampler.c — the sampler chain: logit bias, repetition penalties over a window,
 * top-k, typical-p, top-p, min-p, temperature, and a seeded draw (definitions follow
 * llama.cpp's samplers). Each stage is a row in a table applied in order to a candidate
 * list; a stage at its neutral value is skipped. The PRNG is xoshiro256** seeded through
 * splitmix64, so the same seed and logits give the same tokens on every platform.
 *
 * Memory: q_sampler_new allocates the candidate array (n_vocab entries), the penalty
 * history ring and a copy of the logit biases; q_sampler_free releases them. Sampling
 * never allocates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "quarrel/quarrel.h"

typedef struct cand {
    q_token id;
    float   logit;
    float   p;
    float   aux;   /* stage scratch (typical-p's rank score) */
} cand;

typedef struct cand_list {
    cand   *c;
    int32_t n;
    bool    sorted;   /* by logit, descending */
} cand_list;

struct q_sampler {
    q_sampler_params p;
    int32_t       n_vocab;
    cand         *cands;     /* [n_vocab] */
    q_logit_bias *bias;      /* [n_bias] copy */
    q_token      *hist;      /* ring of the last hist_cap accepted tokens */
    int32_t       hist_cap, hist_n, hist_head;
    int32_t      *counts;    /* [n_vocab] scratch for penalties, kept zeroed */
    uint64_t      rng[4];
};

q_sampler_params q_sampler_default_params(void) {
    return (q_sampler_params){ .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                               .typical_p = 1.0f, .penalty_last_n = 64, .penalty_repeat = 1.0f,
                               .penalty_freq = 0.0f, .penalty_present = 0.0f, .seed = 0 };
}

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(q_sampler *s) {   /* [0, 1) with 53 random bits */
    return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- helpers ---- */

static int cand_cmp_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;   /* ties: lower id first */
}

static void cands_sort(cand_list *cl) {
    if (!cl->sorted) qsort(cl->c, (size_t)cl->n, sizeof(cand), cand_cmp_desc);
    cl->sorted = true;
}

/* p = softmax(logit) over the list; sorts it. */
static void cands_softmax(cand_list *cl) {
    cands_sort(cl);
    const float max = cl->c[0].logit;
    double sum = 0;
    for (int32_t i = 0; i < cl->n; i++) {
        cl->c[i].p = expf(cl->c[i].logit - max);
        sum += cl->c[i].p;
    }
    for (int32_t i = 0; i < cl->n; i++) cl->c[i].p = (float)(cl->c[i].p / sum);
}

/* ---- stages ---- */

static void stage_bias(q_sampler *s, cand_list *cl) {
    for (int32_t i = 0; i < s->p.n_logit_bias; i++) {
        const q_token t = s->bias[i].token;
        if (t >= 0 && t < s->n_vocab) cl->c[t].logit += s->bias[i].bias;   /* list is still id-indexed */
    }
}

/* logit of a token seen c > 0 times in the window: divided by the repeat penalty if
 * positive (multiplied if not), then minus c * freq + presence. */
static void stage_penalties(q_sampler *s, cand_list *cl) {
    Q_ASSERT(!cl->sorted);   /* runs while the list is still indexed by token id */
    if (s->hist_n == 0) return;
    for (int32_t k = 0; k < s->hist_n; k++) s->counts[s->hist[k]]++;
    for (int32_t k = 0; k < s->hist_n; k++) {
        const q_token t = s->hist[k];
        const int32_t c = s->counts[t];
        if (c == 0) continue;   /* already applied (duplicate in the window) */
        float *l = &cl->c[t].logit;
        *l = *l <= 0 ? *l * s->p.penalty_repeat : *l / s->p.penalty_repeat;
        *l -= (float)c * s->p.penalty_freq + s->p.penalty_present;
        s->counts[t] = 0;
    }
}

/* Heap of the kept candidates with the worst (last in cand_cmp_desc order) at the root. */
static void heap_sift_down(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t w = i;
        const int32_t l = 2 * i + 1, r = l + 1;
        if (l < n && cand_cmp_desc(&h[l], &h[w]) > 0) w = l;
        if (r < n && cand_cmp_desc(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        const cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Keeps the k best candidates, sorted: the list a full sort would leave truncated to k
 * (cand_cmp_desc is a total order: ties go by id). A full qsort of a 32000-token vocabulary
 * cost ~5 ms per sampled token, a fifth of a TinyLlama decode step; the bounded heap looks
 * at most candidates once (one comparison with the root) and sorts only the k kept. */
static void cands_keep_best(cand_list *cl, int32_t k) {
    if (cl->sorted || k >= cl->n / 4) {
        cands_sort(cl);
        cl->n = Q_MIN(cl->n, k);
        return;
    }
    cand *h = cl->c;
    for (int32_t i = k / 2 - 1; i >= 0; i--) heap_sift_down(h, k, i);
    for (int32_t i = k; i < cl->n; i++)
        if (cand_cmp_desc(&h[i], &h[0]) < 0) {
            h[0] = h[i];
            heap_sift_down(h, k, 0);
        }
    cl->n = k;
    cl->sorted = false;
    cands_sort(cl);
}

static void stage_top_k(q_sampler *s, cand_list *cl) { cands_keep_best(cl, s->p.top_k); }

/* Locally typical sampling: rank tokens by how close their information content -log p is
 * to the entropy H, keep the best-ranked ones until their mass reaches typical_p. */
static int typical_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->aux != y->aux) return x->aux < y->aux ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void stage_typical(q_sampler *s, cand_list *cl) {
    cands_softmax(cl);
    double H = 0;
    for (int32_t i = 0; i < cl->n; i++)
        if (cl->c[i].p > 0) H -= cl->c[i].p * log(cl->c[i].p);
    for (int32_t i = 0; i < cl->n; i++)
        cl->c[i].aux = cl->c[i].p > 0 ? (float)fabs(-log(cl->c[i].p) - H) : INFINITY;
    qsort(cl->c, (size_t)cl->n, sizeof(cand), typical_cmp);
    double cum = 0;
    for (int32_t i = 0; i < cl->n; i++) {
        cum += cl->c[i].p;
        if (cum >= s->p.typical_p) { cl->n = i + 1; break; }
    }
    cl->sorted = false;
}

/* Smallest most-probable prefix whose probability mass reaches top_p. */
static void stage_top_p(q_sampler *s, cand_list *cl) {
    cands_softmax(cl);
    double cum = 0;
    for (int32_t i = 0; i < cl->n; i++) {
        cum += cl->c[i].p;
        if (cum >= s->p.top_p) { cl->n = i + 1; return; }
    }
}

/* Tokens with p >= min_p * p_max, i.e. logit >= max logit + log(min_p). */
static void stage_min_p(q_sampler *s, cand_list *cl) {
    cands_sort(cl);
    const float thr = cl->c[0].logit + logf(s->p.min_p);
    int32_t keep = 1;
    while (keep < cl->n && cl->c[keep].logit >= thr) keep++;
    cl->n = keep;
}

static void stage_temp(q_sampler *s, cand_list *cl) {
    for (int32_t i = 0; i < cl->n; i++) cl->c[i].logit /= s->p.temp;
}

typedef enum stage_id {
    STAGE_BIAS, STAGE_PENALTIES, STAGE_TOP_K, STAGE_TYPICAL, STAGE_TOP_P, STAGE_MIN_P, STAGE_TEMP,
    STAGE_COUNT
} stage_id;

typedef struct stage {
    const char *name;
    void (*apply)(q_sampler *s, cand_list *cl);
    bool (*active)(const q_sampler_params *p);
} stage;

static bool on_bias(const q_sampler_params *p) { return p->n_logit_bias > 0; }
static bool on_pen(const q_sampler_params *p) {
    return p->penalty_last_n != 0 && (p->penalty_repeat != 1.0f || p->penalty_freq != 0.0f || p->penalty_present != 0.0f);
}
static bool on_top_k(const q_sampler_params *p) { return p->temp > 0 && p->top_k > 0; }
static bool on_typ(const q_sampler_params *p) { return p->temp > 0 && p->typical_p < 1.0f; }
static bool on_top_p(const q_sampler_params *p) { return p->temp > 0 && p->top_p < 1.0f; }
static bool on_min_p(const q_sampler_params *p) { return p->temp > 0 && p->min_p > 0.0f; }
static bool on_temp(const q_sampler_params *p) { return p->temp > 0 && p->temp != 1.0f; }

/* llama.cpp's default order. */
static const stage stages[STAGE_COUNT] = {
    [STAGE_BIAS]      = { "logit-bias", stage_bias,      on_bias },
    [STAGE_PENALTIES] = { "penalties",  stage_penalties, on_pen },
    [STAGE_TOP_K]     = { "top-k",      stage_top_k,     on_top_k },
    [STAGE_TYPICAL]   = { "typical-p",  stage_typical,   on_typ },
    [STAGE_TOP_P]     = { "top-p",      stage_top_p,     on_top_p },
    [STAGE_MIN_P]     = { "min-p",      stage_min_p,     on_min_p },
    [STAGE_TEMP]      = { "temperature", stage_temp,     on_temp },
};

/* ---- public ---- */

q_sampler *q_sampler_new(const q_sampler_params *p, int32_t n_vocab) {
    Q_ASSERT(n_vocab > 0);
    q_sampler *s = q_xcalloc(1, sizeof *s);
    s->p = p ? *p : q_sampler_default_params();
    s->n_vocab = n_vocab;
    s->cands = q_xmalloc(sizeof(cand) * (size_t)n_vocab);
    s->counts = q_xcalloc((size_t)n_vocab, sizeof(int32_t));
    if (s->p.n_logit_bias > 0) {
        s->bias = q_xmalloc(sizeof(q_logit_bias) * (size_t)s->p.n_logit_bias);
        memcpy(s->bias, s->p.logit_bias, sizeof(q_logit_bias) * (size_t)s->p.n_logit_bias);
    }
    s->p.logit_bias = NULL;   /* the copy is s->bias */
    s->hist_cap = s->p.penalty_last_n < 0 ? 4096 : s->p.penalty_last_n;
    s->hist = q_xmalloc(sizeof(q_token) * (size_t)Q_MAX(1, s->hist_cap));
    q_sampler_reset(s);
    return s;
}

void q_sampler_free(q_sampler *s) {
    if (!s) return;
    free(s->cands);
    free(s->counts);
    free(s->bias);
    free(s->hist);
    free(s);
}

void q_sampler_reset(q_sampler *s) {
    s->hist_n = s->hist_head = 0;
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

void q_sampler_accept(q_sampler *s, q_token tok) {
    if (s->hist_cap <= 0 || tok < 0 || tok >= s->n_vocab) return;
    s->hist[s->hist_head] = tok;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap) s->hist_n++;
}

/* Candidate list after every active stage; greedy chains reduce to the argmax. */
static cand_list run_chain(q_sampler *s, const float *logits) {
    cand_list cl = { .c = s->cands, .n = s->n_vocab, .sorted = false };
    for (int32_t i = 0; i < s->n_vocab; i++) s->cands[i] = (cand){ i, logits[i], 0.0f, 0.0f };
    for (int st = 0; st < STAGE_COUNT; st++)
        if (stages[st].active(&s->p)) stages[st].apply(s, &cl);
    if (s->p.temp <= 0) {   /* greedy: argmax, ties to the lowest id */
        int32_t best = 0;
        for (int32_t i = 1; i < cl.n; i++)
            if (cl.c[i].logit > cl.c[best].logit || (cl.c[i].logit == cl.c[best].logit && cl.c[i].id < cl.c[best].id))
                best = i;
        cl.c[0] = cl.c[best];
        cl.c[0].p = 1.0f;
        cl.n = 1;
        cl.sorted = true;
        return cl;
    }
    cands_softmax(&cl);
    return cl;
}

int32_t q_sampler_candidates(q_sampler *s, const float *logits, q_token *ids, float *probs, int32_t cap) {
    cand_list cl = run_chain(s, logits);
    for (int32_t i = 0; i < cl.n && i < cap; i++) {
        if (ids) ids[i] = cl.c[i].id;
        if (probs) probs[i] = cl.c[i].p;
    }
    return cl.n;
}

q_token q_sampler_sample(q_sampler *s, const float *logits) {
    cand_list cl = run_chain(s, logits);
    if (cl.n == 1) return cl.c[0].id;
    const double r = rng_uniform(s);
    double cum = 0;
    for (int32_t i = 0; i < cl.n; i++) {
        cum += cl.c[i].p;
        if (r < cum) return cl.c[i].id;
    }
    return cl.c[cl.n - 1].id;   /* rounding left r above the total */
}

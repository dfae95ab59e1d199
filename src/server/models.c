/* models.c — the model registry of `quarrel serve`: every model the server can serve, by
 * name, and the loaded versions ("instances") of each.
 *
 *   entry     one servable name: the -m file (named by its file name, e.g. "x.gguf"), or a
 *             *.gguf of --models-dir (named by its file name without ".gguf"); either form
 *             of a name finds it. Holds the path its next load reads, the current instance
 *             (or none), the retired instances still running requests, and its last load
 *             error.
 *   instance  one loaded version: model + context + scheduler (its own engine thread,
 *             hence its own prefix cache). Reference counted by requests: a request takes a
 *             reference to the entry's current instance when it is admitted and drops it
 *             when it ends (srv_inst_release). An instance stops being current when it is
 *             swapped out, unloaded or evicted; it is freed when it is not current and its
 *             last reference goes, so a running request always finishes where it started.
 *
 * Status of an entry (GET /api/models): "loading" (first load under way, nothing current),
 * "loaded" (a current instance; a swap loads the new one while this one keeps serving),
 * "draining" (nothing current; a retired instance still runs requests), "unloaded".
 * Loads happen outside the registry lock, on the thread that asked (a request's connection
 * thread, or startup) or, for callers that must not block (the WebSocket reactor, through
 * srv_models_try_acquire), on the registry's loader thread, which then writes the notify fd
 * (srv_models_set_notify); others asking for the same entry wait.
 * --max-loaded N bounds the current instances: once a load succeeded (never before, so a
 * failed load evicts nothing) the least recently used others are retired until N remain,
 * preferring ones without running requests (a busy one drains, never killed). Retired
 * (draining) versions are outside the bound but counted in every memory figure.
 * The directory is rescanned on SIGHUP and when a request names an unknown model while
 * the directory's mtime shows a change since the last listing (dir_unchanged): new
 * files become entries; an entry whose file is gone is dropped once nothing of it is
 * loaded or draining. A dropped entry is kept (unlisted) until srv_models_free, so
 * pointers to entries (instances, waiters, the default name) never dangle.
 *
 * Not here: HTTP (routes_api.c), the decode loop (scheduler.c).
 * Memory: the registry owns entries and instances; srv_models_free frees all (every
 * request must have ended). The engine thread never holds a reference, so freeing an
 * instance (which joins that thread) never runs on it. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"
#include "quarrel/gguf.h"
#include "quarrel/quantize.h"
#include "server/server.h"

struct srv_inst {
    srv_models      *reg;
    struct entry    *e;
    char            *path;
    unsigned         version;     /* 1, 2, ... per entry */
    q_model         *model;
    q_context       *ctx;
    srv_sched       *sched;
    int              slot_ctx;
    int              refs;        /* requests holding it; under reg->mu */
    bool             current;     /* e->cur == this; under reg->mu */
    struct srv_inst *next_old;    /* e->old list */
};

typedef struct entry {
    char      name[128];
    bool      from_dir;           /* a --models-dir file (rescans may drop it), not -m's */
    bool      gone;               /* its file left the directory: dropped once idle */
    bool      dropped;            /* no longer listed (kept for pointers until the end) */
    bool      want_load;          /* queued for the loader thread */
    int       holders;            /* threads keeping this pointer across an unlock */
    unsigned  loads_done;         /* load attempts ended (success or failure) */
    struct entry *next_dropped;
    char     *path;               /* what the next load reads (a swap's path once it loaded) */
    srv_inst *cur;                /* current version or NULL */
    srv_inst *old;                /* retired versions with running requests */
    bool      loading;            /* a load (first, reload or swap) is under way */
    unsigned  versions;           /* versions loaded so far */
    double    last_used;          /* srv_now() of the last acquire (LRU) */
    char      err[256];           /* the last load failure, "" = none */
} entry;

struct srv_models {
    const srv_config *cfg;
    pthread_mutex_t   mu;
    pthread_cond_t    cv;         /* an entry's load ended */
    entry           **e;          /* [n] listed entries: -m's first, then the directory's by name */
    int               n;
    entry            *def;        /* the entry requests without "model" use (NULL: none left) */
    entry            *dropped;    /* unlisted entries, freed with the registry */
    char             *roots[2];   /* absolute dirs a swap path may name (NULL = none) */
    bool              closing;
    pthread_t         loader;     /* loads for srv_models_try_acquire */
    bool              loader_started;
    pthread_cond_t    load_cv;    /* an entry wants loading, or closing */
    int               notify_fd;  /* eventfd written when a load ends; -1 = none */
    pthread_mutex_t   scan_mu;    /* one rescan at a time (an older listing never lands last) */
    struct timespec   scan_mtime; /* under scan_mu: the directory's mtime before the last listing */
    struct timespec   scan_time;  /* under scan_mu: when that listing began (CLOCK_REALTIME) */
    bool              scanned;
};

typedef enum model_status {
    MODEL_UNLOADED, MODEL_LOADING, MODEL_LOADED, MODEL_DRAINING, MODEL_STATUS_COUNT
} model_status;

static const char *const status_names[MODEL_STATUS_COUNT] = {
    [MODEL_UNLOADED] = "unloaded", [MODEL_LOADING] = "loading",
    [MODEL_LOADED] = "loaded",     [MODEL_DRAINING] = "draining",
};

static model_status entry_status(const entry *e) {
    if (e->cur) return MODEL_LOADED;
    if (e->loading) return MODEL_LOADING;
    return e->old ? MODEL_DRAINING : MODEL_UNLOADED;
}

const q_model *srv_inst_model(const srv_inst *i) { return i->model; }
srv_sched     *srv_inst_sched(const srv_inst *i) { return i->sched; }
const char    *srv_inst_name(const srv_inst *i) { return i->e->name; }
int            srv_inst_slot_ctx(const srv_inst *i) { return i->slot_ctx; }

/* ---- paths ---- */

/* An absolute, lexically normalised copy of path ("." and ".." segments and repeated
 * slashes resolved; relative paths are taken from base, or the working directory).
 * Symbolic links are not resolved: a link inside a models directory is the operator's. */
static char *path_absolute(const char *path, const char *base) {
    char cwd[PATH_MAX];
    if (!base && path[0] != '/') base = getcwd(cwd, sizeof cwd) ? cwd : "/";
    const size_t n = (path[0] == '/' ? 0 : strlen(base) + 1) + strlen(path) + 2;
    char *in = q_xmalloc(n), *out = q_xmalloc(n);
    snprintf(in, n, "%s%s%s", path[0] == '/' ? "" : base, path[0] == '/' ? "" : "/", path);
    size_t o = 0;
    char *save = NULL;
    for (char *seg = strtok_r(in, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, ".")) continue;
        if (!strcmp(seg, "..")) {   /* drop the last segment */
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
            continue;
        }
        out[o++] = '/';
        const size_t k = strlen(seg);
        memcpy(out + o, seg, k);
        o += k;
    }
    if (o == 0) out[o++] = '/';
    out[o] = 0;
    free(in);
    return out;
}

/* The directory part of an absolute path (malloc'ed). */
static char *path_dir(const char *abs) {
    char *d = q_xstrdup(abs);
    char *slash = strrchr(d, '/');
    if (slash == d) slash[1] = 0;
    else *slash = 0;
    return d;
}

static bool path_inside(const char *abs, const char *root) {
    const size_t n = strlen(root);
    if (!strcmp(root, "/")) return true;
    return !strncmp(abs, root, n) && abs[n] == '/' && abs[n + 1];
}

/* ---- instances ---- */

static void inst_free(srv_inst *i) {
    if (!i) return;
    srv_sched_free(i->sched);
    q_context_free(i->ctx);
    q_model_free(i->model);
    srv_log(SRV_LOG_INFO, "model_freed", NULL, json_pack("{s:s, s:i}", "model", i->e->name, "version", (int)i->version));
    free(i->path);
    free(i);
}

/* Loads path into a new instance: model, a context of --parallel slots, a scheduler. */
static q_status inst_load(srv_models *reg, entry *e, const char *path, srv_inst **out, q_error *err) {
    const srv_config *cfg = reg->cfg;
    srv_inst *i = q_xcalloc(1, sizeof *i);
    i->reg = reg;
    i->e = e;
    i->path = q_xstrdup(path);
    if (cfg->test_load_delay_ms > 0)   /* tests: makes a load long enough to observe */
        usleep((useconds_t)(cfg->test_load_delay_ms * 1000));
    q_status st = q_model_load(path, &i->model, err);
    if (st != Q_OK) goto fail;
    if (!q_model_vocab(i->model)) {
        st = q_fail(err, Q_ERR_UNSUPPORTED, "%s has no usable tokenizer: %s", path, q_model_vocab_error(i->model));
        goto fail;
    }
    long slot_ctx = cfg->n_ctx;
    if (slot_ctx <= 0) {
        slot_ctx = q_model_n_ctx_train(i->model);
        if (slot_ctx <= 0 || slot_ctx > 4096) slot_ctx = 4096;
    }
    i->slot_ctx = (int)slot_ctx;
    /* every slot gets slot_ctx cells of one shared cache */
    q_context_params cp = q_context_default_params();
    cp.n_ctx = (int32_t)(slot_ctx * cfg->parallel);
    cp.n_batch = 512;
    cp.n_seq_max = (int32_t)cfg->parallel + (cfg->prefix_cache ? 1 : 0);   /* the prefix cache's own sequence */
    cp.n_threads = (int32_t)cfg->n_threads;
    if ((st = q_context_new(i->model, &cp, &i->ctx, err)) != Q_OK) goto fail;
    if ((st = srv_sched_new(i->model, i->ctx, (int)cfg->parallel, (int)slot_ctx, (int)cfg->queue_size,
                            cfg->prefix_cache != 0, cfg->prefix_cache_tokens, &i->sched, err)) != Q_OK)
        goto fail;
    *out = i;
    return Q_OK;
fail:
    srv_sched_free(i->sched);
    q_context_free(i->ctx);
    q_model_free(i->model);
    free(i->path);
    free(i);
    *out = NULL;
    return st;
}

/* ---- the registry ---- */

static int loaded_count(const srv_models *reg) {
    int n = 0;
    for (int k = 0; k < reg->n; k++) n += reg->e[k]->cur != NULL;
    return n;
}

static void publish_loaded(const srv_models *reg) { srv_metrics_models_loaded(loaded_count(reg)); }

/* Under mu: e's current instance stops being current. Returns it when nothing holds it
 * (the caller frees it after unlocking), else keeps it on e->old until its last request. */
static srv_inst *entry_retire(entry *e) {
    srv_inst *i = e->cur;
    if (!i) return NULL;
    e->cur = NULL;
    i->current = false;
    if (i->refs == 0) return i;
    i->next_old = e->old;
    e->old = i;
    return NULL;
}

/* Under mu, once e's new version is current: retires the least recently used other
 * current versions, idle ones first, until --max-loaded remain. Loads of other entries
 * still under way are not counted: each makes room when it is in. Retired idle instances
 * go to freed[*n_freed...] (room for reg->n). */
static void registry_make_room(srv_models *reg, const entry *except, srv_inst **freed, int *n_freed) {
    const long max = reg->cfg->max_loaded;
    if (max <= 0) return;
    while (loaded_count(reg) > max) {
        entry *victim = NULL;
        for (int pass = 0; pass < 2 && !victim; pass++)   /* pass 0: idle ones only */
            for (int k = 0; k < reg->n; k++) {
                entry *c = reg->e[k];
                if (c == except || !c->cur || c->loading || (pass == 0 && c->cur->refs > 0)) continue;
                if (!victim || c->last_used < victim->last_used) victim = c;
            }
        if (!victim) return;   /* every other one is mid-swap: go over the bound for now */
        srv_log(SRV_LOG_INFO, "model_evicted", NULL,
                json_pack("{s:s, s:i, s:i}", "model", victim->name, "running", victim->cur->refs, "max_loaded", (int)max));
        srv_inst *i = entry_retire(victim);
        if (i) freed[(*n_freed)++] = i;
        srv_metrics_model_event(SRV_MODEL_EV_UNLOAD);
    }
}

/* Under mu, with e not loading: loads path as e's new current version (a swap when e has
 * one: it keeps serving until the new one is in). Unlocks while loading and while freeing
 * what the load retired; e stays valid (an entry is never freed before the registry). */
static q_status entry_load(srv_models *reg, entry *e, const char *path, q_error *err) {
    e->loading = true;
    char *p = q_xstrdup(path);
    pthread_mutex_unlock(&reg->mu);

    const double t0 = srv_now();
    srv_inst *i = NULL;
    const q_status st = inst_load(reg, e, p, &i, err);

    pthread_mutex_lock(&reg->mu);
    srv_inst **freed = q_xcalloc((size_t)reg->n + 1, sizeof *freed);
    int n_freed = 0;
    if (st == Q_OK) {
        const bool swap = e->cur != NULL;
        srv_inst *old = entry_retire(e);
        if (old) freed[n_freed++] = old;
        i->version = ++e->versions;
        i->current = true;
        e->cur = i;
        e->err[0] = 0;
        e->last_used = srv_now();
        free(e->path);
        e->path = p;
        p = NULL;
        srv_metrics_model_event(SRV_MODEL_EV_LOAD);
        if (swap) srv_metrics_model_event(SRV_MODEL_EV_SWAP);
        srv_log(SRV_LOG_INFO, swap ? "model_swapped" : "model_loaded", NULL,
                json_pack("{s:s, s:s, s:i, s:f}", "model", e->name, "path", i->path, "version", (int)i->version, "ms",
                          (srv_now() - t0) * 1e3));
        if (!swap) registry_make_room(reg, e, freed, &n_freed);   /* only now: a failed load evicts nothing */
    } else {
        snprintf(e->err, sizeof e->err, "%.250s", err->msg);
        srv_metrics_model_event(SRV_MODEL_EV_LOAD_FAILURE);
        srv_log(SRV_LOG_WARN, "model_load_failed", NULL, json_pack("{s:s, s:s, s:s}", "model", e->name, "path", p, "error", err->msg));
    }
    e->loading = false;
    e->loads_done++;
    publish_loaded(reg);
    pthread_cond_broadcast(&reg->cv);
    if (reg->notify_fd >= 0) {   /* callers of srv_models_try_acquire retry */
        const uint64_t one = 1;
        ssize_t w = write(reg->notify_fd, &one, sizeof one);
        (void)w;
    }
    if (n_freed) {   /* idle old or evicted versions: free them outside the lock */
        pthread_mutex_unlock(&reg->mu);
        for (int k = 0; k < n_freed; k++) inst_free(freed[k]);
        pthread_mutex_lock(&reg->mu);
    }
    free(p);
    free(freed);
    return st;
}

/* Under mu: the listed entry named name ("x" or "x.gguf"; NULL = the default), or NULL. */
static entry *registry_find(srv_models *reg, const char *name) {
    if (!name) return reg->def;
    const size_t wn = strlen(name);
    for (int k = 0; k < reg->n; k++) {
        const char *have = reg->e[k]->name;
        const size_t hn = strlen(have);
        if (!strcmp(have, name)) return reg->e[k];
        /* either side may carry the extension */
        if (hn > 5 && !strcmp(have + hn - 5, ".gguf") && wn == hn - 5 && !strncmp(name, have, wn)) return reg->e[k];
        if (wn > 5 && !strcmp(name + wn - 5, ".gguf") && hn == wn - 5 && !strncmp(name, have, hn)) return reg->e[k];
    }
    return NULL;
}

/* Under mu: a new listed entry (NULL when the name is taken). */
static entry *entry_add(srv_models *reg, const char *name, const char *path, bool from_dir) {
    for (int k = 0; k < reg->n; k++)
        if (!strcmp(reg->e[k]->name, name)) {
            srv_log(SRV_LOG_WARN, "model_duplicate", NULL, json_pack("{s:s, s:s}", "model", name, "skipped", path));
            return NULL;
        }
    reg->e = q_xrealloc(reg->e, (size_t)(reg->n + 1) * sizeof *reg->e);
    entry *e = q_xcalloc(1, sizeof *e);
    reg->e[reg->n++] = e;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->path = q_xstrdup(path);
    e->from_dir = from_dir;
    return e;
}

static void entry_free(entry *e) {
    inst_free(e->cur);
    for (srv_inst *i = e->old, *next; i; i = next) {
        next = i->next_old;
        Q_ASSERT(i->refs == 0);   /* every request has ended */
        inst_free(i);
    }
    free(e->path);
    free(e);
}

/* Under mu: unlists the entries whose file is gone and that hold nothing (no version,
 * no load, no waiter). The default moves to the first listed entry if it went. */
static void registry_prune(srv_models *reg) {
    int o = 0;
    for (int k = 0; k < reg->n; k++) {
        entry *e = reg->e[k];
        if (e->gone && !e->cur && !e->old && !e->loading && !e->want_load && !e->holders) {
            e->dropped = true;
            e->next_dropped = reg->dropped;
            reg->dropped = e;
            srv_log(SRV_LOG_INFO, "model_removed", NULL, json_pack("{s:s}", "model", e->name));
            continue;
        }
        reg->e[o++] = e;
    }
    reg->n = o;
    if (reg->def && reg->def->dropped) reg->def = reg->n ? reg->e[0] : NULL;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int entry_cmp(const void *a, const void *b) { return strcmp((*(entry *const *)a)->name, (*(entry *const *)b)->name); }

/* The *.gguf file names in dir (regular files or links), sorted, without ".gguf"; *n of
 * them (malloc'ed, each malloc'ed). Reads the directory without the registry lock. */
static q_status dir_list(const char *dir, char ***out, size_t *n_out, q_error *err) {
    DIR *d = opendir(dir);
    if (!d) return q_fail(err, Q_ERR_IO, "--models-dir %s: cannot open the directory", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const size_t k = strlen(de->d_name);
        if (k <= 5 || k - 5 >= sizeof ((entry *)0)->name || strcmp(de->d_name + k - 5, ".gguf") || de->d_name[0] == '.')
            continue;
        names = q_xrealloc(names, (n + 1) * sizeof *names);
        names[n] = q_xstrdup(de->d_name);
        names[n++][k - 5] = 0;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, name_cmp);
    *out = names;
    *n_out = n;
    return Q_OK;
}

/* Under scan_mu: whether the directory cannot have changed since the last listing: same
 * mtime, and that mtime at least a second older than the listing (a coarse file-system
 * clock could give a later change the same stamp: such a "racily clean" listing is redone,
 * as git treats index entries written in the same tick as the file). A request naming an
 * unknown model lists the directory only when this is false, so a client spraying bogus
 * names costs a stat, not a directory read, each. */
static bool dir_unchanged(const srv_models *reg, const struct timespec *mtime) {
    if (!reg->scanned || mtime->tv_sec != reg->scan_mtime.tv_sec || mtime->tv_nsec != reg->scan_mtime.tv_nsec)
        return false;
    return reg->scan_time.tv_sec - mtime->tv_sec >= 2;
}

/* Brings the listed directory entries in line with the directory: new names are added
 * (the directory's part of the list stays in name order), names whose file left are
 * marked gone (and unlisted once they hold nothing), names that came back are kept.
 * Takes mu. */
static q_status registry_scan(srv_models *reg, const char *why, bool if_changed, q_error *err) {
    const char *dir = reg->cfg->models_dir;
    if (!dir) return Q_OK;
    char **names = NULL;
    size_t n = 0;
    pthread_mutex_lock(&reg->scan_mu);
    struct stat sd;
    const bool have_mtime = stat(dir, &sd) == 0;
    if (if_changed && have_mtime && dir_unchanged(reg, &sd.st_mtim)) {
        pthread_mutex_unlock(&reg->scan_mu);
        return Q_OK;
    }
    reg->scanned = have_mtime;
    if (have_mtime) reg->scan_mtime = sd.st_mtim;
    clock_gettime(CLOCK_REALTIME, &reg->scan_time);
    srv_metrics_model_event(SRV_MODEL_EV_RESCAN);
    const q_status st = dir_list(dir, &names, &n, err);
    if (st != Q_OK) {
        pthread_mutex_unlock(&reg->scan_mu);
        return st;
    }
    pthread_mutex_lock(&reg->mu);
    int added = 0;
    for (int k = 0; k < reg->n; k++)
        if (reg->e[k]->from_dir) reg->e[k]->gone = true;
    for (size_t k = 0; k < n; k++) {
        entry *have = NULL;
        for (int j = 0; j < reg->n && !have; j++)
            if (reg->e[j]->from_dir && !strcmp(reg->e[j]->name, names[k])) have = reg->e[j];
        if (have) { have->gone = false; continue; }
        char *path = q_xmalloc(strlen(dir) + strlen(names[k]) + 7);
        sprintf(path, "%s/%s.gguf", dir, names[k]);
        if (entry_add(reg, names[k], path, true)) added++;
        free(path);
    }
    const int first_dir = reg->cfg->model_path && reg->n && !reg->e[0]->from_dir ? 1 : 0;
    if (reg->n - first_dir > 1) qsort(reg->e + first_dir, (size_t)(reg->n - first_dir), sizeof *reg->e, entry_cmp);
    const int before = reg->n;
    registry_prune(reg);
    if (!reg->def && reg->n) reg->def = reg->e[0];
    if (why && (added || before != reg->n))
        srv_log(SRV_LOG_INFO, "models_rescanned", NULL,
                json_pack("{s:s, s:i, s:i, s:i}", "why", why, "added", added, "removed", before - reg->n, "models", reg->n));
    pthread_mutex_unlock(&reg->mu);
    pthread_mutex_unlock(&reg->scan_mu);
    for (size_t k = 0; k < n; k++) free(names[k]);
    free(names);
    return Q_OK;
}

static void registry_rescan(srv_models *reg, const char *why, bool if_changed) {
    q_error err;
    if (registry_scan(reg, why, if_changed, &err) != Q_OK)   /* the directory went: keep what is listed */
        srv_log(SRV_LOG_WARN, "models_rescan_failed", NULL, json_pack("{s:s, s:s}", "why", why, "error", err.msg));
}

void srv_models_rescan(srv_models *reg, const char *why) { registry_rescan(reg, why, false); }

/* The loader thread: loads the entries srv_models_try_acquire queued, one at a time. */
static void *registry_loader(void *arg) {
    srv_models *reg = arg;
    pthread_mutex_lock(&reg->mu);
    while (!reg->closing) {
        entry *e = NULL;
        for (int k = 0; k < reg->n && !e; k++)
            if (reg->e[k]->want_load) e = reg->e[k];
        if (!e) {
            pthread_cond_wait(&reg->load_cv, &reg->mu);
            continue;
        }
        e->want_load = false;
        if (e->cur || e->loading) continue;   /* someone else loaded it meanwhile */
        q_error err;
        (void)entry_load(reg, e, e->path, &err);   /* the outcome is in e (cur or err) */
    }
    pthread_mutex_unlock(&reg->mu);
    return NULL;
}

q_status srv_models_new(const srv_config *cfg, srv_models **out, q_error *err) {
    *out = NULL;
    srv_models *reg = q_xcalloc(1, sizeof *reg);
    reg->cfg = cfg;
    reg->notify_fd = -1;
    pthread_mutex_init(&reg->mu, NULL);
    pthread_mutex_init(&reg->scan_mu, NULL);
    pthread_cond_init(&reg->cv, NULL);
    pthread_cond_init(&reg->load_cv, NULL);
    q_status st = Q_OK;
    if (cfg->model_path) {
        const char *base = strrchr(cfg->model_path, '/');
        reg->def = entry_add(reg, base ? base + 1 : cfg->model_path, cfg->model_path, false);
        char *abs = path_absolute(cfg->model_path, NULL);
        reg->roots[0] = path_dir(abs);
        free(abs);
    }
    if (cfg->models_dir) {
        if ((st = registry_scan(reg, NULL, false, err)) != Q_OK) goto fail;
        reg->roots[1] = path_absolute(cfg->models_dir, NULL);
    }
    if (reg->n == 0) {
        st = q_fail(err, Q_ERR_INVALID_ARG, "--models-dir %s holds no *.gguf file", cfg->models_dir ? cfg->models_dir : "?");
        goto fail;
    }
    /* the -m model loads now, as it always did (a bad file stops the start); --preload
     * loads the directory's too (a bad one is logged and shown in /api/models) */
    pthread_mutex_lock(&reg->mu);
    for (int k = 0; k < reg->n; k++) {
        entry *e = reg->e[k];
        const bool is_m = !e->from_dir;
        if (!is_m && !cfg->preload) continue;
        if (!is_m && cfg->max_loaded > 0 && loaded_count(reg) >= cfg->max_loaded) break;
        q_error lerr;
        st = entry_load(reg, e, e->path, &lerr);
        if (st != Q_OK && is_m) {
            *err = lerr;
            pthread_mutex_unlock(&reg->mu);
            goto fail;
        }
        st = Q_OK;
    }
    pthread_mutex_unlock(&reg->mu);
    if (pthread_create(&reg->loader, NULL, registry_loader, reg) != 0) {
        st = q_fail(err, Q_ERR_IO, "model registry: could not start the loader thread");
        goto fail;
    }
    reg->loader_started = true;
    *out = reg;
    return Q_OK;
fail:
    srv_models_free(reg);
    return st;
}

void srv_models_set_notify(srv_models *reg, int fd) {
    pthread_mutex_lock(&reg->mu);
    reg->notify_fd = fd;
    pthread_mutex_unlock(&reg->mu);
}

void srv_models_shutdown(srv_models *reg, double deadline) {
    if (!reg) return;
    /* hold every live instance by a reference while its scheduler drains, outside the lock
     * (requests ending meanwhile release theirs; the WebSocket reactor must not block) */
    pthread_mutex_lock(&reg->mu);
    reg->closing = true;
    pthread_cond_broadcast(&reg->cv);
    pthread_cond_broadcast(&reg->load_cv);
    size_t n = 0, cap = 8;
    srv_inst **held = q_xmalloc(cap * sizeof *held);
    for (int k = 0; k < reg->n; k++) {
        entry *e = reg->e[k];
        for (srv_inst *i = e->cur ? e->cur : e->old; i; i = i == e->cur ? e->old : i->next_old) {
            if (n == cap) held = q_xrealloc(held, (cap *= 2) * sizeof *held);
            i->refs++;
            held[n++] = i;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    for (size_t k = 0; k < n; k++) srv_sched_shutdown(held[k]->sched, deadline);
    for (size_t k = 0; k < n; k++) srv_inst_release(held[k]);
    free(held);
}

void srv_models_free(srv_models *reg) {
    if (!reg) return;
    if (reg->loader_started) {   /* a load under way ends first */
        pthread_mutex_lock(&reg->mu);
        reg->closing = true;
        pthread_cond_broadcast(&reg->load_cv);
        pthread_mutex_unlock(&reg->mu);
        pthread_join(reg->loader, NULL);
    }
    for (int k = 0; k < reg->n; k++) entry_free(reg->e[k]);
    for (entry *e = reg->dropped, *next; e; e = next) {
        next = e->next_dropped;
        entry_free(e);
    }
    free(reg->e);
    free(reg->roots[0]);
    free(reg->roots[1]);
    pthread_cond_destroy(&reg->load_cv);
    pthread_cond_destroy(&reg->cv);
    pthread_mutex_destroy(&reg->scan_mu);
    pthread_mutex_destroy(&reg->mu);
    srv_metrics_models_loaded(0);
    free(reg);
}

const char *srv_models_default_name(srv_models *reg) {
    pthread_mutex_lock(&reg->mu);
    const char *name = reg->def ? reg->def->name : "";   /* an entry outlives every reader */
    pthread_mutex_unlock(&reg->mu);
    return name;
}

/* Under mu: the entry for name (NULL: the default), rescanning the directory once when it
 * is not listed (a file added since the last scan). An entry whose file went is unlisted
 * first if it holds nothing. Keeps mu held on return. */
static entry *registry_find_rescan(srv_models *reg, const char *name) {
    registry_prune(reg);
    entry *e = registry_find(reg, name);
    if (e || !reg->cfg->models_dir || reg->closing) return e;
    pthread_mutex_unlock(&reg->mu);
    registry_rescan(reg, "unknown model", true);
    pthread_mutex_lock(&reg->mu);
    return registry_find(reg, name);
}

static srv_acquire not_found(const char *name, char *msg, size_t n) {
    if (name) snprintf(msg, n, "model '%.200s' does not exist here (see GET /v1/models)", name);
    else snprintf(msg, n, "no model is left to serve (the models directory is empty)");
    return SRV_ACQUIRE_NOT_FOUND;
}

srv_acquire srv_models_acquire(srv_models *reg, const char *name, srv_inst **out, const char **canon, char *msg,
                               size_t n) {
    *out = NULL;
    if (canon) *canon = NULL;
    pthread_mutex_lock(&reg->mu);
    entry *e = registry_find_rescan(reg, name);
    srv_acquire r = SRV_ACQUIRE_OK;
    if (!e) r = not_found(name, msg, n);
    else {
        if (canon) *canon = e->name;
        e->holders++;
    }
    while (e) {
        if (reg->closing) {
            snprintf(msg, n, "the server is shutting down");
            r = SRV_ACQUIRE_CLOSED;
            break;
        }
        if (e->cur) {   /* the current version, even while a swap loads the next */
            e->cur->refs++;
            e->last_used = srv_now();
            *out = e->cur;
            break;
        }
        if (e->loading) {
            pthread_cond_wait(&reg->cv, &reg->mu);
            continue;
        }
        q_error err;   /* unloaded: load it now (lazy) */
        if (entry_load(reg, e, e->path, &err) != Q_OK) {
            snprintf(msg, n, "model '%s' could not be loaded: %.300s", e->name, err.msg);
            r = SRV_ACQUIRE_LOAD_FAILED;
            break;
        }
    }
    if (e) e->holders--;
    pthread_mutex_unlock(&reg->mu);
    return r;
}

srv_acquire srv_models_try_acquire(srv_models *reg, const char *name, unsigned *ticket, srv_inst **out,
                                   const char **canon, char *msg, size_t n) {
    *out = NULL;
    if (canon) *canon = NULL;
    pthread_mutex_lock(&reg->mu);
    entry *e = registry_find_rescan(reg, name);
    srv_acquire r = SRV_ACQUIRE_PENDING;
    if (!e) r = not_found(name, msg, n);
    else if (canon) *canon = e->name;
    if (e && reg->closing) {
        snprintf(msg, n, "the server is shutting down");
        r = SRV_ACQUIRE_CLOSED;
    } else if (e && e->cur) {
        e->cur->refs++;
        e->last_used = srv_now();
        *out = e->cur;
        r = SRV_ACQUIRE_OK;
    } else if (e && *ticket && e->loads_done >= *ticket && e->err[0]) {   /* the load we waited for failed */
        snprintf(msg, n, "model '%s' could not be loaded: %.300s", e->name, e->err);
        r = SRV_ACQUIRE_LOAD_FAILED;
    } else if (e) {   /* not loaded (or unloaded again since): wait for the next load to end */
        if (!*ticket || e->loads_done >= *ticket) *ticket = e->loads_done + 1;
        if (!e->loading && !e->want_load) {
            e->want_load = true;
            pthread_cond_signal(&reg->load_cv);
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return r;
}

void srv_inst_release(srv_inst *i) {
    if (!i) return;
    srv_models *reg = i->reg;
    pthread_mutex_lock(&reg->mu);
    Q_ASSERT(i->refs > 0);
    const bool last = --i->refs == 0 && !i->current;
    if (last)   /* off the entry's retired list */
        for (srv_inst **p = &i->e->old; *p; p = &(*p)->next_old)
            if (*p == i) { *p = i->next_old; break; }
    pthread_mutex_unlock(&reg->mu);
    if (last) inst_free(i);
}

/* ---- admin ---- */

/* Under mu: waits out a load of e under way. */
static void entry_wait_idle(srv_models *reg, entry *e) {
    while (e->loading && !reg->closing) pthread_cond_wait(&reg->cv, &reg->mu);
}

static json_t *entry_json(const entry *e);

int srv_models_admin(srv_models *reg, srv_model_op op, const char *name, const char *path, json_t **desc,
                     const char **label, char *msg, size_t n) {
    *desc = NULL;
    char *abs = NULL;
    if (path) {   /* relative to --models-dir, else to the -m file's directory */
        abs = path_absolute(path, reg->roots[1] ? reg->roots[1] : reg->roots[0]);
        const bool ok = (reg->roots[0] && path_inside(abs, reg->roots[0])) || (reg->roots[1] && path_inside(abs, reg->roots[1]));
        if (!ok) {
            snprintf(msg, n, "'path' must name a file inside %s%s%s", reg->roots[1] ? "--models-dir" : "",
                     reg->roots[0] && reg->roots[1] ? " or " : "", reg->roots[0] ? "the -m model's directory" : "");
            free(abs);
            return 403;
        }
        if (access(abs, R_OK) != 0) {
            snprintf(msg, n, "'path' %.300s is not a readable file", path);
            free(abs);
            return 400;
        }
    }
    pthread_mutex_lock(&reg->mu);
    entry *e = registry_find_rescan(reg, name);
    if (e) *label = e->name;   /* entries outlive every request (dropped ones are kept) */
    int status = 200;
    if (!e) {
        snprintf(msg, n, "model '%.200s' does not exist here (see GET /api/models)", name);
        status = 404;
        goto out;
    }
    e->holders++;
    entry_wait_idle(reg, e);
    if (reg->closing) {
        snprintf(msg, n, "the server is shutting down");
        status = 503;
        goto out_held;
    }
    q_error err;
    if (op == SRV_MODEL_UNLOAD) {
        if (e->cur) srv_metrics_model_event(SRV_MODEL_EV_UNLOAD);
        srv_inst *idle = entry_retire(e);
        publish_loaded(reg);
        if (idle) {
            pthread_mutex_unlock(&reg->mu);
            inst_free(idle);
            pthread_mutex_lock(&reg->mu);
        }
    } else if ((op == SRV_MODEL_SWAP || !e->cur) &&
               entry_load(reg, e, abs ? abs : e->path, &err) != Q_OK) {
        snprintf(msg, n, "model '%s' could not be loaded: %.300s", e->name, err.msg);
        status = 500;
    }
    if (status == 200) *desc = entry_json(e);   /* now: a removed file's entry may be unlisted next */
out_held:
    e->holders--;
out:
    pthread_mutex_unlock(&reg->mu);
    free(abs);
    return status;
}

/* ---- description ---- */

/* Under mu: what GET /api/models says of one instance's model: parameters are the elements
 * of every tensor; quantization is general.file_type's name, else the tensor type holding
 * the most bytes. */
static void model_facts(json_t *o, const srv_inst *i) {
    const gguf_file *f = q_model_gguf(i->model);
    uint64_t params = 0, bytes[Q_TYPE_COUNT] = { 0 };
    for (uint64_t t = 0; t < f->n_tensors; t++) {
        const gguf_tensor_info *ti = &f->tensors[t];
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) n *= (uint64_t)ti->ne[d];
        params += n;
        if (ti->type < Q_TYPE_COUNT) bytes[ti->type] += ti->nbytes;
    }
    uint64_t ft;
    const char *quant = gguf_get_u64(f, "general.file_type", &ft) ? q_ftype_name((q_ftype)ft) : NULL;
    char upper[32];
    if (!quant) {   /* spelled as file types are ("F32", "Q8_0") */
        int best = 0;
        for (int t = 1; t < Q_TYPE_COUNT; t++) if (bytes[t] > bytes[best]) best = t;
        snprintf(upper, sizeof upper, "%s", q_type_name((q_type)best));
        for (char *c = upper; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
        quant = upper;
    }
    json_object_set_new(o, "architecture", json_string(q_model_arch(i->model)));
    json_object_set_new(o, "parameters", json_integer((json_int_t)params));
    json_object_set_new(o, "quantization", json_string(quant ? quant : "unknown"));
    json_object_set_new(o, "context_length", json_integer(q_model_n_ctx_train(i->model)));
    json_object_set_new(o, "slot_context", json_integer(i->slot_ctx));
}

static json_t *inst_json(const srv_inst *i) {
    return json_pack("{s:i, s:s, s:s, s:i, s:I}", "version", (int)i->version, "status", i->current ? "current" : "draining",
                     "path", i->path, "running", i->refs, "memory_bytes", (json_int_t)q_model_size(i->model));
}

/* Under mu. memory_bytes counts the mapped files of every version still alive. */
static json_t *entry_json(const entry *e) {
    json_t *versions = json_array();
    uint64_t mem = 0;
    if (e->cur) { json_array_append_new(versions, inst_json(e->cur)); mem += q_model_size(e->cur->model); }
    for (const srv_inst *i = e->old; i; i = i->next_old) {
        json_array_append_new(versions, inst_json(i));
        mem += q_model_size(i->model);
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:I}", "name", e->name, "path", e->cur ? e->cur->path : e->path,
                          "status", status_names[entry_status(e)], "loaded", e->cur != NULL, "memory_bytes", (json_int_t)mem);
    json_object_set_new(o, "version", e->cur ? json_integer((json_int_t)e->cur->version) : json_null());
    json_object_set_new(o, "versions", versions);
    json_object_set_new(o, "error", e->err[0] ? json_string(e->err) : json_null());
    if (e->cur) model_facts(o, e->cur);
    return o;
}

json_t *srv_models_json(srv_models *reg, const char *name) {
    pthread_mutex_lock(&reg->mu);
    json_t *o = NULL;
    registry_prune(reg);   /* a removed file stops being listed once nothing of it is loaded */
    if (name) {
        const entry *e = registry_find(reg, name);
        if (e) o = entry_json(e);
    } else {
        o = json_array();
        for (int k = 0; k < reg->n; k++) json_array_append_new(o, entry_json(reg->e[k]));
    }
    pthread_mutex_unlock(&reg->mu);
    return o;
}

json_t *srv_models_names(srv_models *reg) {
    json_t *a = json_array();
    pthread_mutex_lock(&reg->mu);
    registry_prune(reg);
    for (int k = 0; k < reg->n; k++) json_array_append_new(a, json_string(reg->e[k]->name));
    pthread_mutex_unlock(&reg->mu);
    return a;
}

srv_models_totals srv_models_sum(srv_models *reg) {
    srv_models_totals t = { .alive = true, .slot_ctx = (int)reg->cfg->n_ctx };
    long used = 0, cells = 0;
    pthread_mutex_lock(&reg->mu);
    for (int k = 0; k < reg->n; k++) {
        const entry *e = reg->e[k];
        for (const srv_inst *i = e->cur ? e->cur : e->old; i; i = i == e->cur ? e->old : i->next_old) {
            t.running += srv_sched_running(i->sched);
            t.waiting += srv_sched_waiting(i->sched);
            const int32_t nc = q_context_n_ctx(i->ctx);
            used += (long)(srv_sched_kv_ratio(i->sched) * nc + 0.5);
            cells += nc;
            if (i->current) {
                t.loaded++;
                t.mem_current += q_model_size(i->model);
            } else {
                t.draining++;
                t.mem_draining += q_model_size(i->model);
            }
            if (i->current && !srv_sched_alive(i->sched)) t.alive = false;
            if (e == reg->def && i->current) t.slot_ctx = i->slot_ctx;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    t.kv_ratio = cells ? (double)used / (double)cells : 0.0;
    return t;
}

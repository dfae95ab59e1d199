/* guard.c — who may call `quarrel serve`, how much, and from which origins: the API key
 * store as the server sees it (loaded at start, reloaded on SIGHUP and when the file's
 * mtime/size/inode change, checked at most once a second), per-key request and token
 * buckets, per-client-IP connection slots, and the CORS origin list.
 *
 * Keys: the store is swapped whole under `mu`; a reload that fails (bad syntax, loose
 * permissions, the file gone) keeps the old store and logs why, so a broken edit never
 * opens the server. last_used is updated in memory only and NOT written back to the file:
 * the server would race `quarrel keys` edits (which hold a flock) and the file's mtime
 * would trigger our own reloads; `keys list` therefore shows what the CLI last saved.
 * Limits (ratelimit.h): rpm is charged once per generation request (HTTP generation
 * endpoints and each WebSocket inference), tpm is debited with a job's generated tokens
 * when the job ends in the scheduler, however it ends (a cancelled job, or one whose
 * client left, pays for what it generated); a key name is the bucket's identity, so a
 * reload keeps the buckets. A principal remembers the public id of the secret it showed,
 * so a long session (/ws) can be re-checked after reloads and grace periods.
 * Not here: the HTTP plumbing (http.c), the WebSocket auth state (ws.c).
 * Memory: the guard owns its store, tables and a copy of the origin list. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/base.h"
#include "server/ratelimit.h"
#include "server/server.h"

enum { GUARD_MAX_ORIGINS = 32, GUARD_RL_ENTRIES = 4096 };

struct srv_guard {
    pthread_mutex_t mu;            /* guards ks, the file identity and last_check */
    keys_store     *ks;
    char            path[4096];    /* "" = no key file at all */
    struct stat     seen;          /* identity of the file ks came from (st_ino 0: none) */
    double          last_check;    /* srv_now() of the last stat */
    rl_table       *keys_rl, *ip_rl;
    int32_t         max_per_ip;
    char           *origins_buf;   /* the comma list, split in place */
    const char     *origins[GUARD_MAX_ORIGINS];
    int             n_origins;
    bool            any_origin;    /* "*" */
};

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool same_file(const struct stat *a, const struct stat *b) {
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

q_status srv_guard_new(const srv_config *cfg, srv_guard **out, q_error *err) {
    *out = NULL;
    srv_guard *g = q_xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    g->keys_rl = rl_table_new(GUARD_RL_ENTRIES);
    g->ip_rl = rl_table_new(GUARD_RL_ENTRIES);
    g->max_per_ip = (int32_t)cfg->max_conns_per_ip;
    q_status st = Q_OK;
    if (cfg->keys_file && *cfg->keys_file) {
        snprintf(g->path, sizeof g->path, "%s", cfg->keys_file);
        /* an explicit file must load; the default one may be absent (no keys: open) */
        if ((st = keys_load(g->path, !cfg->keys_explicit, &g->ks, err)) != Q_OK) goto fail;
        if (stat(g->path, &g->seen) != 0) memset(&g->seen, 0, sizeof g->seen);
    } else {
        g->ks = q_xcalloc(1, sizeof *g->ks);
    }
    g->last_check = srv_now();
    if (cfg->cors_origins && *cfg->cors_origins) {
        g->origins_buf = q_xstrdup(cfg->cors_origins);
        for (char *save = NULL, *t = strtok_r(g->origins_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            for (char *e = t + strlen(t); e > t && e[-1] == ' ';) *--e = 0;
            if (!*t) continue;
            if (!strcmp(t, "*")) { g->any_origin = true; continue; }
            if (g->n_origins == GUARD_MAX_ORIGINS) {
                st = q_fail(err, Q_ERR_LIMIT, "--cors-origins: at most %d origins", GUARD_MAX_ORIGINS);
                goto fail;
            }
            if (strncmp(t, "http://", 7) && strncmp(t, "https://", 8)) {
                st = q_fail(err, Q_ERR_INVALID_ARG, "--cors-origins: '%s' is not an origin (scheme://host[:port]) or *", t);
                goto fail;
            }
            g->origins[g->n_origins++] = t;
        }
    }
    *out = g;
    return Q_OK;
fail:
    srv_guard_free(g);
    return st;
}

void srv_guard_free(srv_guard *g) {
    if (!g) return;
    keys_free(g->ks);
    rl_table_free(g->keys_rl);
    rl_table_free(g->ip_rl);
    pthread_mutex_destroy(&g->mu);
    free(g->origins_buf);
    free(g);
}

/* Loads the file and swaps it in; with the lock held. A failure keeps the old store. */
static void guard_load(srv_guard *g, const char *why) {
    keys_store *ks = NULL;
    q_error err;
    struct stat st;
    const bool have = stat(g->path, &st) == 0;
    if (!have || keys_load(g->path, false, &ks, &err) != Q_OK) {
        if (!have) q_fail(&err, Q_ERR_IO, "%.400s: %s", g->path, strerror(errno));
        if (have) g->seen = st;   /* do not retry the same broken file every second */
        srv_log(SRV_LOG_ERROR, "keys_reload_failed", NULL,
                json_pack("{s:s, s:s, s:s}", "reason", why, "error", err.msg, "kept", "the previous keys"));
        return;
    }
    /* last_used survives a reload for the keys that are still there */
    for (int32_t i = 0; i < ks->n; i++) {
        const keys_entry *old = keys_find(g->ks, ks->e[i].name);
        if (old && old->last_used > ks->e[i].last_used) ks->e[i].last_used = old->last_used;
    }
    keys_free(g->ks);
    g->ks = ks;
    g->seen = st;
    srv_log(SRV_LOG_INFO, "keys_reloaded", NULL,
            json_pack("{s:s, s:i, s:i}", "reason", why, "keys", (int)ks->n, "live", (int)keys_count_live(ks)));
}

void srv_guard_reload(srv_guard *g, const char *why) {
    if (!g->path[0]) return;
    pthread_mutex_lock(&g->mu);
    guard_load(g, why);
    g->last_check = srv_now();
    pthread_mutex_unlock(&g->mu);
}

/* With the lock held: reloads when the file changed (at most one stat per second). */
static void guard_poll(srv_guard *g) {
    const double now = srv_now();
    if (!g->path[0] || now - g->last_check < 1.0) return;
    g->last_check = now;
    struct stat st;
    if (stat(g->path, &st) != 0) {
        if (g->seen.st_ino) guard_load(g, "file changed");   /* gone: logs, keeps the keys */
        memset(&g->seen, 0, sizeof g->seen);
        return;
    }
    if (!same_file(&st, &g->seen)) guard_load(g, "file changed");
}

bool srv_guard_keys_required(srv_guard *g) {
    pthread_mutex_lock(&g->mu);
    guard_poll(g);
    const bool on = keys_count_live(g->ks) > 0;
    pthread_mutex_unlock(&g->mu);
    return on;
}

bool srv_guard_verify(srv_guard *g, const char *key, srv_principal *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&g->mu);
    guard_poll(g);
    keys_entry *e = keys_verify(g->ks, key, (int64_t)time(NULL));
    if (e) {
        e->last_used = (int64_t)time(NULL);
        snprintf(out->name, sizeof out->name, "%s", e->name);
        out->rpm = e->rpm;
        out->tpm = e->tpm;
        out->admin = e->admin;
        memcpy(out->key_id, key + 3, KEYS_ID_LEN);   /* "qk-" + id: keys_verify checked the form */
        out->key_id[KEYS_ID_LEN] = 0;
        out->ok = true;
    }
    pthread_mutex_unlock(&g->mu);
    if (!e) srv_metrics_auth_failure();
    return e != NULL;
}

bool srv_guard_still_valid(srv_guard *g, const srv_principal *p) {
    if (!p->ok) return true;
    const int64_t now = (int64_t)time(NULL);
    bool ok = false;
    pthread_mutex_lock(&g->mu);
    guard_poll(g);
    for (int32_t i = 0; i < g->ks->n; i++) {
        const keys_entry *e = &g->ks->e[i];
        const bool cur = !strcmp(e->cur.id, p->key_id);
        const bool prev = e->has_previous && !strcmp(e->previous.id, p->key_id);
        if (!cur && !prev) continue;
        ok = !e->revoked && (!e->expires || now < e->expires) && (cur || now < e->previous_until);
        break;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* The two buckets of a key live under distinct names in one table ("r:" requests, "t:"
 * tokens), so a refusal can say which limit it was. */
int64_t srv_guard_admit(srv_guard *g, const srv_principal *p, srv_limit *which) {
    if (!p->ok) return 0;
    char name[KEYS_NAME_MAX + 4];
    const int64_t now = mono_ns();
    int64_t wait = 0;
    if (p->tpm > 0) {   /* rpm 0: only checks that the token bucket is positive */
        snprintf(name, sizeof name, "t:%s", p->name);
        if ((wait = rl_admit(g->keys_rl, name, 0, p->tpm, now))) *which = SRV_LIMIT_TPM;
    }
    if (!wait && p->rpm > 0) {
        snprintf(name, sizeof name, "r:%s", p->name);
        if ((wait = rl_admit(g->keys_rl, name, p->rpm, 0, now))) *which = SRV_LIMIT_RPM;
    }
    if (wait) srv_metrics_rate_limited(*which);
    return wait;
}

void srv_guard_job(srv_guard *g, const srv_principal *p, srv_job *j) {
    if (!p->ok || p->tpm <= 0) return;
    j->rl = g->keys_rl;
    j->tpm = p->tpm;
    snprintf(j->key_name, sizeof j->key_name, "t:%s", p->name);
}

void srv_guard_job_tokens(const srv_job *j) {
    if (j->rl && j->tpm > 0) rl_tokens(j->rl, j->key_name, j->tpm, j->n_gen, mono_ns());
}

bool srv_guard_conn_acquire(srv_guard *g, const char *ip) {
    if (g->max_per_ip <= 0) return true;
    const bool ok = rl_conn_acquire(g->ip_rl, ip, g->max_per_ip, mono_ns());
    if (!ok) srv_metrics_rate_limited(SRV_LIMIT_IP);
    return ok;
}

void srv_guard_conn_release(srv_guard *g, const char *ip) {
    if (g->max_per_ip > 0) rl_conn_release(g->ip_rl, ip);
}

srv_cors srv_guard_cors(const srv_guard *g, const char *origin) {
    if (!origin || !*origin) return SRV_CORS_NONE;
    for (int i = 0; i < g->n_origins; i++)
        if (!strcmp(g->origins[i], origin)) return SRV_CORS_EXPLICIT;
    return g->any_origin ? SRV_CORS_ANY : SRV_CORS_NONE;
}

/* cmd_keys.c — `quarrel keys`: create, list, revoke and rotate the API keys that
 * `quarrel serve` checks (the store and its file: src/server/keys.h).
 *
 *   quarrel keys create --name NAME [--rpm N] [--tpm N] [--admin] [--expires DATE]
 *   quarrel keys list [--json]
 *   quarrel keys revoke NAME
 *   quarrel keys rotate NAME [--grace DURATION]
 *   every form: [--keys-file PATH] (env QUARREL_KEYS_FILE; default keys_default_path)
 *
 * A new secret is printed once, on stdout, and never again. Edits hold an exclusive
 * flock on PATH.lock for their read-modify-write, so two concurrent edits cannot lose
 * each other's change; the running server picks the file up on SIGHUP or when it
 * changes. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/keys.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: quarrel keys <create|list|revoke|rotate> [options]\n"
            "  create --name NAME [--rpm N] [--tpm N] [--admin] [--expires DATE]\n"
            "                     new key, printed once; N per minute, 0 = unlimited;\n"
            "                     DATE is YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
            "  list [--json]      names, ids, limits, created / last used (never secrets)\n"
            "  revoke NAME        the key stops working at once\n"
            "  rotate NAME [--grace DURATION]\n"
            "                     new secret; the old one works for DURATION (default 24h;\n"
            "                     e.g. 90s, 15m, 24h, 7d, or seconds)\n"
            "  --keys-file PATH   key store (env QUARREL_KEYS_FILE; default\n"
            "                     $XDG_CONFIG_HOME/quarrel/keys.json)\n");
}

/* "90", "90s", "15m", "24h", "7d" -> seconds. */
static bool parse_duration(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return false;
    int64_t mul = 1;
    if (*end == 's') mul = 1, end++;
    else if (*end == 'm') mul = 60, end++;
    else if (*end == 'h') mul = 3600, end++;
    else if (*end == 'd') mul = 86400, end++;
    if (*end || v > INT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static bool parse_count(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return false;
    *out = v;
    return true;
}

static void print_time(int64_t t, char *buf, size_t cap) {
    if (!t) snprintf(buf, cap, "-");
    else keys_time_format(t, buf, cap);
}

static const char *entry_state(const keys_entry *e, int64_t now) {
    if (e->revoked) return "revoked";
    if (e->expires && now >= e->expires) return "expired";
    if (e->has_previous && now < e->previous_until) return "rotating";
    return "active";
}

static int list_keys(const keys_store *ks, bool as_json, int64_t now) {
    if (as_json) {
        json_t *arr = json_array();
        for (int32_t i = 0; i < ks->n; i++) {
            const keys_entry *e = &ks->e[i];
            char c[32], x[32], l[32], r[32], g[32];
            keys_time_format(e->created, c, sizeof c);
            keys_time_format(e->expires, x, sizeof x);
            keys_time_format(e->last_used, l, sizeof l);
            keys_time_format(e->revoked, r, sizeof r);
            keys_time_format(e->previous_until, g, sizeof g);
            char id[16];
            snprintf(id, sizeof id, "qk-%s", e->cur.id);
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:I,s:I,s:b,s:s,s:s?,s:s?,s:s?,s:s?,s:s}", "name", e->name, "id", id, "rpm",
                               (json_int_t)e->rpm, "tpm", (json_int_t)e->tpm, "admin", e->admin, "created", c,
                               "expires", e->expires ? x : NULL, "last_used", e->last_used ? l : NULL, "revoked",
                               e->revoked ? r : NULL, "previous_until",
                               e->has_previous && now < e->previous_until ? g : NULL, "state", entry_state(e, now)));
        }
        char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(arr);
        return 0;
    }
    printf("%-20s %-12s %8s %9s %-5s %-20s %-20s %-20s %s\n", "NAME", "ID", "RPM", "TPM", "ADMIN", "CREATED",
           "EXPIRES", "LAST USED", "STATE");
    for (int32_t i = 0; i < ks->n; i++) {
        const keys_entry *e = &ks->e[i];
        char c[32], x[32], l[32], rpm[24], tpm[24];
        print_time(e->created, c, sizeof c);
        print_time(e->expires, x, sizeof x);
        print_time(e->last_used, l, sizeof l);
        snprintf(rpm, sizeof rpm, e->rpm ? "%lld" : "-", (long long)e->rpm);
        snprintf(tpm, sizeof tpm, e->tpm ? "%lld" : "-", (long long)e->tpm);
        printf("%-20s qk-%-9s %8s %9s %-5s %-20s %-20s %-20s %s\n", e->name, e->cur.id, rpm, tpm,
               e->admin ? "yes" : "no", c, x, l, entry_state(e, now));
    }
    if (!ks->n) printf("(no keys: the server accepts every request)\n");
    return 0;
}

int cmd_keys(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1], *name = NULL, *path = getenv("QUARREL_KEYS_FILE");
    int64_t rpm = 0, tpm = 0, expires = 0, grace = 24 * 3600;
    bool admin = false, as_json = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--name") && v) name = v, i++;
        else if (!strcmp(a, "--rpm") && v) ok = parse_count(v, &rpm), i++;
        else if (!strcmp(a, "--tpm") && v) ok = parse_count(v, &tpm), i++;
        else if (!strcmp(a, "--expires") && v) ok = keys_time_parse(v, &expires), i++;
        else if (!strcmp(a, "--grace") && v) ok = parse_duration(v, &grace), i++;
        else if (!strcmp(a, "--keys-file") && v) path = v, i++;
        else if (!strcmp(a, "--admin")) admin = true;
        else if (!strcmp(a, "--json")) as_json = true;
        else if (a[0] != '-' && !name) name = a;
        else {
            cli_errorf("keys", "unexpected argument '%s' (see quarrel keys --help)", a);
            return 2;
        }
        if (!ok) {
            cli_errorf("keys", "bad value '%s' for %s", v, a);
            return 2;
        }
    }
    const bool edits = strcmp(verb, "list") != 0;
    if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "revoke") && strcmp(verb, "rotate")) {
        cli_errorf("keys", "unknown action '%s': create, list, revoke or rotate", verb);
        return 2;
    }
    if (edits && !name) {
        cli_errorf("keys", "%s needs a key name", verb);
        return 2;
    }
    char defpath[4096];
    q_error err;
    if (!path || !*path) {
        if (keys_default_path(defpath, sizeof defpath, &err) != Q_OK) {
            cli_errorf("keys", "%s", err.msg);
            return 1;
        }
        path = defpath;
    }
    int lock_fd = -1;
    if (edits) {   /* serialize read-modify-write against other `quarrel keys` runs */
        char lock[4200], dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {   /* the lock file lives next to the store: its directory must exist */
            *slash = 0;
            if (*dir) mkdir(dir, 0700);
        }
        snprintf(lock, sizeof lock, "%s.lock", path);
        lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
            cli_errorf("keys", "%s: %s", lock, strerror(errno));
            if (lock_fd >= 0) close(lock_fd);
            return 1;
        }
    }
    keys_store *ks = NULL;
    int rc = 1;
    const int64_t now = (int64_t)time(NULL);
    char secret[KEYS_SECRET_LEN] = { 0 };
    q_status st = keys_load(path, true, &ks, &err);
    if (st == Q_OK) {
        if (!strcmp(verb, "list")) {
            rc = list_keys(ks, as_json, now);
            goto done;
        }
        if (!strcmp(verb, "create")) st = keys_create(ks, name, rpm, tpm, admin, expires, now, secret, &err);
        else if (!strcmp(verb, "revoke")) st = keys_revoke(ks, name, now, &err);
        else st = keys_rotate(ks, name, grace, now, secret, &err);
        if (st == Q_OK) st = keys_save(ks, path, &err);
    }
    if (st != Q_OK) {
        cli_errorf("keys", "%s", err.msg);
        goto done;
    }
    rc = 0;
    if (*secret) {
        printf("%s\n", secret);
        fprintf(stderr, "quarrel keys: %s key '%s' saved to %s; the secret above is shown only now%s\n",
                !strcmp(verb, "create") ? "created" : "rotated", name, path,
                !strcmp(verb, "rotate") ? " (the old one keeps working for the grace period)" : "");
    } else {
        fprintf(stderr, "quarrel keys: revoked '%s'\n", name);
    }
done:
    memset(secret, 0, sizeof secret);
    keys_free(ks);
    if (lock_fd >= 0) close(lock_fd);
    return rc;
}

/* keys.c — the API key store of keys.h.
 *
 * File format (JSON, one object):
 *   { "format": "quarrel-keys", "version": 1,
 *     "keys": [ { "name": "ci", "id": "1a2b3c4d", "salt": HEX32, "hash": HEX64,
 *                 "rpm": 60, "tpm": 0, "admin": false,
 *                 "created": ISO, "expires": ISO|null, "revoked": ISO|null,
 *                 "last_used": ISO|null,
 *                 "previous": null | { "id", "salt", "hash", "until": ISO } } ] }
 * Unknown fields are ignored (newer writers); missing required ones are an error. */
#include "server/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"

static void sodium_ready(void) { Q_ASSERT(sodium_init() >= 0); }

q_status keys_default_path(char *buf, size_t cap, q_error *err) {
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(buf, cap, "%s/quarrel/keys.json", xdg);
    else if (home && *home) n = snprintf(buf, cap, "%s/.config/quarrel/keys.json", home);
    else return q_fail(err, Q_ERR_INVALID_ARG, "no XDG_CONFIG_HOME or HOME: give --keys-file");
    if (n < 0 || (size_t)n >= cap) return q_fail(err, Q_ERR_LIMIT, "keys file path too long");
    return Q_OK;
}

void keys_time_format(int64_t t, char *buf, size_t cap) {
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool keys_time_parse(const char *s, int64_t *t) {
    struct tm tm = { 0 };
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%d", &tm);
        if (!end || *end) return false;
    }
    *t = (int64_t)timegm(&tm);
    return true;
}

static bool name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= KEYS_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

keys_entry *keys_find(keys_store *ks, const char *name) {
    for (int32_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->e[i].name, name)) return &ks->e[i];
    return NULL;
}

int32_t keys_count_live(const keys_store *ks) {
    int32_t n = 0;
    for (int32_t i = 0; i < ks->n; i++) n += ks->e[i].revoked == 0;
    return n;
}

void keys_free(keys_store *ks) {
    if (!ks) return;
    free(ks->e);
    free(ks);
}

/* ---- hashing ---- */

static void hash_key(const uint8_t salt[KEYS_SALT_BYTES], const char *key, uint8_t out[KEYS_HASH_BYTES]) {
    crypto_generichash(out, KEYS_HASH_BYTES, (const unsigned char *)key, strlen(key), salt, KEYS_SALT_BYTES);
}

/* A fresh secret "qk-<id>-<43 base64url>" and its hash record. */
static void new_secret(char *secret, keys_hash *h) {
    sodium_ready();
    uint8_t idb[KEYS_ID_LEN / 2], raw[32];
    randombytes_buf(idb, sizeof idb);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(h->id, sizeof h->id, idb, sizeof idb);
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(secret, KEYS_SECRET_LEN, "qk-%s-%s", h->id, b64);
    randombytes_buf(h->salt, sizeof h->salt);
    hash_key(h->salt, secret, h->hash);
    sodium_memzero(raw, sizeof raw);
}

/* The id inside a presented key, or false when it does not have the key's shape. */
static bool key_id(const char *k, char id[KEYS_ID_LEN + 1]) {
    if (strncmp(k, "qk-", 3) || strlen(k) != 3 + KEYS_ID_LEN + 1 + 43 || k[3 + KEYS_ID_LEN] != '-') return false;
    for (int i = 0; i < KEYS_ID_LEN; i++) {
        const char c = k[3 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        id[i] = c;
    }
    id[KEYS_ID_LEN] = 0;
    return true;
}

static bool hash_matches(const keys_hash *h, const char *key) {
    uint8_t got[KEYS_HASH_BYTES];
    hash_key(h->salt, key, got);
    return sodium_memcmp(got, h->hash, KEYS_HASH_BYTES) == 0;
}

keys_entry *keys_verify(keys_store *ks, const char *presented, int64_t now) {
    char id[KEYS_ID_LEN + 1];
    if (!presented || !key_id(presented, id)) return NULL;
    sodium_ready();
    for (int32_t i = 0; i < ks->n; i++) {
        keys_entry *e = &ks->e[i];
        const bool cur = !strcmp(e->cur.id, id);
        const bool prev = e->has_previous && !strcmp(e->previous.id, id);
        if (!cur && !prev) continue;
        if (e->revoked || (e->expires && now >= e->expires)) return NULL;
        if (cur) return hash_matches(&e->cur, presented) ? e : NULL;
        return now < e->previous_until && hash_matches(&e->previous, presented) ? e : NULL;
    }
    return NULL;
}

/* ---- edits ---- */

q_status keys_create(keys_store *ks, const char *name, int64_t rpm, int64_t tpm, bool admin, int64_t expires,
                     int64_t now, char *secret, q_error *err) {
    if (!name_ok(name))
        return q_fail(err, Q_ERR_INVALID_ARG, "key name '%s': use 1-63 of A-Z a-z 0-9 . _ -", name);
    if (keys_find(ks, name)) return q_fail(err, Q_ERR_INVALID_ARG, "a key named '%s' exists (revoke or rotate it)", name);
    if (rpm < 0 || tpm < 0) return q_fail(err, Q_ERR_INVALID_ARG, "--rpm and --tpm must be >= 0 (0 = unlimited)");
    if (expires && expires <= now) return q_fail(err, Q_ERR_INVALID_ARG, "--expires is in the past");
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? 2 * ks->cap : 8;
        ks->e = q_xrealloc(ks->e, (size_t)ks->cap * sizeof *ks->e);
    }
    keys_entry *e = &ks->e[ks->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->rpm = rpm;
    e->tpm = tpm;
    e->admin = admin;
    e->created = now;
    e->expires = expires;
    new_secret(secret, &e->cur);
    return Q_OK;
}

q_status keys_revoke(keys_store *ks, const char *name, int64_t now, q_error *err) {
    keys_entry *e = keys_find(ks, name);
    if (!e) return q_fail(err, Q_ERR_INVALID_ARG, "no key named '%s'", name);
    if (e->revoked) return q_fail(err, Q_ERR_INVALID_ARG, "key '%s' is already revoked", name);
    e->revoked = now;
    return Q_OK;
}

q_status keys_rotate(keys_store *ks, const char *name, int64_t grace_s, int64_t now, char *secret, q_error *err) {
    keys_entry *e = keys_find(ks, name);
    if (!e) return q_fail(err, Q_ERR_INVALID_ARG, "no key named '%s'", name);
    if (e->revoked) return q_fail(err, Q_ERR_INVALID_ARG, "key '%s' is revoked; create a new one", name);
    if (grace_s < 0) return q_fail(err, Q_ERR_INVALID_ARG, "--grace must be >= 0");
    e->previous = e->cur;
    e->has_previous = true;
    e->previous_until = now + grace_s;
    new_secret(secret, &e->cur);
    return Q_OK;
}

/* ---- file I/O ---- */

static json_t *time_or_null(int64_t t) {
    if (!t) return json_null();
    char b[32];
    keys_time_format(t, b, sizeof b);
    return json_string(b);
}

static json_t *hash_json(const keys_hash *h) {
    char salt[2 * KEYS_SALT_BYTES + 1], hash[2 * KEYS_HASH_BYTES + 1];
    sodium_bin2hex(salt, sizeof salt, h->salt, sizeof h->salt);
    sodium_bin2hex(hash, sizeof hash, h->hash, sizeof h->hash);
    return json_pack("{s:s,s:s,s:s}", "id", h->id, "salt", salt, "hash", hash);
}

q_status keys_save(const keys_store *ks, const char *path, q_error *err) {
    json_t *arr = json_array();
    for (int32_t i = 0; i < ks->n; i++) {
        const keys_entry *e = &ks->e[i];
        json_t *o = hash_json(&e->cur);
        json_object_set_new(o, "name", json_string(e->name));
        json_object_set_new(o, "rpm", json_integer(e->rpm));
        json_object_set_new(o, "tpm", json_integer(e->tpm));
        json_object_set_new(o, "admin", json_boolean(e->admin));
        json_object_set_new(o, "created", time_or_null(e->created));
        json_object_set_new(o, "expires", time_or_null(e->expires));
        json_object_set_new(o, "revoked", time_or_null(e->revoked));
        json_object_set_new(o, "last_used", time_or_null(e->last_used));
        json_t *p = json_null();
        if (e->has_previous) {
            p = hash_json(&e->previous);
            json_object_set_new(p, "until", time_or_null(e->previous_until));
        }
        json_object_set_new(o, "previous", p);
        json_array_append_new(arr, o);
    }
    json_t *root = json_pack("{s:s,s:i,s:o}", "format", "quarrel-keys", "version", 1, "keys", arr);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    Q_ASSERT(text);

    char dir[4096], tmp[4200];
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        free(text);
        return q_fail(err, Q_ERR_IO, "%s: cannot create directory: %s", d, strerror(errno));
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    q_status st = Q_OK;
    if (fd < 0) {
        st = q_fail(err, Q_ERR_IO, "%s: %s", tmp, strerror(errno));
    } else {
        const size_t len = strlen(text);
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            off += (size_t)w;
        }
        if (off != len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
            st = q_fail(err, Q_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        if (st == Q_OK && rename(tmp, path) != 0) st = q_fail(err, Q_ERR_IO, "%s: %s", path, strerror(errno));
        if (st != Q_OK) unlink(tmp);
        int dfd = st == Q_OK ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {   /* make the rename itself durable */
            fsync(dfd);
            close(dfd);
        }
    }
    sodium_memzero(text, strlen(text));
    free(text);
    return st;
}

static bool hex_field(json_t *o, const char *k, uint8_t *out, size_t n) {
    const char *s = json_string_value(json_object_get(o, k));
    size_t got = 0;
    return s && strlen(s) == 2 * n && sodium_hex2bin(out, n, s, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

static bool id_field(json_t *o, char id[KEYS_ID_LEN + 1]) {
    const char *s = json_string_value(json_object_get(o, "id"));
    if (!s || strlen(s) != KEYS_ID_LEN) return false;
    memcpy(id, s, KEYS_ID_LEN + 1);
    return true;
}

/* A time field: absent or null = 0; else it must parse. */
static bool time_field(json_t *o, const char *k, int64_t *t) {
    json_t *v = json_object_get(o, k);
    *t = 0;
    if (!v || json_is_null(v)) return true;
    return json_is_string(v) && keys_time_parse(json_string_value(v), t);
}

static bool limit_field(json_t *o, const char *k, int64_t *v) {
    json_t *j = json_object_get(o, k);
    *v = 0;
    if (!j || json_is_null(j)) return true;
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *v = json_integer_value(j);
    return true;
}

q_status keys_load(const char *path, bool missing_ok, keys_store **out, q_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && missing_ok) {
            *out = q_xcalloc(1, sizeof **out);
            return Q_OK;
        }
        return q_fail(err, Q_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return q_fail(err, Q_ERR_FORMAT, "%s: not a regular file", path);
    if (st.st_mode & 077)
        return q_fail(err, Q_ERR_FORMAT, "%s: mode %03o lets others read key hashes; run chmod 600 %s",
                      path, (unsigned)(st.st_mode & 0777), path);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) return q_fail(err, Q_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    q_status s = Q_OK;
    keys_store *ks = q_xcalloc(1, sizeof *ks);
    json_t *arr = json_object_get(root, "keys");
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!fmt || strcmp(fmt, "quarrel-keys") || json_integer_value(json_object_get(root, "version")) != 1 ||
        !json_is_array(arr)) {
        s = q_fail(err, Q_ERR_FORMAT, "%s: not a quarrel keys file (format \"quarrel-keys\", version 1, keys [])", path);
        goto done;
    }
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        keys_entry e = { 0 };
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *adm = json_object_get(o, "admin"), *prev = json_object_get(o, "previous");
        bool ok = json_is_object(o) && name && name_ok(name) && id_field(o, e.cur.id) &&
                  hex_field(o, "salt", e.cur.salt, KEYS_SALT_BYTES) && hex_field(o, "hash", e.cur.hash, KEYS_HASH_BYTES) &&
                  limit_field(o, "rpm", &e.rpm) && limit_field(o, "tpm", &e.tpm) &&
                  (!adm || json_is_boolean(adm)) && time_field(o, "created", &e.created) &&
                  time_field(o, "expires", &e.expires) && time_field(o, "revoked", &e.revoked) &&
                  time_field(o, "last_used", &e.last_used);
        if (ok && prev && !json_is_null(prev)) {
            e.has_previous = true;
            ok = json_is_object(prev) && id_field(prev, e.previous.id) &&
                 hex_field(prev, "salt", e.previous.salt, KEYS_SALT_BYTES) &&
                 hex_field(prev, "hash", e.previous.hash, KEYS_HASH_BYTES) && time_field(prev, "until", &e.previous_until);
        }
        if (!ok || keys_find(ks, name)) {
            s = q_fail(err, Q_ERR_FORMAT, "%s: key #%zu%s%s: %s", path, i, name ? " " : "", name ? name : "",
                       ok ? "duplicate name" : "missing or malformed field");
            goto done;
        }
        snprintf(e.name, sizeof e.name, "%s", name);
        e.admin = adm && json_is_true(adm);
        if (ks->n == ks->cap) {
            ks->cap = ks->cap ? 2 * ks->cap : 8;
            ks->e = q_xrealloc(ks->e, (size_t)ks->cap * sizeof *ks->e);
        }
        ks->e[ks->n++] = e;
    }
done:
    json_decref(root);
    if (s != Q_OK) {
        keys_free(ks);
        return s;
    }
    *out = ks;
    return Q_OK;
}

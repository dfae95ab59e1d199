/* keys.h — the API key store: named keys with limits, kept as salted hashes in a JSON
 * file, created / revoked / rotated by `quarrel keys` and checked by `quarrel serve`.
 *
 * A key is "qk-" + 8 hex digits (its public id, shown by `keys list`) + "-" + 43
 * base64url characters (32 random bytes). The file stores per key a random 16-byte salt
 * and BLAKE2b-256(key = salt, message = the whole key string); never the key. Keys are
 * high-entropy, so a fast keyed hash is enough (a password KDF buys nothing here).
 * Verification finds the entry by id and compares hashes in constant time.
 *
 * Rotation gives an entry a new secret and keeps the old hash as `previous` until
 * `previous_until`, so clients can switch within a grace period.
 *
 * File rules: mode 0600 (anything readable by group/other is refused), written
 * atomically (temp file in the same directory, fsync, rename, fsync of the directory).
 * The store owns its entries; nothing here is thread-safe: the server swaps whole
 * stores under its own lock (reload on SIGHUP or file change). */
#ifndef QUARREL_SERVER_KEYS_H
#define QUARREL_SERVER_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quarrel/status.h"

enum {
    KEYS_NAME_MAX = 64,       /* [A-Za-z0-9._-], 1..63 characters */
    KEYS_ID_LEN = 8,          /* hex digits of the public id */
    KEYS_SECRET_LEN = 56,     /* "qk-" + 8 + "-" + 43 + NUL, rounded */
    KEYS_SALT_BYTES = 16,
    KEYS_HASH_BYTES = 32,
};

typedef struct keys_hash {
    char    id[KEYS_ID_LEN + 1];
    uint8_t salt[KEYS_SALT_BYTES];
    uint8_t hash[KEYS_HASH_BYTES];
} keys_hash;

typedef struct keys_entry {
    char      name[KEYS_NAME_MAX];
    keys_hash cur;
    bool      has_previous;
    keys_hash previous;         /* the secret before the last rotation */
    int64_t   previous_until;   /* unix seconds; the previous secret works before it */
    int64_t   rpm, tpm;         /* requests / generated tokens per minute; 0 = unlimited */
    bool      admin;
    int64_t   created;          /* unix seconds */
    int64_t   expires;          /* 0 = never */
    int64_t   revoked;          /* 0 = live; else when it was revoked */
    int64_t   last_used;        /* 0 = never */
} keys_entry;

typedef struct keys_store {
    keys_entry *e;
    int32_t     n, cap;
} keys_store;

/* Default file: $XDG_CONFIG_HOME/quarrel/keys.json, else $HOME/.config/quarrel/keys.json. */
q_status keys_default_path(char *buf, size_t cap, q_error *err);

/* Loads path into a new store. A missing file is an empty store when missing_ok. A file
 * with group/other permission bits, bad JSON or bad fields is refused with a message. */
q_status keys_load(const char *path, bool missing_ok, keys_store **out, q_error *err);
/* Writes atomically with mode 0600, creating the directory (0700) if needed. */
q_status keys_save(const keys_store *ks, const char *path, q_error *err);
void     keys_free(keys_store *ks);

/* Adds a key; its secret (shown once) goes to secret[KEYS_SECRET_LEN]. */
q_status keys_create(keys_store *ks, const char *name, int64_t rpm, int64_t tpm, bool admin,
                     int64_t expires, int64_t now, char *secret, q_error *err);
q_status keys_revoke(keys_store *ks, const char *name, int64_t now, q_error *err);
/* New secret for name; the current one keeps working until now + grace_s. */
q_status keys_rotate(keys_store *ks, const char *name, int64_t grace_s, int64_t now, char *secret,
                     q_error *err);

/* The entry a presented key authenticates at time now, or NULL (unknown, malformed,
 * revoked, expired, or a previous secret past its grace). Constant-time in the secret. */
keys_entry *keys_verify(keys_store *ks, const char *presented, int64_t now);

/* The live (not revoked) entries: whether the server must ask for keys at all. */
int32_t keys_count_live(const keys_store *ks);
keys_entry *keys_find(keys_store *ks, const char *name);

/* ISO-8601 UTC ("2026-11-27T11:30:00Z") <-> unix seconds; parse also takes "YYYY-MM-DD". */
void keys_time_format(int64_t t, char *buf, size_t cap);
bool keys_time_parse(const char *s, int64_t *t);

#endif

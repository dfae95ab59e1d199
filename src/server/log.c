/* log.c — the server's event log: one line per event on stderr, either JSON
 * ({"ts","level","event","request_id",...fields}) or text ("ts LEVEL event k=v ...").
 * Redaction is enforced here, whatever the caller passes: credential fields (by name,
 * case-insensitive: authorization, api_key, api-key, x-api-key, password, secret, cookie)
 * are always "[redacted]"; user text (prompt, messages, text, content, at any depth) is
 * "[redacted N bytes]" unless log_prompts. Not a general logging library.
 * Memory: the fields object passed to srv_log is consumed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/server.h"

static srv_log_format g_format = SRV_LOG_TEXT;
static srv_log_level g_min = SRV_LOG_INFO;
static bool g_log_prompts;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;   /* one line at a time */

static const char *const level_names[SRV_LOG_LEVEL_COUNT] = {
    [SRV_LOG_DEBUG] = "debug", [SRV_LOG_INFO] = "info", [SRV_LOG_WARN] = "warn", [SRV_LOG_ERROR] = "error",
};
static const char *const format_names[SRV_LOG_FORMAT_COUNT] = {
    [SRV_LOG_TEXT] = "text", [SRV_LOG_JSON] = "json",
};

void srv_log_setup(srv_log_format f, srv_log_level min, bool log_prompts) {
    g_format = f;
    g_min = min;
    g_log_prompts = log_prompts;
}

static const char *const credential_keys[] = { "authorization", "api_key", "api-key", "apikey", "x-api-key",
                                               "password", "secret", "cookie" };
static const char *const user_text_keys[] = { "prompt", "messages", "text", "content" };

static bool key_in(const char *k, const char *const *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(k, set[i])) return true;
    return false;
}

/* Bytes of text a value holds (strings, recursively), for the redaction note. */
static size_t text_bytes(const json_t *v) {
    size_t n = 0, i;
    const char *k;
    json_t *x;
    if (json_is_string(v)) return json_string_length(v);
    if (json_is_array(v)) json_array_foreach(v, i, x) n += text_bytes(x);
    if (json_is_object(v)) json_object_foreach((json_t *)v, k, x) n += text_bytes(x);
    return n;
}

/* Replaces credential and (unless log_prompts) user-text values in o, at any depth. */
static void redact(json_t *o) {
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(o)) {
        json_array_foreach(o, i, v) redact(v);
        return;
    }
    if (!json_is_object(o)) return;
    json_object_foreach(o, k, v) {
        if (key_in(k, credential_keys, sizeof credential_keys / sizeof *credential_keys)) {
            json_object_set_new(o, k, json_string("[redacted]"));
        } else if (!g_log_prompts && key_in(k, user_text_keys, sizeof user_text_keys / sizeof *user_text_keys)) {
            char note[48];
            snprintf(note, sizeof note, "[redacted %zu bytes]", text_bytes(v));
            json_object_set_new(o, k, json_string(note));
        } else {
            redact(v);
        }
    }
}

bool srv_log_format_parse(const char *s, srv_log_format *out) {
    for (int i = 0; i < SRV_LOG_FORMAT_COUNT; i++)
        if (!strcmp(s, format_names[i])) { *out = (srv_log_format)i; return true; }
    return false;
}

bool srv_log_level_parse(const char *s, srv_log_level *out) {
    for (int i = 0; i < SRV_LOG_LEVEL_COUNT; i++)
        if (!strcmp(s, level_names[i])) { *out = (srv_log_level)i; return true; }
    return false;
}

void srv_log(srv_log_level lvl, const char *event, const char *rid, json_t *fields) {
    if (lvl < g_min) { json_decref(fields); return; }
    redact(fields);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[96];   /* room for any int fields, so -O3 sees no truncation */
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    char *line = NULL;
    if (g_format == SRV_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "ts", stamp, "level", level_names[lvl], "event", event);
        if (rid) json_object_set_new(o, "request_id", json_string(rid));
        if (fields) json_object_update(o, fields);
        line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    } else {
        size_t cap = 256, n = 0;
        line = malloc(cap);
        n += (size_t)snprintf(line, cap, "%s %s %s", stamp, level_names[lvl], event);
        if (rid) {
            line = realloc(line, cap += strlen(rid) + 8);
            n += (size_t)snprintf(line + n, cap - n, " id=%s", rid);
        }
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v) {
            char *vs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            cap += strlen(k) + (vs ? strlen(vs) : 0) + 4;
            line = realloc(line, cap);
            n += (size_t)snprintf(line + n, cap - n, " %s=%s", k, vs ? vs : "?");
            free(vs);
        }
    }
    json_decref(fields);
    pthread_mutex_lock(&g_mu);
    fprintf(stderr, "%s\n", line ? line : event);
    fflush(stderr);
    pthread_mutex_unlock(&g_mu);
    free(line);
}

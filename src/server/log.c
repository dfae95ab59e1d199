/* log.c — the server's event log: one line per event on stderr, either JSON
 * ({"ts","level","event","request_id",...fields}) or text ("ts LEVEL event k=v ...").
 * Callers never pass prompts or generated text. Not a general logging library.
 * Memory: the fields object passed to srv_log is consumed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

static srv_log_format g_format = SRV_LOG_TEXT;
static srv_log_level g_min = SRV_LOG_INFO;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;   /* one line at a time */

static const char *const level_names[SRV_LOG_LEVEL_COUNT] = {
    [SRV_LOG_DEBUG] = "debug", [SRV_LOG_INFO] = "info", [SRV_LOG_WARN] = "warn", [SRV_LOG_ERROR] = "error",
};
static const char *const format_names[SRV_LOG_FORMAT_COUNT] = {
    [SRV_LOG_TEXT] = "text", [SRV_LOG_JSON] = "json",
};

void srv_log_setup(srv_log_format f, srv_log_level min) {
    g_format = f;
    g_min = min;
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
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

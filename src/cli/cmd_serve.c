/* cmd_serve.c — `quarrel serve`: an HTTP server (src/server/) for one model (-m) or a
 * directory of models (--models-dir, each *.gguf by its name without .gguf; both may be
 * combined).
 *
 *   quarrel serve -m MODEL | --models-dir DIR [--preload] [--max-loaded N] [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]
 *                 [-t THREADS] [--queue-size Q] [--timeout SECONDS] [--max-body BYTES]
 *                 [--shutdown-timeout S] [--log-format json|text] [--log-level debug|info|warn|error]
 *                 [--log-prompts] [--keys-file PATH] [--metrics-auth 0|1] [--max-conns N]
 *                 [--max-conns-per-ip N] [--cors-origins LIST] [--tls-cert FILE --tls-key FILE]
 *                 [--prefix-cache 0|1] [--prefix-cache-tokens N]
 *
 * Every option can also come from the environment (QUARREL_MODEL, QUARREL_MODELS_DIR,
 * QUARREL_PRELOAD=1|0, QUARREL_MAX_LOADED, QUARREL_HOST,
 * QUARREL_PORT, QUARREL_PARALLEL, QUARREL_CTX, QUARREL_THREADS, QUARREL_QUEUE_SIZE,
 * QUARREL_TIMEOUT, QUARREL_MAX_BODY, QUARREL_SHUTDOWN_TIMEOUT, QUARREL_LOG_FORMAT, QUARREL_LOG_LEVEL,
 * QUARREL_LOG_PROMPTS=1|0, QUARREL_KEYS_FILE, QUARREL_METRICS_AUTH, QUARREL_MAX_CONNS,
 * QUARREL_MAX_CONNS_PER_IP, QUARREL_CORS_ORIGINS, QUARREL_TLS_CERT, QUARREL_TLS_KEY,
 * QUARREL_PREFIX_CACHE, QUARREL_PREFIX_CACHE_TOKENS); flags win.
 * QUARREL_TEST_LOAD_DELAY_MS (a test hook, no flag) makes every model load sleep first.
 * Keys: without --keys-file the default store (keys_default_path) is used if it exists
 * (else the server is open); a given file must load or the server does not start.
 * Once listening it logs "listening on http[s]://HOST:PORT" (the real port with --port 0).
 * SIGHUP: reload the key file and rescan --models-dir. SIGTERM/SIGINT: stop accepting, finish or cancel in-flight
 * work within --shutdown-timeout, exit 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/gen_common.h"
#include "server/server.h"

#define CMD "serve"

typedef enum opt_kind { OPT_STR, OPT_INT, OPT_BOOL } opt_kind;   /* OPT_BOOL: a flag without a value */

typedef struct serve_opts {
    srv_config  cfg;
    const char *log_format, *log_level;
    bool        log_prompts;
} serve_opts;

typedef struct opt {
    const char *flag, *alt, *env;
    opt_kind    kind;
    size_t      off;       /* into serve_opts */
    long        lo, hi;
    const char *help;
} opt;

#define OFF(f) offsetof(serve_opts, f)
static const opt opts[] = {
    { "-m", "--model", "QUARREL_MODEL", OPT_STR, OFF(cfg.model_path), 0, 0, "GGUF model file (loaded at start)" },
    { "--models-dir", NULL, "QUARREL_MODELS_DIR", OPT_STR, OFF(cfg.models_dir), 0, 0, "serve every *.gguf here, by name (file name without .gguf)" },
    { "--preload", NULL, "QUARREL_PRELOAD", OPT_BOOL, OFF(cfg.preload), 0, 0, "load --models-dir's models at start (else on first use)" },
    { "--max-loaded", NULL, "QUARREL_MAX_LOADED", OPT_INT, OFF(cfg.max_loaded), 0, 1 << 20, "most models loaded at once; the least recently used goes (0 = no limit)" },
    { "--host", NULL, "QUARREL_HOST", OPT_STR, OFF(cfg.host), 0, 0, "IPv4 address to bind (127.0.0.1)" },
    { "--port", NULL, "QUARREL_PORT", OPT_INT, OFF(cfg.port), 0, 65535, "TCP port (8080; 0 = any free one)" },
    { "--parallel", "-np", "QUARREL_PARALLEL", OPT_INT, OFF(cfg.parallel), 1, 63, "sequences decoded together (4)" },
    { "-c", "--ctx", "QUARREL_CTX", OPT_INT, OFF(cfg.n_ctx), 0, 1 << 20, "context per sequence (min(training, 4096))" },
    { "-t", "--threads", "QUARREL_THREADS", OPT_INT, OFF(cfg.n_threads), 1, 1024, "engine threads (physical cores)" },
    { "--queue-size", NULL, "QUARREL_QUEUE_SIZE", OPT_INT, OFF(cfg.queue_size), 0, 1 << 20, "waiting requests before 503 (64)" },
    { "--timeout", NULL, "QUARREL_TIMEOUT", OPT_INT, OFF(cfg.timeout_s), 1, 1 << 30, "most seconds per request (300)" },
    { "--max-body", NULL, "QUARREL_MAX_BODY", OPT_INT, OFF(cfg.max_body), 1024, 1L << 30, "largest request body in bytes (1 MiB)" },
    { "--shutdown-timeout", NULL, "QUARREL_SHUTDOWN_TIMEOUT", OPT_INT, OFF(cfg.shutdown_s), 0, 3600, "seconds in-flight work may finish on SIGTERM (5)" },
    { "--prefix-cache", NULL, "QUARREL_PREFIX_CACHE", OPT_INT, OFF(cfg.prefix_cache), 0, 1, "reuse KV of shared prompt prefixes (1; 0 = off)" },
    { "--prefix-cache-tokens", NULL, "QUARREL_PREFIX_CACHE_TOKENS", OPT_INT, OFF(cfg.prefix_cache_tokens), 0, 1L << 30, "most tokens the prefix cache keeps (0 = half the KV cache, at least -c)" },
    { "--log-format", NULL, "QUARREL_LOG_FORMAT", OPT_STR, OFF(log_format), 0, 0, "json or text (text)" },
    { "--log-level", NULL, "QUARREL_LOG_LEVEL", OPT_STR, OFF(log_level), 0, 0, "debug, info, warn or error (info)" },
    { "--log-prompts", NULL, "QUARREL_LOG_PROMPTS", OPT_BOOL, OFF(log_prompts), 0, 0, "log prompts and generated text (redacted by default; credentials always)" },
    { "--keys-file", NULL, "QUARREL_KEYS_FILE", OPT_STR, OFF(cfg.keys_file), 0, 0, "API key store (default $XDG_CONFIG_HOME/quarrel/keys.json; no live keys = open)" },
    { "--metrics-auth", NULL, "QUARREL_METRICS_AUTH", OPT_INT, OFF(cfg.metrics_auth), 0, 1, "1: /metrics needs an API key too (0)" },
    { "--max-conns", NULL, "QUARREL_MAX_CONNS", OPT_INT, OFF(cfg.max_conns), 1, 65536, "concurrent connections in all (256)" },
    { "--max-conns-per-ip", NULL, "QUARREL_MAX_CONNS_PER_IP", OPT_INT, OFF(cfg.max_conns_per_ip), 0, 65536, "concurrent connections per client IP (0 = unlimited)" },
    { "--cors-origins", NULL, "QUARREL_CORS_ORIGINS", OPT_STR, OFF(cfg.cors_origins), 0, 0, "origins allowed cross-origin: comma list or * (none: same-origin only)" },
    { "--tls-cert", NULL, "QUARREL_TLS_CERT", OPT_STR, OFF(cfg.tls_cert), 0, 0, "PEM certificate: serve HTTPS/WSS (with --tls-key)" },
    { "--tls-key", NULL, "QUARREL_TLS_KEY", OPT_STR, OFF(cfg.tls_key), 0, 0, "PEM private key of --tls-cert" },
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

static void serve_usage(FILE *f) {
    fprintf(f, "usage: quarrel serve -m MODEL | --models-dir DIR [options]   (each option also from its env var)\n");
    for (int i = 0; i < N_OPTS; i++)
        fprintf(f, "  %-12s %-5s %-20s %s\n", opts[i].flag, opts[i].alt ? opts[i].alt : "", opts[i].env, opts[i].help);
}

static bool opt_set(serve_opts *o, const opt *d, const char *name, const char *v) {
    char *p = (char *)o + d->off;
    if (d->kind == OPT_STR) { *(const char **)p = v; return true; }
    if (d->kind == OPT_BOOL) {
        static const char *const yes[] = { "1", "true", "yes", "on" }, *const no[] = { "0", "false", "no", "off" };
        for (int i = 0; i < 4; i++) {
            if (!strcmp(v, yes[i])) { *(bool *)p = true; return true; }
            if (!strcmp(v, no[i])) { *(bool *)p = false; return true; }
        }
        cli_errorf(CMD, "%s must be 1/true/yes/on or 0/false/no/off (got '%s')", name, v);
        return false;
    }
    return cli_int_arg(CMD, name, v, d->lo, d->hi, (long *)p);
}

static int serve_parse(int argc, char **argv, serve_opts *o) {
    memset(o, 0, sizeof *o);
    o->cfg = (srv_config){ .host = "127.0.0.1", .port = 8080, .parallel = 4, .prefix_cache = 1, .n_threads = cli_default_threads(),
                           .queue_size = 64, .timeout_s = 300, .max_body = 1 << 20, .max_conns = 256,
                           .shutdown_s = 5 };
    o->log_format = "text";
    o->log_level = "info";
    for (int i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && !opt_set(o, &opts[i], opts[i].env, v)) return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { serve_usage(stdout); return -1; }
        const opt *d = NULL;
        for (int k = 0; k < N_OPTS && !d; k++)
            if (!strcmp(a, opts[k].flag) || (opts[k].alt && !strcmp(a, opts[k].alt))) d = &opts[k];
        if (!d) { cli_errorf(CMD, "unknown option %s (see --help)", a); return 2; }
        if (d->kind == OPT_BOOL) { opt_set(o, d, a, "1"); continue; }
        if (i + 1 >= argc) { cli_errorf(CMD, "%s needs a value", a); return 2; }
        if (!opt_set(o, d, a, argv[++i])) return 2;
    }
    /* a test hook, not an option: every model load sleeps this long first */
    const char *delay = getenv("QUARREL_TEST_LOAD_DELAY_MS");
    if (delay && *delay && !cli_int_arg(CMD, "QUARREL_TEST_LOAD_DELAY_MS", delay, 0, 60000, &o->cfg.test_load_delay_ms))
        return 2;
    if (o->cfg.model_path && !*o->cfg.model_path) o->cfg.model_path = NULL;
    if (o->cfg.models_dir && !*o->cfg.models_dir) o->cfg.models_dir = NULL;
    if (!o->cfg.model_path && !o->cfg.models_dir) {
        cli_errorf(CMD, "-m MODEL or --models-dir DIR (or QUARREL_MODEL / QUARREL_MODELS_DIR) is required");
        serve_usage(stderr);
        return 2;
    }
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    int rc = serve_parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    srv_log_format lf;
    srv_log_level ll;
    if (!srv_log_format_parse(o.log_format, &lf)) { cli_errorf(CMD, "--log-format must be json or text"); return 2; }
    if (!srv_log_level_parse(o.log_level, &ll)) { cli_errorf(CMD, "--log-level must be debug, info, warn or error"); return 2; }
    srv_log_setup(lf, ll, o.log_prompts);
    o.cfg.log_prompts = o.log_prompts;
    static char default_keys[4096];
    o.cfg.keys_explicit = o.cfg.keys_file && *o.cfg.keys_file;
    if (!o.cfg.keys_explicit) {   /* no HOME either: no default store, an open server */
        q_error kerr;
        o.cfg.keys_file = keys_default_path(default_keys, sizeof default_keys, &kerr) == Q_OK ? default_keys : NULL;
    }

    /* every thread started from here on inherits the blocked signals; this one waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv_server *s = NULL;
    q_error err;
    if (srv_server_start(&o.cfg, &s, &err) != Q_OK) {
        cli_errorf(CMD, "%s", err.msg);
        return 1;
    }
    char url[96];
    snprintf(url, sizeof url, "%s://%s:%d", o.cfg.tls_cert ? "https" : "http", o.cfg.host, srv_server_port(s));
    srv_log(SRV_LOG_INFO, "listening", NULL,
            json_pack("{s:s, s:s?, s:s?, s:i, s:I}", "url", url, "model", o.cfg.model_path, "models_dir", o.cfg.models_dir,
                      "parallel", (int)o.cfg.parallel, "prefix_cache_tokens", (json_int_t)o.cfg.prefix_cache_tokens));
    fprintf(stderr, "quarrel serve: listening on %s\n", url);
    fflush(stderr);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) srv_server_reload(s);
    srv_log(SRV_LOG_INFO, "shutting_down", NULL, json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    srv_server_stop(s);
    srv_log(SRV_LOG_INFO, "stopped", NULL, NULL);
    return 0;
}

/* static.c — serves the embedded browser UI (web_assets.h): `/` is index.html, the
 * bundles live under /assets/ with content-hashed names.
 *
 * Headers: hashed files are `Cache-Control: public, max-age=31536000, immutable`;
 * index.html is `no-cache` (revalidated by ETag, answered 304 when unchanged) so a new
 * build is picked up at once. The gzip variant, precomputed at build time, goes to clients
 * whose Accept-Encoding allows gzip (Vary: Accept-Encoding). Every UI response carries the
 * CSP (no inline script or style, no framing, connections only to this origin),
 * X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer.
 * Not here: the API routes, auth (the UI itself is public; it asks for a key when the API
 * answers 401). Memory: responses point at the static table (MHD_RESPMEM_PERSISTENT). */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base.h"
#include "server/static.h"
#include "server/web_assets.h"

static const char CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

static const char NOT_BUILT[] =
    "The Quarrel web UI was not built into this binary: node and npm were missing (or `npm ci`\n"
    "failed) when it was compiled. Install them (scripts/deps.sh) and rebuild.\n"
    "The API works without it: /api/generate, /api/stream, /ws and /v1 (see docs/api.md).\n";

static const srv_web_asset *asset_find(const char *url) {
    if (!strcmp(url, "/index.html")) url = "/";
    for (size_t i = 0; i < srv_web_asset_count; i++)
        if (!strcmp(srv_web_assets[i].path, url)) return &srv_web_assets[i];
    return NULL;
}

bool srv_static_owns(const char *method, const char *url) {
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) return false;
    return asset_find(url) || !strcmp(url, "/");
}

/* Whether Accept-Encoding allows gzip: a "gzip" (or "x-gzip", or "*") coding whose q is
 * not 0. Codings are comma-separated, each optionally followed by ";q=VALUE". */
static bool accepts_gzip(const char *ae) {
    for (const char *p = ae; p && *p;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        size_t n = 0;   /* the coding's name: p[0..n) */
        while (p + n < end && p[n] != ';' && p[n] != ' ' && p[n] != '\t') n++;
        const char *q = memmem(p + n, (size_t)(end - (p + n)), "q=", 2);
        const bool allowed = !q || strtod(q + 2, NULL) > 0;
        if (allowed && ((n == 4 && !strncasecmp(p, "gzip", 4)) || (n == 6 && !strncasecmp(p, "x-gzip", 6)) ||
                        (n == 1 && *p == '*')))
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

/* If-None-Match holds our ETag (or "*"): the client's copy is current. */
static bool etag_matches(const char *inm, const char *etag) {
    return inm && (strstr(inm, etag) || !strcmp(inm, "*"));
}

static void ui_headers(struct MHD_Response *resp) {
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");   /* frame-ancestors for older browsers */
}

int srv_route_static(srv_req *r) {
    const srv_web_asset *a = asset_find(r->path);
    if (!a) {   /* `/` of a build without the UI */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(sizeof NOT_BUILT - 1, (void *)NOT_BUILT, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        ui_headers(resp);
        return srv_reply_response(r, 200, resp);
    }
    const char *cache = a->immutable ? "public, max-age=31536000, immutable" : "no-cache";
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    const bool not_modified = etag_matches(inm, a->etag);
    const bool gz = a->gz && accepts_gzip(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Encoding"));
    struct MHD_Response *resp =
        not_modified ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
                     : MHD_create_response_from_buffer(gz ? a->gz_len : a->len, (void *)(gz ? a->gz : a->body),
                                                       MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (!not_modified) MHD_add_response_header(resp, "Content-Type", a->ctype);
    if (gz && !not_modified) MHD_add_response_header(resp, "Content-Encoding", "gzip");
    MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "Cache-Control", cache);
    MHD_add_response_header(resp, "ETag", a->etag);
    if (a->link) MHD_add_response_header(resp, "Link", a->link);
    ui_headers(resp);
    return srv_reply_response(r, not_modified ? 304 : 200, resp);
}

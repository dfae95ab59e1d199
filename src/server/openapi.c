/* openapi.c — serves the embedded API description: /openapi.json (docs/openapi.json, the
 * OpenAPI 3.1 document of every route in http.c's table) and the /docs page that fetches
 * and renders it (docs/apidocs/: HTML, one script, one stylesheet; nothing from a CDN and
 * no inline script, so the page runs under `script-src 'self'`).
 *
 * Every reply carries X-Content-Type-Options: nosniff (browsers must trust the declared
 * types) and the page a CSP that allows only same-origin script, style and fetches and
 * forbids framing. Not here: the document's content (hand-maintained; tests/cli/openapi.sh
 * checks it against real responses) or how the bytes get in (cmake/embed.cmake).
 * Memory: the bytes are static arrays in the binary; replies point at them, never copy. */
#include <microhttpd.h>
#include <string.h>

#include "core/base.h"
#include "server/openapi.h"

/* defined by the sources cmake/embed.cmake generates; each array ends with an extra 0 */
extern const unsigned char quarrel_openapi_json[], quarrel_apidocs_html[], quarrel_apidocs_js[], quarrel_apidocs_css[];
extern const size_t quarrel_openapi_json_len, quarrel_apidocs_html_len, quarrel_apidocs_js_len, quarrel_apidocs_css_len;

typedef enum apidocs_file { APIDOCS_SPEC, APIDOCS_PAGE, APIDOCS_SCRIPT, APIDOCS_STYLE, APIDOCS_COUNT } apidocs_file;

typedef struct apidocs_entry {
    const char          *path;    /* the URL path, as in http.c's route table */
    const char          *ctype;
    const unsigned char *data;
    const size_t        *len;
    bool                 page;    /* an HTML page: gets the CSP */
} apidocs_entry;

static const apidocs_entry files[APIDOCS_COUNT] = {
    [APIDOCS_SPEC]   = { "/openapi.json",     "application/json",               quarrel_openapi_json, &quarrel_openapi_json_len, false },
    [APIDOCS_PAGE]   = { "/docs",             "text/html; charset=utf-8",       quarrel_apidocs_html, &quarrel_apidocs_html_len, true },
    [APIDOCS_SCRIPT] = { "/docs/apidocs.js",  "text/javascript; charset=utf-8", quarrel_apidocs_js,   &quarrel_apidocs_js_len,   false },
    [APIDOCS_STYLE]  = { "/docs/apidocs.css", "text/css; charset=utf-8",        quarrel_apidocs_css,  &quarrel_apidocs_css_len,  false },
};

/* The page fetches /openapi.json (connect-src) and loads its own script and stylesheet;
 * nothing inline, nothing from elsewhere, never inside a frame. */
static const char PAGE_CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

int srv_route_apidocs(srv_req *r) {
    const apidocs_entry *f = NULL;
    for (int i = 0; i < APIDOCS_COUNT; i++)
        if (!strcmp(files[i].path, r->path)) f = &files[i];
    if (!f) return srv_reply_error(r, 404, "not_found_error", "no route %s %s", r->method, r->path);
    /* PERSISTENT: MHD reads the static bytes in place (the cast only drops const) */
    struct MHD_Response *resp = MHD_create_response_from_buffer(*f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    Q_ASSERT(resp);
    MHD_add_response_header(resp, "Content-Type", f->ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (f->page) {
        MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    return srv_reply_response(r, 200, resp);
}

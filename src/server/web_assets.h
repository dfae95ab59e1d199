/* web_assets.h — the browser UI's files, embedded in the binary at build time.
 *
 * The table is generated: web/build.mjs bundles web/ with esbuild and writes
 * <build>/web/web_assets.c (one row per file, bodies as byte arrays, content-hashed names
 * under /assets/); without node/npm the build links web/embed_none.c instead, an empty
 * table, and `/` says the UI was not built. Not here: serving (static.c).
 * Memory: everything is static, read-only data. */
#ifndef QUARREL_SERVER_WEB_ASSETS_H
#define QUARREL_SERVER_WEB_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct srv_web_asset {
    const char          *path;       /* URL path: "/" (index.html) or "/assets/NAME-HASH.EXT" */
    const char          *ctype;      /* Content-Type header value */
    const unsigned char *body;       /* [len] bytes */
    size_t               len;
    const unsigned char *gz;         /* [gz_len] gzip of body; NULL where gzip would not be smaller */
    size_t               gz_len;
    const char          *etag;       /* quoted strong ETag (content hash) */
    const char          *link;       /* Link header (preloads), or NULL */
    bool                 immutable;  /* content-hashed name: cache for a year */
} srv_web_asset;

extern const srv_web_asset srv_web_assets[];
extern const size_t        srv_web_asset_count;   /* 0: the UI was not built */

#endif

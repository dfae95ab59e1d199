/* static.h — serving the embedded browser UI (static.c). */
#ifndef QUARREL_SERVER_STATIC_H
#define QUARREL_SERVER_STATIC_H

#include <stdbool.h>

#include "server/server.h"

/* True when GET/HEAD `url` is a UI file (or `/`, which explains a missing UI). */
bool srv_static_owns(const char *method, const char *url);
/* Replies with that file: gzip when accepted, cache headers, CSP and the other UI headers. */
int  srv_route_static(srv_req *r);

#endif

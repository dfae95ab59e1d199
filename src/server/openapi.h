/* openapi.h — the API description served by `quarrel serve`: GET /openapi.json (the
 * hand-maintained OpenAPI 3.1 document docs/openapi.json) and the /docs page that renders
 * it (docs/apidocs/), all compiled into the binary by cmake/embed.cmake.
 * Not here: the routes themselves (http.c's table names this handler for each path). */
#ifndef QUARREL_SERVER_OPENAPI_H
#define QUARREL_SERVER_OPENAPI_H

#include "server/server.h"

/* Replies with the embedded file whose path is r->path (404 if none is). */
int srv_route_apidocs(srv_req *r);

#endif

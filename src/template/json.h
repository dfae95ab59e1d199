/* json.h — jansson values to template values (json.c). The tojson side is declared
 * in eval.h (tpl_json_dump). Values are built in the given arena. */
#ifndef QUARREL_TEMPLATE_JSON_H
#define QUARREL_TEMPLATE_JSON_H

#include <jansson.h>

#include "template/eval.h"

/* false when the arena's limit is hit. */
bool tpl_json_to_value(tpl_arena *a, const json_t *j, tv *out);

#endif

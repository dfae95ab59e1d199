/* stop.c — stop-string hold-back (contract in stop.h). */
#include "runtime/stop.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"

void q_stopper_init(q_stopper *s, const char *const *stops, int n_stops) {
    memset(s, 0, sizeof *s);
    s->stops = q_xcalloc((size_t)(n_stops > 0 ? n_stops : 1), sizeof *s->stops);
    s->stop_len = q_xcalloc((size_t)(n_stops > 0 ? n_stops : 1), sizeof *s->stop_len);
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i][0]) continue;   /* an empty stop string would match everywhere */
        s->stops[s->n_stops] = q_xstrdup(stops[i]);
        s->stop_len[s->n_stops++] = strlen(stops[i]);
    }
}

void q_stopper_free(q_stopper *s) {
    for (int i = 0; i < s->n_stops; i++) free(s->stops[i]);
    free(s->stops);
    free(s->stop_len);
    free(s->held);
    memset(s, 0, sizeof *s);
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && !memcmp(h + i, n, nn)) return h + i;
    return NULL;
}

size_t q_stopper_push(q_stopper *s, const char *text, size_t n) {
    if (s->hit) return 0;
    if (s->held_len + n + 1 > s->held_cap) {
        s->held_cap = (s->held_len + n + 1) * 2;
        s->held = q_xrealloc(s->held, s->held_cap);
    }
    memcpy(s->held + s->held_len, text, n);
    s->held_len += n;
    /* a complete stop string: release what precedes the earliest one */
    size_t first = SIZE_MAX;
    for (int i = 0; i < s->n_stops; i++) {
        const char *at = find_bytes(s->held, s->held_len, s->stops[i], s->stop_len[i]);
        if (at && (size_t)(at - s->held) < first) first = (size_t)(at - s->held);
    }
    if (first != SIZE_MAX) {
        s->hit = true;
        return first;
    }
    /* hold the longest suffix that is a proper prefix of some stop string */
    size_t hold = 0;
    for (int i = 0; i < s->n_stops; i++) {
        for (size_t k = Q_MIN(s->stop_len[i] - 1, s->held_len); k > hold; k--) {
            if (!memcmp(s->held + s->held_len - k, s->stops[i], k)) { hold = k; break; }
        }
    }
    return s->held_len - hold;
}

void q_stopper_consume(q_stopper *s, size_t n) {
    Q_ASSERT(n <= s->held_len);
    memmove(s->held, s->held + n, s->held_len - n);
    s->held_len -= n;
}

size_t q_stopper_finish(q_stopper *s) {
    return s->hit ? 0 : s->held_len;
}

/* stop.h — stop-string detection over streamed text, without ever emitting a stop
 * string or any part of one: text that could still be the start of a stop string is
 * held back until it either completes the stop string (generation ends, the held text is
 * dropped) or can no longer match (it is released).
 *
 * q_stopper copies the stop strings; q_stopper_free releases them and the held text. */
#ifndef QUARREL_RUNTIME_STOP_H
#define QUARREL_RUNTIME_STOP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct q_stopper {
    char  **stops;
    size_t *stop_len;
    int     n_stops;
    char   *held;        /* text not yet released */
    size_t  held_len, held_cap;
    bool    hit;         /* a stop string was found; nothing more is released */
} q_stopper;

void q_stopper_init(q_stopper *s, const char *const *stops, int n_stops);
void q_stopper_free(q_stopper *s);

/* Appends text[0..n); returns how many bytes at the start of s->held are final and may
 * be emitted now (the caller then calls q_stopper_consume with that count). After a hit,
 * the returned count ends right before the stop string. */
size_t q_stopper_push(q_stopper *s, const char *text, size_t n);
void   q_stopper_consume(q_stopper *s, size_t n);
/* End of generation without a hit: everything held is final; returns its length. */
size_t q_stopper_finish(q_stopper *s);

#endif

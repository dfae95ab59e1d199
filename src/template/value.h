/* value.h — the template interpreter's value model, arena and string builder.
 *
 * What it is: the Python-like values a chat template computes with (none, undefined,
 * bool, int64, double, UTF-8 string, list/tuple, insertion-ordered dict, namespace,
 * callables, generators, loop objects), their Python semantics (truth, ==, ordering,
 * str() and repr()), and the per-render arena that owns every one of them.
 * What it is not: the evaluator (eval.c) or the filters (filters.c).
 *
 * Memory: every value, string, list and dict lives in a tpl_arena; nothing is freed
 * individually, the whole arena is freed at once (one per compile, one per render).
 * Values are small structs passed by value; strings and containers are pointers into
 * the arena. Strings are immutable byte ranges (not NUL-terminated unless said so);
 * lists and dicts are only mutated while being built, or through a namespace. */
#ifndef QUARREL_TEMPLATE_VALUE_H
#define QUARREL_TEMPLATE_VALUE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

/* ---- arena -------------------------------------------------------------------- */
typedef struct tpl_chunk tpl_chunk;
typedef struct tpl_arena {
    tpl_chunk *head;
    size_t     used_total;  /* bytes handed out, for the memory limit */
    size_t     limit;       /* 0 = unlimited; past it tpl_arena_alloc returns NULL */
} tpl_arena;

void  tpl_arena_init(tpl_arena *a, size_t limit);
void  tpl_arena_free(tpl_arena *a);
void *tpl_arena_alloc(tpl_arena *a, size_t n);   /* zeroed, 16-aligned; NULL past the limit */

/* ---- values ------------------------------------------------------------------- */
typedef enum tv_kind {
    TV_UNDEFINED = 0,  /* jinja2 Undefined: prints "", falsy, raises on attribute/item */
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_LIST,           /* list, or tuple when tv.tuple */
    TV_DICT,
    TV_NS,             /* namespace(): a dict whose attributes may be assigned */
    TV_FUNC,           /* builtin, macro or bound method */
    TV_GEN,            /* a one-shot generator (what map/select/... return) */
    TV_LOOP,           /* the `loop` object of a for statement */
    TV_KIND_COUNT
} tv_kind;

/* What d.items() / d.keys() / d.values() return: a list that prints as Python's
 * dict_items([...]) etc. and is not JSON-serialisable. */
typedef enum tv_view { TV_VIEW_NONE = 0, TV_VIEW_ITEMS, TV_VIEW_KEYS, TV_VIEW_VALUES } tv_view;

typedef struct tv_list tv_list;
typedef struct tv_dict tv_dict;
typedef struct tv_func tv_func;
typedef struct tv_gen  tv_gen;
typedef struct tv_loop tv_loop;

typedef struct tv {
    uint8_t kind;        /* tv_kind */
    bool    tuple;       /* TV_LIST: a tuple (repr uses parentheses) */
    uint8_t view;        /* TV_LIST: a dict view (tv_view), for repr and tojson */
    union {
        bool        b;
        int64_t     i;
        double      f;
        struct { const char *p; size_t n; } s;   /* TV_STR: UTF-8 bytes */
        const char *undef_name;                 /* TV_UNDEFINED: name for messages, or NULL */
        tv_list    *l;
        tv_dict    *d;                          /* TV_DICT and TV_NS */
        tv_func    *fn;
        tv_gen     *g;
        tv_loop    *loop;
    };
} tv;

struct tv_list { tv *v; size_t n, cap; };
struct tv_dict { tv *keys; tv *vals; size_t n, cap; };
struct tv_gen  { tv_list *items; bool consumed; };

static inline tv tv_undef(const char *name) { tv v = { .kind = TV_UNDEFINED }; v.undef_name = name; return v; }
static inline tv tv_none(void)       { tv v = { .kind = TV_NONE }; return v; }
static inline tv tv_bool(bool b)     { tv v = { .kind = TV_BOOL }; v.b = b; return v; }
static inline tv tv_int(int64_t i)   { tv v = { .kind = TV_INT }; v.i = i; return v; }
static inline tv tv_float(double f)  { tv v = { .kind = TV_FLOAT }; v.f = f; return v; }
static inline tv tv_strn(const char *p, size_t n) { tv v = { .kind = TV_STR }; v.s.p = p; v.s.n = n; return v; }
static inline tv tv_list_v(tv_list *l) { tv v = { .kind = TV_LIST }; v.l = l; return v; }
static inline tv tv_dict_v(tv_dict *d) { tv v = { .kind = TV_DICT }; v.d = d; return v; }

/* ---- string builder (arena-backed) --------------------------------------------- */
typedef struct tpl_sb {
    tpl_arena *arena;
    char      *p;
    size_t     n, cap;
    size_t     limit;    /* max bytes; 0 = none */
    bool       overflow; /* set when an append hit the arena or size limit */
    bool       too_deep; /* set when repr() met values nested deeper than TV_MAX_NEST */
    int        depth;    /* current repr() nesting */
} tpl_sb;

void tpl_sb_init(tpl_sb *b, tpl_arena *a, size_t limit);
bool tpl_sb_put(tpl_sb *b, const char *p, size_t n);   /* false on overflow */
bool tpl_sb_putc(tpl_sb *b, char c);
bool tpl_sb_printf(tpl_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tv   tpl_sb_str(tpl_sb *b);                             /* the built string as a value */

/* ---- containers ---------------------------------------------------------------- */
tv_list *tv_list_new(tpl_arena *a, size_t cap);
bool     tv_list_push(tpl_arena *a, tv_list *l, tv v);           /* false: out of memory */
tv_dict *tv_dict_new(tpl_arena *a, size_t cap);
bool     tv_dict_set(tpl_arena *a, tv_dict *d, tv key, tv val);  /* replaces an equal key in place */
tv      *tv_dict_get(const tv_dict *d, tv key);                  /* NULL if absent */
tv      *tv_dict_gets(const tv_dict *d, const char *key);

/* ---- Python semantics ------------------------------------------------------------ */
/* Values nested deeper than this (a template can build them with `ns.x = [ns.x]`)
 * compare unequal and do not print: recursion stays bounded. */
#define TV_MAX_NEST 200

bool        tv_truthy(tv v);
bool        tv_eq(tv a, tv b);            /* Python == (1 == 1.0 == True) */
/* Python ordering; false with *ok = false when the types do not order. */
int         tv_cmp(tv a, tv b, bool *ok);
bool        tv_is_num(tv v);              /* int, float or bool */
double      tv_num(tv v);
const char *tv_type_name(tv v);           /* Python's type name: "str", "dict", ... */

/* str(v) and repr(v) appended to b (Python formatting: True, None, 1.0, 1e-05,
 * ['a', "it's"], {'k': 1}, (1,)). */
bool tv_str_append(tpl_sb *b, tv v);
bool tv_repr_append(tpl_sb *b, tv v);
/* Python repr of a double ("1.0", "1e-05", "inf") into buf (>= 32 bytes). */
void tv_float_repr(double f, char *buf, size_t cap);

/* ---- UTF-8 ---------------------------------------------------------------------- */
/* Decodes one code point at p (n bytes left); returns its length (>= 1; invalid bytes
 * decode as U+FFFD of length 1). */
size_t   tpl_utf8_decode(const char *p, size_t n, int32_t *cp);
size_t   tpl_utf8_encode(int32_t cp, char *out);   /* out >= 4 bytes */
size_t   tpl_utf8_count(const char *p, size_t n);  /* code points */
bool     tpl_is_space_cp(int32_t cp);              /* Python str.isspace */

#endif

/* eval.h — the render-time interpreter state shared by eval.c and the builtin tables
 * (filters.c, tests.c, methods.c, globals.c, json.c).
 *
 * What it is: the runtime (arena, output stack, scopes, limits), call arguments, and
 * the error path: tpl_raise() records a Python-style message ("TypeError: ...") and
 * longjmps to the render entry, which frees the arena at once, so builtins never
 * clean up. What it is not: the public API (include/quarrel/template.h). */
#ifndef QUARREL_TEMPLATE_EVAL_H
#define QUARREL_TEMPLATE_EVAL_H

#include <setjmp.h>
#include <time.h>

#include "template/ast.h"
#include "template/value.h"

/* Render limits: every loop, recursion and allocation is bounded. */
#define TPL_MAX_CALL_DEPTH   64            /* nested macro calls */
#define TPL_MAX_EVAL_DEPTH   400           /* nested evaluation frames (C stack guard) */
#define TPL_MAX_ITERATIONS   1000000       /* loop iterations per render, all loops */
#define TPL_MAX_SEQ          1000000       /* elements of one list (range(), repetition) */

typedef struct tpl_scope tpl_scope;
struct tpl_scope {
    tpl_scope   *parent;
    const char **names;
    tv          *vals;
    size_t       n, cap;
};

typedef struct tpl_rt tpl_rt;

/* Call arguments: positional then keyword. */
typedef struct tpl_args {
    size_t       n;
    const tv    *pos;
    size_t       nkw;
    const char *const *kwnames;
    const tv    *kw;
} tpl_args;

typedef tv (*tpl_builtin_fn)(tpl_rt *rt, tv self, const tpl_args *a);

typedef enum tv_func_kind { TF_BUILTIN = 0, TF_MACRO, TF_UNSAFE } tv_func_kind;

struct tv_func {
    uint8_t         kind;    /* tv_func_kind */
    const char     *name;
    tpl_builtin_fn  fn;      /* TF_BUILTIN */
    tv              self;    /* bound receiver for methods (TV_UNDEFINED for globals) */
    const tpl_node *macro;   /* TF_MACRO */
    tpl_scope      *closure; /* TF_MACRO: the scope it was defined in */
};

struct tv_loop {
    tv_list *items;
    size_t   index0;
    int64_t  depth0;
    tv       last_changed;   /* for loop.changed() */
    bool     changed_init;
};

typedef enum tpl_ctl { CTL_NONE = 0, CTL_BREAK, CTL_CONTINUE } tpl_ctl;

struct tpl_rt {
    tpl_arena          arena;
    const tpl_program *prog;
    tpl_sb            *out;          /* current output (stack via eval.c's capture) */
    size_t             max_output;
    tpl_scope         *globals;      /* the render variables */
    tpl_scope         *scope;        /* innermost scope */
    int                call_depth, eval_depth;
    uint64_t           iterations;
    tpl_ctl            ctl;
    struct tm          now;          /* the clock strftime_now() formats */
    double             deadline;     /* CLOCK_MONOTONIC seconds; 0 = none */
    uint32_t           tick;         /* evaluation steps, to poll the clock now and then */
    uint32_t           pos;          /* source offset being evaluated, for messages */
    q_error           *err;
    q_status           status;
    bool               raised;       /* error came from raise_exception() */
    jmp_buf            jb;
};

/* Render lifecycle (template.c): init, define the variables, exec once, free. */
void     tpl_rt_init(tpl_rt *rt, const tpl_program *prog, size_t mem_limit, size_t max_output, double max_seconds,
                     q_error *err);
bool     tpl_rt_define(tpl_rt *rt, const char *name, tv v);   /* false: out of memory */
q_status tpl_rt_exec(tpl_rt *rt, char **out, size_t *out_len); /* *out malloc'ed */
void     tpl_rt_free(tpl_rt *rt);

/* Fails the render: status + "Kind: message (line L, column C)". Never returns. */
_Noreturn void tpl_raise(tpl_rt *rt, q_status s, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* raise_exception(msg): message is "TemplateError: msg" without location. */
_Noreturn void tpl_raise_template_error(tpl_rt *rt, const char *msg, size_t len);
_Noreturn void tpl_nomem(tpl_rt *rt);

/* Allocation helpers that raise on the memory limit instead of returning NULL. */
void    *tpl_alloc(tpl_rt *rt, size_t n);
tv_list *tpl_list(tpl_rt *rt, size_t cap);
void     tpl_list_push(tpl_rt *rt, tv_list *l, tv v);
tv_dict *tpl_dict(tpl_rt *rt, size_t cap);
void     tpl_dict_set(tpl_rt *rt, tv_dict *d, tv k, tv v);
tv       tpl_str(tpl_rt *rt, const char *p, size_t n);   /* copies into the arena */
tv       tpl_cstr(const char *z);                        /* static literal, no copy */
tv       tpl_to_str(tpl_rt *rt, tv v);                   /* str(v) */
tv       tpl_repr(tpl_rt *rt, tv v);
const char *tpl_cz(tpl_rt *rt, tv s);                    /* NUL-terminated copy of a string */
tv       tpl_tuple2(tpl_rt *rt, tv a, tv b);
void     tpl_sb_init_rt(tpl_rt *rt, tpl_sb *b);
void     tpl_sb_check(tpl_rt *rt, tpl_sb *b);            /* raises if b overflowed */

/* Iteration: the items of an iterable as a list (str -> characters, dict -> keys,
 * generator -> its items, consumed; undefined -> empty). Raises for non-iterables. */
tv_list *tpl_iterate(tpl_rt *rt, tv v);
int64_t  tpl_len(tpl_rt *rt, tv v);     /* len(); raises when there is none */

/* Attribute / item access with jinja2's fallbacks; undefined when missing. */
tv tpl_getattr(tpl_rt *rt, tv obj, const char *name);
tv tpl_getitem(tpl_rt *rt, tv obj, tv key);
tv tpl_call(tpl_rt *rt, tv fn, const tpl_args *a);

/* Argument helpers: the i-th positional or the named keyword, else dflt. */
tv   tpl_arg(const tpl_args *a, size_t i, const char *name, tv dflt);
bool tpl_has_arg(const tpl_args *a, size_t i, const char *name);

/* Builtin tables (sorted by name). */
typedef struct tpl_builtin { const char *name; tpl_builtin_fn fn; } tpl_builtin;
typedef bool (*tpl_test_fn)(tpl_rt *rt, tv v, const tpl_args *a);
typedef struct tpl_test { const char *name; tpl_test_fn fn; } tpl_test;

const tpl_builtin *tpl_filter_find(const char *name);
const tpl_test    *tpl_test_find(const char *name);
const tpl_builtin *tpl_global_find(const char *name);
/* Method `name` of a value of kind `kind`; sets *unsafe for sandbox-blocked mutators. */
const tpl_builtin *tpl_method_find(tv_kind kind, const char *name, bool *unsafe);

/* Applies filter / test by name (used by map/select/... too). */
tv   tpl_apply_filter(tpl_rt *rt, const char *name, tv v, const tpl_args *a);
bool tpl_apply_test(tpl_rt *rt, const char *name, tv v, const tpl_args *a);

/* Python string helpers shared by filters and methods (code-point aware). */
tv   tpl_str_strip(tpl_rt *rt, tv s, tv chars, bool left, bool right);
tv   tpl_str_replace(tpl_rt *rt, tv s, tv old, tv new_, int64_t count);
tv   tpl_str_case(tpl_rt *rt, tv s, int mode);   /* 0 lower, 1 upper, 2 capitalize, 3 str.title */
tv   tpl_str_format_percent(tpl_rt *rt, tv fmt, tv args);   /* fmt % args */
tv   tpl_str_slice(tpl_rt *rt, tv s, int64_t start, int64_t stop, int64_t step);

/* json.c: json.dumps(v, ensure_ascii, indent (NULL/int/str), separators, sort_keys). */
typedef struct tpl_json_opts {
    bool        ensure_ascii;
    bool        sort_keys;
    const char *indent;      /* NULL = no newlines; else the indent unit */
    size_t      indent_len;
    const char *item_sep;    /* ", " or "," by default depending on indent */
    const char *key_sep;
} tpl_json_opts;
void tpl_json_dump(tpl_rt *rt, tpl_sb *b, tv v, const tpl_json_opts *o);

#endif

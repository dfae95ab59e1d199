/* eval.c — the tree-walking evaluator: scopes, expressions, statements, macros.
 *
 * What it is: jinja2's runtime semantics for the parsed subset: lexical scopes (a for
 * iteration and a macro call each get a fresh scope whose parent is the defining
 * scope; if does not), Python operators, jinja2's attribute/item fallbacks and
 * Undefined behaviour, loop objects, break/continue, capture for set blocks, filter
 * blocks and macro calls. What it is not: the builtin filters/tests/methods (their
 * own files) or the public API (template.c).
 *
 * Errors: tpl_raise() longjmps to tpl_exec(), which reports "Kind: message (line L,
 * column C)" through q_error; all render memory is the runtime's arena, freed at once.
 * Limits (eval.h): macro depth, evaluation depth, total loop iterations, output size
 * and arena size are all bounded, so no template can crash or hang the caller. */
#include "template/eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ----------------------------------------------------------------------- */
_Noreturn void tpl_raise(tpl_rt *rt, q_status s, const char *kind, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    tpl_line_col(rt->prog->src, rt->prog->len, rt->pos, &line, &col);
    rt->status = q_fail(rt->err, s, "%s: %s (line %d, column %d)", kind, msg, line, col);
    longjmp(rt->jb, 1);
}

_Noreturn void tpl_raise_template_error(tpl_rt *rt, const char *msg, size_t len) {
    rt->raised = true;
    rt->status = q_fail(rt->err, Q_ERR_FORMAT, "TemplateError: %.*s", (int)Q_MIN(len, 480), msg);
    longjmp(rt->jb, 1);
}

_Noreturn void tpl_nomem(tpl_rt *rt) {
    tpl_raise(rt, Q_ERR_LIMIT, "MemoryError", "template used more than its memory limit (%zu bytes)", rt->arena.limit);
}

/* ---- allocation helpers -------------------------------------------------------------- */
void *tpl_alloc(tpl_rt *rt, size_t n) {
    void *p = tpl_arena_alloc(&rt->arena, n);
    if (!p) tpl_nomem(rt);
    return p;
}

tv_list *tpl_list(tpl_rt *rt, size_t cap) {
    if (cap > TPL_MAX_SEQ) tpl_raise(rt, Q_ERR_LIMIT, "MemoryError", "sequence longer than %d items", TPL_MAX_SEQ);
    tv_list *l = tv_list_new(&rt->arena, cap);
    if (!l) tpl_nomem(rt);
    return l;
}

void tpl_list_push(tpl_rt *rt, tv_list *l, tv v) {
    if (l->n >= TPL_MAX_SEQ) tpl_raise(rt, Q_ERR_LIMIT, "MemoryError", "sequence longer than %d items", TPL_MAX_SEQ);
    if (!tv_list_push(&rt->arena, l, v)) tpl_nomem(rt);
}

tv_dict *tpl_dict(tpl_rt *rt, size_t cap) {
    tv_dict *d = tv_dict_new(&rt->arena, cap);
    if (!d) tpl_nomem(rt);
    return d;
}

void tpl_dict_set(tpl_rt *rt, tv_dict *d, tv k, tv v) {
    if (!tv_dict_set(&rt->arena, d, k, v)) tpl_nomem(rt);
}

tv tpl_str(tpl_rt *rt, const char *p, size_t n) {
    char *c = tpl_alloc(rt, n + 1);
    if (n) memcpy(c, p, n);
    return tv_strn(c, n);
}

tv tpl_cstr(const char *z) { return tv_strn(z, strlen(z)); }

const char *tpl_cz(tpl_rt *rt, tv s) {
    Q_ASSERT(s.kind == TV_STR);
    char *c = tpl_alloc(rt, s.s.n + 1);
    if (s.s.n) memcpy(c, s.s.p, s.s.n);
    return c;
}

void tpl_sb_init_rt(tpl_rt *rt, tpl_sb *b) { tpl_sb_init(b, &rt->arena, rt->max_output); }

void tpl_sb_check(tpl_rt *rt, tpl_sb *b) {
    if (b->too_deep) tpl_raise(rt, Q_ERR_LIMIT, "RecursionError", "value nested deeper than %d levels", TV_MAX_NEST);
    if (b->overflow) {
        if (rt->arena.limit && rt->arena.used_total + b->cap * 2 > rt->arena.limit) tpl_nomem(rt);
        tpl_raise(rt, Q_ERR_LIMIT, "OutputTooLarge", "rendered text is longer than %zu bytes", rt->max_output);
    }
}

tv tpl_to_str(tpl_rt *rt, tv v) {
    if (v.kind == TV_STR) return v;
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    tv_str_append(&b, v);
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

tv tpl_repr(tpl_rt *rt, tv v) {
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    tv_repr_append(&b, v);
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

tv tpl_tuple2(tpl_rt *rt, tv a, tv b) {
    tv_list *l = tpl_list(rt, 2);
    l->v[0] = a;
    l->v[1] = b;
    l->n = 2;
    tv t = tv_list_v(l);
    t.tuple = true;
    return t;
}

static tv undef_fmt(tpl_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tv undef_fmt(tpl_rt *rt, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    tv s = tpl_str(rt, msg, Q_MIN((size_t)n, sizeof msg - 1));
    return tv_undef(s.s.p);
}

static _Noreturn void raise_undefined(tpl_rt *rt, tv u) {
    tpl_raise(rt, Q_ERR_FORMAT, "UndefinedError", "%s", u.undef_name ? u.undef_name : "value is undefined");
}

/* ---- arguments --------------------------------------------------------------------- */
bool tpl_has_arg(const tpl_args *a, size_t i, const char *name) {
    if (i < a->n) return true;
    for (size_t k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kwnames[k], name)) return true;
    return false;
}

tv tpl_arg(const tpl_args *a, size_t i, const char *name, tv dflt) {
    if (i < a->n) return a->pos[i];
    for (size_t k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kwnames[k], name)) return a->kw[k];
    return dflt;
}

/* ---- scopes ------------------------------------------------------------------------ */
static tpl_scope *scope_new(tpl_rt *rt, tpl_scope *parent) {
    tpl_scope *s = tpl_alloc(rt, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(tpl_rt *rt, tpl_scope *s, const char *name, tv v) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) { s->vals[i] = v; return; }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        const char **nn = tpl_alloc(rt, cap * sizeof *nn);
        tv *nv = tpl_alloc(rt, cap * sizeof *nv);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

static tv *scope_find(tpl_scope *s, const char *name) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (!strcmp(s->names[i], name)) return &s->vals[i];
    return NULL;
}

static tv builtin_value(tpl_rt *rt, const char *name, tpl_builtin_fn fn, tv self, uint8_t kind) {
    tv_func *f = tpl_alloc(rt, sizeof *f);
    f->kind = kind;
    f->name = name;
    f->fn = fn;
    f->self = self;
    tv v = { .kind = TV_FUNC };
    v.fn = f;
    return v;
}

static tv lookup_name(tpl_rt *rt, const char *name) {
    tv *v = scope_find(rt->scope, name);
    if (v) return *v;
    const tpl_builtin *g = tpl_global_find(name);
    if (g) return builtin_value(rt, g->name, g->fn, tv_undef(NULL), TF_BUILTIN);
    return undef_fmt(rt, "'%s' is undefined", name);
}

/* ---- iteration and length ------------------------------------------------------------ */
tv_list *tpl_iterate(tpl_rt *rt, tv v) {
    switch ((tv_kind)v.kind) {
    case TV_LIST: return v.l;
    case TV_UNDEFINED: return tpl_list(rt, 0);
    case TV_DICT: {
        tv_list *l = tpl_list(rt, v.d->n);
        for (size_t i = 0; i < v.d->n; i++) l->v[i] = v.d->keys[i];
        l->n = v.d->n;
        return l;
    }
    case TV_STR: {
        tv_list *l = tpl_list(rt, tpl_utf8_count(v.s.p, v.s.n));
        for (size_t i = 0; i < v.s.n;) {
            int32_t cp;
            size_t len = tpl_utf8_decode(v.s.p + i, v.s.n - i, &cp);
            tpl_list_push(rt, l, tv_strn(v.s.p + i, len));
            i += len;
        }
        return l;
    }
    case TV_GEN: {
        if (v.g->consumed) return tpl_list(rt, 0);
        v.g->consumed = true;
        return v.g->items;
    }
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'%s' object is not iterable", tv_type_name(v));
    }
}

int64_t tpl_len(tpl_rt *rt, tv v) {
    switch ((tv_kind)v.kind) {
    case TV_STR: return (int64_t)tpl_utf8_count(v.s.p, v.s.n);
    case TV_LIST: return (int64_t)v.l->n;
    case TV_DICT: return (int64_t)v.d->n;
    case TV_UNDEFINED: return 0;
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "object of type '%s' has no len()", tv_type_name(v));
    }
}

/* ---- attribute and item access -------------------------------------------------------- */
static tv loop_attr(tpl_rt *rt, tv_loop *L, const char *name);

static tv method_value(tpl_rt *rt, tv obj, const char *name, bool *found) {
    bool unsafe = false;
    const tpl_builtin *m = tpl_method_find((tv_kind)obj.kind, name, &unsafe);
    *found = m || unsafe;
    if (unsafe) {
        tv f = builtin_value(rt, name, NULL, obj, TF_UNSAFE);
        return f;
    }
    if (m) return builtin_value(rt, m->name, m->fn, obj, TF_BUILTIN);
    return tv_undef(NULL);
}

static const char *obj_desc(tv v) {
    switch ((tv_kind)v.kind) {
    case TV_DICT: return "dict object";
    case TV_LIST: return v.tuple ? "tuple object" : "list object";
    case TV_STR: return "str object";
    case TV_NONE: return "None";
    case TV_INT: return "int object";
    case TV_FLOAT: return "float object";
    case TV_BOOL: return "bool object";
    default: return "object";
    }
}

tv tpl_getattr(tpl_rt *rt, tv obj, const char *name) {
    bool found;
    switch ((tv_kind)obj.kind) {
    case TV_UNDEFINED: raise_undefined(rt, obj);
    case TV_DICT: {
        tv m = method_value(rt, obj, name, &found);
        if (found) return m;
        tv *v = tv_dict_gets(obj.d, name);
        if (v) return *v;
        break;
    }
    case TV_NS: {
        tv *v = tv_dict_gets(obj.d, name);
        if (v) return *v;
        break;
    }
    case TV_LOOP: return loop_attr(rt, obj.loop, name);
    default: {
        tv m = method_value(rt, obj, name, &found);
        if (found) return m;
        break;
    }
    }
    if (obj.kind == TV_NONE) return undef_fmt(rt, "'None' has no attribute '%s'", name);
    return undef_fmt(rt, "'%s' has no attribute '%s'", obj_desc(obj), name);
}

/* Python index normalisation; false when out of range. */
static bool index_norm(int64_t *i, int64_t len) {
    if (*i < 0) *i += len;
    return *i >= 0 && *i < len;
}

/* Byte offset of code point `cp` in s (cp <= count). */
static size_t str_cp_offset(tv s, int64_t cp) {
    size_t i = 0;
    for (int64_t k = 0; k < cp && i < s.s.n; k++) {
        int32_t c;
        i += tpl_utf8_decode(s.s.p + i, s.s.n - i, &c);
    }
    return i;
}

tv tpl_getitem(tpl_rt *rt, tv obj, tv key) {
    switch ((tv_kind)obj.kind) {
    case TV_UNDEFINED: raise_undefined(rt, obj);
    case TV_DICT:
    case TV_NS: {
        tv *v = tv_dict_get(obj.d, key);
        if (v) return *v;
        break;
    }
    case TV_LIST:
        if (key.kind == TV_INT || key.kind == TV_BOOL) {
            int64_t i = key.kind == TV_BOOL ? key.b : key.i;
            if (index_norm(&i, (int64_t)obj.l->n)) return obj.l->v[i];
            return undef_fmt(rt, "%s has no element %lld", obj_desc(obj), (long long)(key.kind == TV_BOOL ? key.b : key.i));
        }
        break;
    case TV_STR:
        if (key.kind == TV_INT || key.kind == TV_BOOL) {
            int64_t i = key.kind == TV_BOOL ? key.b : key.i;
            if (!index_norm(&i, tpl_len(rt, obj))) return undef_fmt(rt, "str object has no element %lld", (long long)i);
            size_t off = str_cp_offset(obj, i);
            int32_t c;
            size_t len = tpl_utf8_decode(obj.s.p + off, obj.s.n - off, &c);
            return tv_strn(obj.s.p + off, len);
        }
        break;
    default:
        break;
    }
    if (key.kind == TV_STR && obj.kind != TV_DICT && obj.kind != TV_NS) {
        const char *name = tpl_cz(rt, key);
        return tpl_getattr(rt, obj, name);
    }
    if (key.kind == TV_STR) {
        bool found;
        tv m = method_value(rt, obj, tpl_cz(rt, key), &found);
        if (found) return m;
    }
    tv r = tpl_repr(rt, key);
    return undef_fmt(rt, "%s has no element %.*s", obj_desc(obj), (int)Q_MIN(r.s.n, 100), r.s.p);
}

/* Python slice index adjustment (PySlice_AdjustIndices). */
static int64_t slice_adjust(int64_t len, tv start, tv stop, int64_t step, int64_t *ostart) {
    int64_t s, e;
    if (start.kind == TV_NONE || start.kind == TV_UNDEFINED) s = step < 0 ? len - 1 : 0;
    else {
        s = start.i;
        if (s < 0) { s += len; if (s < 0) s = step < 0 ? -1 : 0; }
        else if (s >= len) s = step < 0 ? len - 1 : len;
    }
    if (stop.kind == TV_NONE || stop.kind == TV_UNDEFINED) e = step < 0 ? -1 : len;
    else {
        e = stop.i;
        if (e < 0) { e += len; if (e < 0) e = step < 0 ? -1 : 0; }
        else if (e >= len) e = step < 0 ? len - 1 : len;
    }
    *ostart = s;
    if (step < 0) return e < s ? (s - e - 1) / (-step) + 1 : 0;
    return s < e ? (e - s - 1) / step + 1 : 0;
}

static tv slice_bound(tpl_rt *rt, tv v) {
    if (v.kind == TV_BOOL) return tv_int(v.b);
    if (v.kind != TV_INT && v.kind != TV_NONE && v.kind != TV_UNDEFINED)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "slice indices must be integers or None");
    return v;
}

static tv do_slice(tpl_rt *rt, tv obj, tv start, tv stop, tv stepv) {
    start = slice_bound(rt, start);
    stop = slice_bound(rt, stop);
    stepv = slice_bound(rt, stepv);
    int64_t step = stepv.kind == TV_INT ? stepv.i : 1;
    if (step == 0) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "slice step cannot be zero");
    if (step == INT64_MIN) step = -INT64_MAX;
    if (obj.kind == TV_UNDEFINED) raise_undefined(rt, obj);
    if (obj.kind == TV_STR) {
        /* Code-point offsets, then the selected characters. */
        int64_t len = tpl_len(rt, obj);
        size_t *off = tpl_alloc(rt, ((size_t)len + 1) * sizeof *off);
        size_t i = 0;
        for (int64_t k = 0; k < len; k++) {
            off[k] = i;
            int32_t c;
            i += tpl_utf8_decode(obj.s.p + i, obj.s.n - i, &c);
        }
        off[len] = obj.s.n;
        int64_t s0;
        int64_t cnt = slice_adjust(len, start, stop, step, &s0);
        if (step == 1) return tv_strn(obj.s.p + (cnt ? off[s0] : 0), cnt ? off[s0 + cnt] - off[s0] : 0);
        tpl_sb b;
        tpl_sb_init_rt(rt, &b);
        for (int64_t k = 0, idx = s0; k < cnt; k++, idx += step)
            tpl_sb_put(&b, obj.s.p + off[idx], off[idx + 1] - off[idx]);
        tpl_sb_check(rt, &b);
        return tpl_sb_str(&b);
    }
    if (obj.kind == TV_LIST) {
        int64_t s0;
        int64_t cnt = slice_adjust((int64_t)obj.l->n, start, stop, step, &s0);
        tv_list *l = tpl_list(rt, (size_t)cnt);
        for (int64_t k = 0, idx = s0; k < cnt; k++, idx += step) l->v[k] = obj.l->v[idx];
        l->n = (size_t)cnt;
        tv r = tv_list_v(l);
        r.tuple = obj.tuple;
        return r;
    }
    /* jinja2's getitem turns the TypeError into an undefined value. */
    return undef_fmt(rt, "'%s' object is not subscriptable", tv_type_name(obj));
}

tv tpl_str_slice(tpl_rt *rt, tv s, int64_t start, int64_t stop, int64_t step) {
    return do_slice(rt, s, tv_int(start), stop == INT64_MAX ? tv_none() : tv_int(stop), tv_int(step));
}

/* ---- loop object ---------------------------------------------------------------------- */
static tv loop_cycle(tpl_rt *rt, tv self, const tpl_args *a) {
    if (a->n == 0) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "no items for cycling given");
    return a->pos[self.loop->index0 % a->n];
}

static tv loop_changed(tpl_rt *rt, tv self, const tpl_args *a) {
    tv_list *l = tpl_list(rt, a->n);
    for (size_t i = 0; i < a->n; i++) l->v[i] = a->pos[i];
    l->n = a->n;
    tv cur = tv_list_v(l);
    tv_loop *L = self.loop;
    if (!L->changed_init || !tv_eq(L->last_changed, cur)) {
        L->changed_init = true;
        L->last_changed = cur;
        return tv_bool(true);
    }
    return tv_bool(false);
}

static tv loop_attr(tpl_rt *rt, tv_loop *L, const char *name) {
    int64_t n = (int64_t)L->items->n, i = (int64_t)L->index0;
    tv self = { .kind = TV_LOOP };
    self.loop = L;
    if (!strcmp(name, "index")) return tv_int(i + 1);
    if (!strcmp(name, "index0")) return tv_int(i);
    if (!strcmp(name, "first")) return tv_bool(i == 0);
    if (!strcmp(name, "last")) return tv_bool(i == n - 1);
    if (!strcmp(name, "length")) return tv_int(n);
    if (!strcmp(name, "revindex")) return tv_int(n - i);
    if (!strcmp(name, "revindex0")) return tv_int(n - i - 1);
    if (!strcmp(name, "depth")) return tv_int(L->depth0 + 1);
    if (!strcmp(name, "depth0")) return tv_int(L->depth0);
    if (!strcmp(name, "previtem")) return i > 0 ? L->items->v[i - 1] : undef_fmt(rt, "there is no previous item");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? L->items->v[i + 1] : undef_fmt(rt, "there is no next item");
    if (!strcmp(name, "cycle")) return builtin_value(rt, "cycle", loop_cycle, self, TF_BUILTIN);
    if (!strcmp(name, "changed")) return builtin_value(rt, "changed", loop_changed, self, TF_BUILTIN);
    return undef_fmt(rt, "'LoopContext' object has no attribute '%s'", name);
}

/* ---- expressions --------------------------------------------------------------------- */
static tv eval(tpl_rt *rt, const tpl_node *nd);
static void exec_body(tpl_rt *rt, const tpl_nodes *body);

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Every evaluation step counts; the clock is read every 64 steps (vDSO, ~20 ns), so a render that
 * stays within the other limits but does heavy work per step still ends. */
static void depth_push(tpl_rt *rt) {
    if ((++rt->tick & 63) == 0 && rt->deadline > 0 && mono_now() > rt->deadline)
        tpl_raise(rt, Q_ERR_LIMIT, "TimeoutError", "template took longer than its time limit");
    if (++rt->eval_depth > TPL_MAX_EVAL_DEPTH)
        tpl_raise(rt, Q_ERR_LIMIT, "RecursionError", "template nested deeper than %d levels", TPL_MAX_EVAL_DEPTH);
}

static void eval_args(tpl_rt *rt, const tpl_node *nd, tpl_args *a, tv first, bool has_first) {
    size_t extra = has_first ? 1 : 0;
    tv *pos = tpl_alloc(rt, (nd->args.n + extra + 1) * sizeof *pos);
    if (has_first) pos[0] = first;
    for (size_t i = 0; i < nd->args.n; i++) pos[i + extra] = eval(rt, nd->args.v[i]);
    tv *kw = tpl_alloc(rt, (nd->kwvals.n + 1) * sizeof *kw);
    for (size_t i = 0; i < nd->kwvals.n; i++) kw[i] = eval(rt, nd->kwvals.v[i]);
    a->n = nd->args.n + extra;
    a->pos = pos;
    a->nkw = nd->kwvals.n;
    a->kwnames = nd->kwnames;
    a->kw = kw;
}

tv tpl_apply_filter(tpl_rt *rt, const char *name, tv v, const tpl_args *a) {
    const tpl_builtin *f = tpl_filter_find(name);
    if (!f) tpl_raise(rt, Q_ERR_UNSUPPORTED, "TemplateAssertionError", "No filter named '%s'.", name);
    return f->fn(rt, v, a);
}

bool tpl_apply_test(tpl_rt *rt, const char *name, tv v, const tpl_args *a) {
    const tpl_test *t = tpl_test_find(name);
    if (!t) tpl_raise(rt, Q_ERR_UNSUPPORTED, "TemplateAssertionError", "No test named '%s'.", name);
    return t->fn(rt, v, a);
}

/* Evaluates a filter chain; the innermost filter (a == NULL) receives `input`. */
static tv eval_filter(tpl_rt *rt, const tpl_node *nd, tv input) {
    depth_push(rt);
    tv v;
    if (!nd->a) v = input;
    else if (nd->a->kind == N_FILTER) v = eval_filter(rt, nd->a, input);
    else v = eval(rt, nd->a);
    tpl_args a;
    eval_args(rt, nd, &a, tv_undef(NULL), false);
    rt->pos = nd->pos;
    tv r = tpl_apply_filter(rt, nd->name, v, &a);
    rt->eval_depth--;
    return r;
}

static bool contains(tpl_rt *rt, tv container, tv item) {
    switch ((tv_kind)container.kind) {
    case TV_STR:
        if (item.kind != TV_STR)
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'in <string>' requires string as left operand, not %s", tv_type_name(item));
        return item.s.n == 0 || memmem(container.s.p, container.s.n, item.s.p, item.s.n) != NULL;
    case TV_DICT:
        if ((item.kind == TV_LIST && !item.tuple) || item.kind == TV_DICT)
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unhashable type: '%s'", tv_type_name(item));
        return tv_dict_get(container.d, item) != NULL;
    case TV_UNDEFINED:
        return false;
    case TV_LIST:
    case TV_GEN: {
        tv_list *l = tpl_iterate(rt, container);
        for (size_t i = 0; i < l->n; i++)
            if (tv_eq(l->v[i], item)) return true;
        return false;
    }
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "argument of type '%s' is not iterable", tv_type_name(container));
    }
}

static const char *const op_text[OP_COUNT] = {
    [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/", [OP_FLOORDIV] = "//",
    [OP_MOD] = "%", [OP_POW] = "**", [OP_EQ] = "==", [OP_NE] = "!=", [OP_LT] = "<",
    [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=", [OP_IN] = "in", [OP_NOTIN] = "not in",
};

static bool compare(tpl_rt *rt, tpl_op op, tv l, tv r) {
    switch (op) {
    case OP_EQ: return tv_eq(l, r);
    case OP_NE: return !tv_eq(l, r);
    case OP_IN: return contains(rt, r, l);
    case OP_NOTIN: return !contains(rt, r, l);
    default: break;
    }
    if (l.kind == TV_UNDEFINED) raise_undefined(rt, l);
    if (r.kind == TV_UNDEFINED) raise_undefined(rt, r);
    bool ok;
    int c = tv_cmp(l, r, &ok);
    if (!ok)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'%s' not supported between instances of '%s' and '%s'",
                  op_text[op], tv_type_name(l), tv_type_name(r));
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default:    return c >= 0;
    }
}

static tv repeat(tpl_rt *rt, tv seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.kind == TV_STR) {
        if (seq.s.n && (uint64_t)times > rt->max_output / seq.s.n)
            tpl_raise(rt, Q_ERR_LIMIT, "OutputTooLarge", "string repetition longer than %zu bytes", rt->max_output);
        tpl_sb b;
        tpl_sb_init_rt(rt, &b);
        for (int64_t i = 0; i < times; i++) tpl_sb_put(&b, seq.s.p, seq.s.n);
        tpl_sb_check(rt, &b);
        return tpl_sb_str(&b);
    }
    if (seq.l->n && (uint64_t)times > TPL_MAX_SEQ / seq.l->n)
        tpl_raise(rt, Q_ERR_LIMIT, "MemoryError", "sequence longer than %d items", TPL_MAX_SEQ);
    tv_list *l = tpl_list(rt, seq.l->n * (size_t)times);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq.l->n; k++) l->v[l->n++] = seq.l->v[k];
    tv r = tv_list_v(l);
    r.tuple = seq.tuple;
    return r;
}

static _Noreturn void bad_operands(tpl_rt *rt, tpl_op op, tv l, tv r) {
    if (op == OP_ADD && l.kind == TV_STR)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "can only concatenate str (not \"%s\") to str", tv_type_name(r));
    if (op == OP_ADD && l.kind == TV_LIST)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "can only concatenate %s (not \"%s\") to %s", tv_type_name(l),
                  tv_type_name(r), tv_type_name(l));
    tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unsupported operand type(s) for %s: '%s' and '%s'", op_text[op],
              tv_type_name(l), tv_type_name(r));
}

static int64_t as_int(tv v) { return v.kind == TV_BOOL ? (int64_t)v.b : v.i; }

static tv arith(tpl_rt *rt, tpl_op op, tv l, tv r) {
    if (l.kind == TV_UNDEFINED) raise_undefined(rt, l);
    if (r.kind == TV_UNDEFINED) raise_undefined(rt, r);
    if (tv_is_num(l) && tv_is_num(r)) {
        bool ints = l.kind != TV_FLOAT && r.kind != TV_FLOAT;
        int64_t a = as_int(l), b = as_int(r), res;
        double x = tv_num(l), y = tv_num(r);
        switch (op) {
        case OP_ADD:
            if (ints && !__builtin_add_overflow(a, b, &res)) return tv_int(res);
            return tv_float(x + y);
        case OP_SUB:
            if (ints && !__builtin_sub_overflow(a, b, &res)) return tv_int(res);
            return tv_float(x - y);
        case OP_MUL:
            if (ints && !__builtin_mul_overflow(a, b, &res)) return tv_int(res);
            return tv_float(x * y);
        case OP_DIV:
            if (y == 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "division by zero");
            return tv_float(x / y);
        case OP_FLOORDIV:
        case OP_MOD:
            if (ints) {
                if (b == 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "integer division or modulo by zero");
                if (b == -1) {
                    if (op == OP_MOD) return tv_int(0);
                    if (a == INT64_MIN) return tv_float(-(double)a);
                    return tv_int(-a);
                }
                int64_t q = a / b, m = a % b;
                if (m != 0 && ((m < 0) != (b < 0))) { q--; m += b; }
                return tv_int(op == OP_MOD ? m : q);
            }
            if (y == 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "float modulo");
            {
                /* Python's float floor division and modulo. */
                double m = fmod(x, y), div = (x - m) / y;
                if (m != 0 && ((y < 0) != (m < 0))) { m += y; div -= 1.0; }
                if (op == OP_MOD) return tv_float(m != 0 ? m : copysign(0.0, y));
                double fd = floor(div);
                if (div - fd > 0.5) fd += 1.0;
                return tv_float(fd);
            }
        case OP_POW:
            if (ints && b >= 0) {
                int64_t acc = 1, base = a;
                int64_t e = b;
                bool ovf = false;
                while (e > 0 && !ovf) {
                    if (e & 1) ovf |= __builtin_mul_overflow(acc, base, &acc);
                    e >>= 1;
                    if (e) ovf |= __builtin_mul_overflow(base, base, &base);
                }
                if (!ovf) return tv_int(acc);
            }
            if (x == 0 && y < 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "0.0 cannot be raised to a negative power");
            return tv_float(pow(x, y));
        default:
            break;
        }
    }
    switch (op) {
    case OP_ADD:
        if (l.kind == TV_STR && r.kind == TV_STR) {
            tpl_sb b;
            tpl_sb_init_rt(rt, &b);
            tpl_sb_put(&b, l.s.p, l.s.n);
            tpl_sb_put(&b, r.s.p, r.s.n);
            tpl_sb_check(rt, &b);
            return tpl_sb_str(&b);
        }
        if (l.kind == TV_LIST && r.kind == TV_LIST && l.tuple == r.tuple) {
            tv_list *n = tpl_list(rt, l.l->n + r.l->n);
            memcpy(n->v, l.l->v, l.l->n * sizeof(tv));
            memcpy(n->v + l.l->n, r.l->v, r.l->n * sizeof(tv));
            n->n = l.l->n + r.l->n;
            tv res = tv_list_v(n);
            res.tuple = l.tuple;
            return res;
        }
        break;
    case OP_MUL:
        if ((l.kind == TV_STR || l.kind == TV_LIST) && (r.kind == TV_INT || r.kind == TV_BOOL)) return repeat(rt, l, as_int(r));
        if ((r.kind == TV_STR || r.kind == TV_LIST) && (l.kind == TV_INT || l.kind == TV_BOOL)) return repeat(rt, r, as_int(l));
        break;
    case OP_MOD:
        if (l.kind == TV_STR) return tpl_str_format_percent(rt, l, r);
        break;
    default:
        break;
    }
    bad_operands(rt, op, l, r);
}

/* One evaluator per expression node kind, dispatched through eval_table. */
static tv ev_const(tpl_rt *rt, const tpl_node *nd) { (void)rt; return nd->val; }
static tv ev_name(tpl_rt *rt, const tpl_node *nd) { return lookup_name(rt, nd->name); }

static tv ev_getattr(tpl_rt *rt, const tpl_node *nd) {
    tv obj = eval(rt, nd->a);
    rt->pos = nd->pos;
    return tpl_getattr(rt, obj, nd->name);
}

static tv ev_getitem(tpl_rt *rt, const tpl_node *nd) {
    tv obj = eval(rt, nd->a);
    tv key = eval(rt, nd->b);
    rt->pos = nd->pos;
    return tpl_getitem(rt, obj, key);
}

static tv ev_slice(tpl_rt *rt, const tpl_node *nd) {
    tv obj = eval(rt, nd->a);
    tv s = nd->b ? eval(rt, nd->b) : tv_none();
    tv e = nd->c ? eval(rt, nd->c) : tv_none();
    tv st = nd->d ? eval(rt, nd->d) : tv_none();
    rt->pos = nd->pos;
    return do_slice(rt, obj, s, e, st);
}

static tv ev_call(tpl_rt *rt, const tpl_node *nd) {
    tv fn = eval(rt, nd->a);
    tpl_args a;
    eval_args(rt, nd, &a, tv_undef(NULL), false);
    rt->pos = nd->pos;
    return tpl_call(rt, fn, &a);
}

static tv ev_filter(tpl_rt *rt, const tpl_node *nd) { return eval_filter(rt, nd, tv_undef(NULL)); }

static tv ev_test(tpl_rt *rt, const tpl_node *nd) {
    tv v = eval(rt, nd->a);
    tpl_args a;
    eval_args(rt, nd, &a, tv_undef(NULL), false);
    rt->pos = nd->pos;
    bool r = tpl_apply_test(rt, nd->name, v, &a);
    return tv_bool(nd->flag ? !r : r);
}

static tv ev_binop(tpl_rt *rt, const tpl_node *nd) {
    tv l = eval(rt, nd->a);
    tv r = eval(rt, nd->b);
    rt->pos = nd->pos;
    return arith(rt, (tpl_op)nd->op, l, r);
}

static tv ev_sign(tpl_rt *rt, const tpl_node *nd) {
    tv v = eval(rt, nd->a);
    rt->pos = nd->pos;
    if (v.kind == TV_UNDEFINED) raise_undefined(rt, v);
    if (v.kind == TV_FLOAT) return tv_float(nd->kind == N_NEG ? -v.f : v.f);
    if (v.kind == TV_INT || v.kind == TV_BOOL) {
        int64_t i = as_int(v);
        if (nd->kind == N_POS) return tv_int(i);
        if (i == INT64_MIN) return tv_float(-(double)i);
        return tv_int(-i);
    }
    tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "bad operand type for unary %s: '%s'", nd->kind == N_NEG ? "-" : "+", tv_type_name(v));
}

static tv ev_not(tpl_rt *rt, const tpl_node *nd) { return tv_bool(!tv_truthy(eval(rt, nd->a))); }

/* Python's and/or return an operand, not a bool. */
static tv ev_and(tpl_rt *rt, const tpl_node *nd) {
    tv l = eval(rt, nd->a);
    return tv_truthy(l) ? eval(rt, nd->b) : l;
}

static tv ev_or(tpl_rt *rt, const tpl_node *nd) {
    tv l = eval(rt, nd->a);
    return tv_truthy(l) ? l : eval(rt, nd->b);
}

static tv ev_compare(tpl_rt *rt, const tpl_node *nd) {
    tv l = eval(rt, nd->a);
    for (size_t i = 0; i < nd->args.n; i++) {
        tv r = eval(rt, nd->args.v[i]);
        rt->pos = nd->pos;
        if (!compare(rt, (tpl_op)nd->ops[i], l, r)) return tv_bool(false);
        l = r;
    }
    return tv_bool(true);
}

static tv ev_concat(tpl_rt *rt, const tpl_node *nd) {
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    for (size_t i = 0; i < nd->args.n; i++) tv_str_append(&b, eval(rt, nd->args.v[i]));
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv ev_cond(tpl_rt *rt, const tpl_node *nd) {
    if (tv_truthy(eval(rt, nd->a))) return eval(rt, nd->b);
    return nd->c ? eval(rt, nd->c) : undef_fmt(rt, "the inline if-expression evaluated to false and no else section was defined.");
}

static tv ev_list(tpl_rt *rt, const tpl_node *nd) {
    tv_list *l = tpl_list(rt, nd->args.n);
    for (size_t i = 0; i < nd->args.n; i++) l->v[i] = eval(rt, nd->args.v[i]);
    l->n = nd->args.n;
    tv r = tv_list_v(l);
    r.tuple = nd->kind == N_TUPLE;
    return r;
}

static tv ev_dict(tpl_rt *rt, const tpl_node *nd) {
    tv_dict *d = tpl_dict(rt, nd->args.n);
    for (size_t i = 0; i < nd->args.n; i++) {
        tv k = eval(rt, nd->args.v[i]);
        tv v = eval(rt, nd->args2.v[i]);
        if ((k.kind == TV_LIST && !k.tuple) || k.kind == TV_DICT)
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unhashable type: '%s'", tv_type_name(k));
        tpl_dict_set(rt, d, k, v);
    }
    return tv_dict_v(d);
}

typedef tv (*eval_fn)(tpl_rt *rt, const tpl_node *nd);

/* Statement kinds have no entry: the parser never puts them in expression position. */
static const eval_fn eval_table[N_KIND_COUNT] = {
    [N_CONST] = ev_const,     [N_NAME] = ev_name,       [N_GETATTR] = ev_getattr,
    [N_GETITEM] = ev_getitem, [N_SLICE] = ev_slice,     [N_CALL] = ev_call,
    [N_FILTER] = ev_filter,   [N_TEST] = ev_test,       [N_BINOP] = ev_binop,
    [N_NEG] = ev_sign,        [N_POS] = ev_sign,        [N_NOT] = ev_not,
    [N_AND] = ev_and,         [N_OR] = ev_or,           [N_COMPARE] = ev_compare,
    [N_CONCAT] = ev_concat,   [N_COND] = ev_cond,       [N_LIST] = ev_list,
    [N_TUPLE] = ev_list,      [N_DICT] = ev_dict,
};

static tv eval(tpl_rt *rt, const tpl_node *nd) {
    Q_ASSERT(nd->kind < N_KIND_COUNT && eval_table[nd->kind]);
    depth_push(rt);
    rt->pos = nd->pos;
    tv v = eval_table[nd->kind](rt, nd);
    rt->eval_depth--;
    return v;
}

/* ---- calls and macros ------------------------------------------------------------------- */
static tv capture_body(tpl_rt *rt, const tpl_nodes *body) {
    tpl_sb *saved = rt->out;
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    rt->out = &b;
    exec_body(rt, body);
    rt->out = saved;
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv call_macro(tpl_rt *rt, const tv_func *f, const tpl_args *a) {
    const tpl_node *m = f->macro;
    if (++rt->call_depth > TPL_MAX_CALL_DEPTH)
        tpl_raise(rt, Q_ERR_LIMIT, "RecursionError", "macro calls nested deeper than %d", TPL_MAX_CALL_DEPTH);
    tpl_scope *saved = rt->scope;
    tpl_scope *s = scope_new(rt, f->closure);
    rt->scope = s;
    size_t np = m->args.n;
    bool *bound = tpl_alloc(rt, np + 1);
    for (size_t i = 0; i < np && i < a->n; i++) {
        scope_set(rt, s, m->args.v[i]->name, a->pos[i]);
        bound[i] = true;
    }
    tv_list *varargs = tpl_list(rt, 0);
    for (size_t i = np; i < a->n; i++) tpl_list_push(rt, varargs, a->pos[i]);
    tv_dict *kwargs = tpl_dict(rt, 0);
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < np && strcmp(m->args.v[i]->name, a->kwnames[k])) i++;
        if (i < np) {
            if (bound[i]) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "macro '%s' got multiple values for argument '%s'", m->name, a->kwnames[k]);
            scope_set(rt, s, m->args.v[i]->name, a->kw[k]);
            bound[i] = true;
        } else {
            tpl_dict_set(rt, kwargs, tpl_cstr(a->kwnames[k]), a->kw[k]);
        }
    }
    /* All parameters are local before any default runs: a default naming its own
     * parameter sees it undefined, one naming an earlier parameter sees its value. */
    for (size_t i = 0; i < np; i++)
        if (!bound[i]) scope_set(rt, s, m->args.v[i]->name, undef_fmt(rt, "'%s' is undefined", m->args.v[i]->name));
    for (size_t i = 0; i < np; i++) {
        if (bound[i]) continue;
        tv v = m->args2.v[i] ? eval(rt, m->args2.v[i]) : undef_fmt(rt, "parameter '%s' was not provided", m->args.v[i]->name);
        scope_set(rt, s, m->args.v[i]->name, v);
    }
    tv vv = tv_list_v(varargs);
    vv.tuple = true;
    scope_set(rt, s, "varargs", vv);
    scope_set(rt, s, "kwargs", tv_dict_v(kwargs));
    tv out = capture_body(rt, &m->body);
    rt->ctl = CTL_NONE;
    rt->scope = saved;
    rt->call_depth--;
    return out;
}

tv tpl_call(tpl_rt *rt, tv fn, const tpl_args *a) {
    if (fn.kind == TV_UNDEFINED) raise_undefined(rt, fn);
    if (fn.kind != TV_FUNC) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'%s' object is not callable", tv_type_name(fn));
    const tv_func *f = fn.fn;
    switch ((tv_func_kind)f->kind) {
    case TF_BUILTIN: return f->fn(rt, f->self, a);
    case TF_MACRO:   return call_macro(rt, f, a);
    case TF_UNSAFE:
        tpl_raise(rt, Q_ERR_FORMAT, "SecurityError", "access to attribute '%s' of '%s' object is unsafe.", f->name,
                  tv_type_name(f->self));
    }
    Q_ASSERT(!"bad function kind");
    return tv_none();
}

/* ---- statements ------------------------------------------------------------------------ */
static void assign(tpl_rt *rt, const tpl_node *target, tv v) {
    rt->pos = target->pos;
    switch ((tpl_node_kind)target->kind) {
    case N_NAME:
        scope_set(rt, rt->scope, target->name, v);
        return;
    case N_GETATTR: {
        tv ns = lookup_name(rt, target->a->name);
        if (ns.kind != TV_NS)
            tpl_raise(rt, Q_ERR_FORMAT, "TemplateRuntimeError", "cannot assign attribute on non-namespace object");
        tpl_dict_set(rt, ns.d, tpl_cstr(target->name), v);
        return;
    }
    case N_TUPLE: {
        tv_list *items = tpl_iterate(rt, v);
        if (items->n != target->args.n)
            tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "%s values to unpack (expected %zu, got %zu)",
                      items->n > target->args.n ? "too many" : "not enough", target->args.n, items->n);
        for (size_t i = 0; i < items->n; i++) assign(rt, target->args.v[i], items->v[i]);
        return;
    }
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TemplateSyntaxError", "cannot assign to this expression");
    }
}

static void emit(tpl_rt *rt, tv v) {
    tv_str_append(rt->out, v);
    tpl_sb_check(rt, rt->out);
}

static void exec_for(tpl_rt *rt, const tpl_node *nd) {
    tv seq = eval(rt, nd->b);
    rt->pos = nd->pos;
    tv_list *items = tpl_iterate(rt, seq);
    tpl_scope *outer = rt->scope;
    if (nd->d) {  /* {% for x in xs if cond %}: filter first, so loop.length counts survivors */
        tv_list *kept = tpl_list(rt, 0);
        for (size_t i = 0; i < items->n; i++) {
            if (++rt->iterations > TPL_MAX_ITERATIONS)
                tpl_raise(rt, Q_ERR_LIMIT, "LimitError", "more than %d loop iterations", TPL_MAX_ITERATIONS);
            rt->scope = scope_new(rt, outer);
            assign(rt, nd->a, items->v[i]);
            bool keep = tv_truthy(eval(rt, nd->d));
            rt->scope = outer;
            if (keep) tpl_list_push(rt, kept, items->v[i]);
        }
        items = kept;
    }
    if (items->n == 0) {
        exec_body(rt, &nd->else2);
        return;
    }
    tv_loop *L = tpl_alloc(rt, sizeof *L);
    L->items = items;
    L->depth0 = 0;  /* depth only grows in recursive loops, which are not supported */
    tv lv = { .kind = TV_LOOP };
    lv.loop = L;
    for (size_t i = 0; i < items->n; i++) {
        if (++rt->iterations > TPL_MAX_ITERATIONS)
            tpl_raise(rt, Q_ERR_LIMIT, "LimitError", "more than %d loop iterations", TPL_MAX_ITERATIONS);
        L->index0 = i;
        rt->scope = scope_new(rt, outer);
        scope_set(rt, rt->scope, "loop", lv);
        assign(rt, nd->a, items->v[i]);
        exec_body(rt, &nd->body);
        rt->scope = outer;
        if (rt->ctl == CTL_BREAK) { rt->ctl = CTL_NONE; break; }
        rt->ctl = CTL_NONE;
    }
}

/* One executor per statement kind, dispatched through exec_table. */
static void ex_data(tpl_rt *rt, const tpl_node *nd) {
    tpl_sb_put(rt->out, nd->val.s.p, nd->val.s.n);
    tpl_sb_check(rt, rt->out);
}

static void ex_output(tpl_rt *rt, const tpl_node *nd) { emit(rt, eval(rt, nd->a)); }

static void ex_if(tpl_rt *rt, const tpl_node *nd) {
    if (tv_truthy(eval(rt, nd->a))) exec_body(rt, &nd->body);
    else exec_body(rt, &nd->else2);
}

static void ex_set(tpl_rt *rt, const tpl_node *nd) { assign(rt, nd->a, eval(rt, nd->b)); }

static void ex_setblock(tpl_rt *rt, const tpl_node *nd) {
    tv v = capture_body(rt, &nd->body);
    if (nd->d) v = eval_filter(rt, nd->d, v);
    assign(rt, nd->a, v);
}

static void ex_filterblock(tpl_rt *rt, const tpl_node *nd) {
    tv v = capture_body(rt, &nd->body);
    emit(rt, eval_filter(rt, nd->d, v));
}

static void ex_macro(tpl_rt *rt, const tpl_node *nd) {
    tv_func *f = tpl_alloc(rt, sizeof *f);
    f->kind = TF_MACRO;
    f->name = nd->name;
    f->macro = nd;
    f->closure = rt->scope;  /* lexical scoping: the macro sees where it was defined */
    tv v = { .kind = TV_FUNC };
    v.fn = f;
    scope_set(rt, rt->scope, nd->name, v);
}

static void ex_break(tpl_rt *rt, const tpl_node *nd) { (void)nd; rt->ctl = CTL_BREAK; }
static void ex_continue(tpl_rt *rt, const tpl_node *nd) { (void)nd; rt->ctl = CTL_CONTINUE; }
static void ex_scope(tpl_rt *rt, const tpl_node *nd) { exec_body(rt, &nd->body); }

typedef void (*exec_fn)(tpl_rt *rt, const tpl_node *nd);

/* Expression kinds have no entry: the parser only puts statements in bodies. */
static const exec_fn exec_table[N_KIND_COUNT] = {
    [N_DATA] = ex_data,         [N_OUTPUT] = ex_output,           [N_FOR] = exec_for,
    [N_IF] = ex_if,             [N_SET] = ex_set,                 [N_SETBLOCK] = ex_setblock,
    [N_MACRO] = ex_macro,       [N_FILTERBLOCK] = ex_filterblock, [N_BREAK] = ex_break,
    [N_CONTINUE] = ex_continue, [N_SCOPE] = ex_scope,
};

static void exec_stmt(tpl_rt *rt, const tpl_node *nd) {
    Q_ASSERT(nd->kind < N_KIND_COUNT && exec_table[nd->kind]);
    rt->pos = nd->pos;
    exec_table[nd->kind](rt, nd);
}

static void exec_body(tpl_rt *rt, const tpl_nodes *body) {
    depth_push(rt);
    for (size_t i = 0; i < body->n && rt->ctl == CTL_NONE; i++) exec_stmt(rt, body->v[i]);
    rt->eval_depth--;
}

/* ---- entry ------------------------------------------------------------------------------ */
void tpl_rt_init(tpl_rt *rt, const tpl_program *prog, size_t mem_limit, size_t max_output, double max_seconds,
                 q_error *err) {
    memset(rt, 0, sizeof *rt);
    rt->deadline = max_seconds > 0 ? mono_now() + max_seconds : 0;
    tpl_arena_init(&rt->arena, mem_limit);
    rt->prog = prog;
    rt->max_output = max_output;
    rt->err = err;
    rt->globals = tpl_arena_alloc(&rt->arena, sizeof *rt->globals);
    rt->scope = rt->globals;
}

bool tpl_rt_define(tpl_rt *rt, const char *name, tv v) {
    tpl_scope *s = rt->globals;
    if (!s) return false;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const char **nn = tpl_arena_alloc(&rt->arena, cap * sizeof *nn);
        tv *nv = tpl_arena_alloc(&rt->arena, cap * sizeof *nv);
        if (!nn || !nv) return false;
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) { s->vals[i] = v; return true; }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
    return true;
}

q_status tpl_rt_exec(tpl_rt *rt, char **out, size_t *out_len) {
    tpl_sb b;
    tpl_sb_init(&b, &rt->arena, rt->max_output);
    rt->out = &b;
    /* The template's own top-level scope sits over the render variables. */
    if (setjmp(rt->jb)) return rt->status;
    if (!rt->globals) tpl_nomem(rt);
    rt->scope = scope_new(rt, rt->globals);
    exec_body(rt, &rt->prog->body);
    tpl_sb_check(rt, &b);
    char *s = malloc(b.n + 1);
    if (!s) return q_fail(rt->err, Q_ERR_NOMEM, "out of memory for the rendered text");
    if (b.n) memcpy(s, b.p, b.n);
    s[b.n] = 0;
    *out = s;
    if (out_len) *out_len = b.n;
    return Q_OK;
}

void tpl_rt_free(tpl_rt *rt) { tpl_arena_free(&rt->arena); }

/* globals.c — the template's global functions, as a table sorted by name:
 * range, dict, namespace, raise_exception (transformers: raises TemplateError with the
 * message), strftime_now (transformers: formats the render's clock, rt->now, in the C
 * locale), joiner. cycler and lipsum are not provided. */
#include "template/eval.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t int_arg(tpl_rt *rt, tv v) {
    if (v.kind == TV_INT) return v.i;
    if (v.kind == TV_BOOL) return v.b;
    tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'%s' object cannot be interpreted as an integer", tv_type_name(v));
}

static tv g_range(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)self;
    int64_t start = 0, stop, step = 1;
    if (a->n == 0) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "range expected at least 1 argument, got 0");
    if (a->n == 1) stop = int_arg(rt, a->pos[0]);
    else {
        start = int_arg(rt, a->pos[0]);
        stop = int_arg(rt, a->pos[1]);
        if (a->n > 2) step = int_arg(rt, a->pos[2]);
    }
    if (step == 0) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "range() arg 3 must not be zero");
    /* Exact count in unsigned arithmetic (no int64 overflow at the extremes). */
    uint64_t cnt = 0, ustep = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
    if (step > 0 && start < stop) cnt = ((uint64_t)stop - (uint64_t)start - 1) / ustep + 1;
    if (step < 0 && start > stop) cnt = ((uint64_t)start - (uint64_t)stop - 1) / ustep + 1;
    if (cnt > TPL_MAX_SEQ)
        tpl_raise(rt, Q_ERR_LIMIT, "OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", TPL_MAX_SEQ);
    tv_list *l = tpl_list(rt, (size_t)cnt);
    for (uint64_t k = 0; k < cnt; k++) l->v[k] = tv_int((int64_t)((uint64_t)start + k * (uint64_t)step));
    l->n = (size_t)cnt;
    return tv_list_v(l);
}

static tv kwargs_dict(tpl_rt *rt, const tpl_args *a) {
    tv_dict *d = tpl_dict(rt, a->nkw);
    for (size_t i = 0; i < a->n; i++) {
        tv m = a->pos[i];
        if (m.kind != TV_DICT && m.kind != TV_NS)
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'%s' object is not a mapping", tv_type_name(m));
        for (size_t k = 0; k < m.d->n; k++) tpl_dict_set(rt, d, m.d->keys[k], m.d->vals[k]);
    }
    for (size_t i = 0; i < a->nkw; i++) tpl_dict_set(rt, d, tpl_cstr(a->kwnames[i]), a->kw[i]);
    return tv_dict_v(d);
}

static tv g_dict(tpl_rt *rt, tv self, const tpl_args *a) { (void)self; return kwargs_dict(rt, a); }

static tv g_namespace(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)self;
    tv v = kwargs_dict(rt, a);
    v.kind = TV_NS;
    return v;
}

static tv g_raise_exception(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)self;
    tv m = tpl_to_str(rt, tpl_arg(a, 0, "message", tpl_cstr("")));
    tpl_raise_template_error(rt, m.s.p, m.s.n);
}

static tv g_strftime_now(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)self;
    tv f = tpl_arg(a, 0, "format", tv_undef(NULL));
    if (f.kind != TV_STR) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "strftime_now() argument must be str");
    struct tm tm = rt->now;
    char buf[512];
    size_t n = f.s.n ? strftime(buf, sizeof buf, tpl_cz(rt, f), &tm) : 0;
    return tpl_str(rt, buf, n);
}

/* joiner(sep=", "): a callable returning "" the first time and sep afterwards. Its
 * state is a one-entry dict owned by the render arena. */
static tv joiner_call(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    (void)rt;
    tv *used = tv_dict_gets(self.d, "used");
    if (!used->b) { used->b = true; return tpl_cstr(""); }
    return *tv_dict_gets(self.d, "sep");
}

static tv g_joiner(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)self;
    tv_dict *st = tpl_dict(rt, 2);
    tpl_dict_set(rt, st, tpl_cstr("sep"), tpl_to_str(rt, tpl_arg(a, 0, "sep", tpl_cstr(", "))));
    tpl_dict_set(rt, st, tpl_cstr("used"), tv_bool(false));
    tv_func *f = tpl_alloc(rt, sizeof *f);
    f->kind = TF_BUILTIN;
    f->name = "joiner";
    f->fn = joiner_call;
    f->self = tv_dict_v(st);
    tv v = { .kind = TV_FUNC };
    v.fn = f;
    return v;
}

/* Sorted by name for bsearch. */
static const tpl_builtin global_table[] = {
    { "dict",            g_dict },
    { "joiner",          g_joiner },
    { "namespace",       g_namespace },
    { "raise_exception", g_raise_exception },
    { "range",           g_range },
    { "strftime_now",    g_strftime_now },
};

static int global_cmp(const void *key, const void *e) { return strcmp(key, ((const tpl_builtin *)e)->name); }

const tpl_builtin *tpl_global_find(const char *name) {
    return bsearch(name, global_table, Q_ARRAY_LEN(global_table), sizeof global_table[0], global_cmp);
}

/* tests.c — jinja2's builtin tests ("x is defined"), as a table sorted by name.
 * Each is `bool t(rt, value, args)` with jinja2 3.1's semantics; e.g. undefined is
 * iterable and a sequence (jinja2's Undefined has __iter__ and __len__), a dict is a
 * sequence, and True is a number but not an integer. */
#include "template/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static tv arg0(const tpl_args *a) { return tpl_arg(a, 0, NULL, tv_undef(NULL)); }

static bool t_boolean(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_BOOL; }
static bool t_callable(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_FUNC || v.kind == TV_UNDEFINED; }
static bool t_defined(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind != TV_UNDEFINED; }
static bool t_undefined(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_UNDEFINED; }
static bool t_none(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_NONE; }
static bool t_false(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_BOOL && !v.b; }
static bool t_true(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_BOOL && v.b; }
static bool t_integer(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_INT; }
static bool t_float(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_FLOAT; }
static bool t_number(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return tv_is_num(v); }
static bool t_string(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_STR; }
static bool t_mapping(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)a; return v.kind == TV_DICT; }

static bool t_iterable(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)rt; (void)a;
    return v.kind == TV_STR || v.kind == TV_LIST || v.kind == TV_DICT || v.kind == TV_GEN || v.kind == TV_UNDEFINED;
}

static bool t_sequence(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)rt; (void)a;
    return v.kind == TV_STR || v.kind == TV_LIST || v.kind == TV_DICT || v.kind == TV_UNDEFINED;
}

static bool t_escaped(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; (void)v; (void)a; return false; }

static bool t_eq(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; return tv_eq(v, arg0(a)); }
static bool t_ne(tpl_rt *rt, tv v, const tpl_args *a) { (void)rt; return !tv_eq(v, arg0(a)); }

static int order(tpl_rt *rt, tv v, const tpl_args *a) {
    tv o = arg0(a);
    bool ok;
    int c = tv_cmp(v, o, &ok);
    if (!ok)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "comparison not supported between instances of '%s' and '%s'",
                  tv_type_name(v), tv_type_name(o));
    return c;
}

static bool t_lt(tpl_rt *rt, tv v, const tpl_args *a) { return order(rt, v, a) < 0; }
static bool t_le(tpl_rt *rt, tv v, const tpl_args *a) { return order(rt, v, a) <= 0; }
static bool t_gt(tpl_rt *rt, tv v, const tpl_args *a) { return order(rt, v, a) > 0; }
static bool t_ge(tpl_rt *rt, tv v, const tpl_args *a) { return order(rt, v, a) >= 0; }

static bool t_in(tpl_rt *rt, tv v, const tpl_args *a) {
    tv seq = arg0(a);
    if (seq.kind == TV_STR) {
        if (v.kind != TV_STR) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'in <string>' requires string as left operand");
        return v.s.n == 0 || memmem(seq.s.p, seq.s.n, v.s.p, v.s.n) != NULL;
    }
    if (seq.kind == TV_DICT) return tv_dict_get(seq.d, v) != NULL;
    tv_list *l = tpl_iterate(rt, seq);
    for (size_t i = 0; i < l->n; i++)
        if (tv_eq(l->v[i], v)) return true;
    return false;
}

/* value % d as Python computes it (floats allowed), for odd/even/divisibleby. */
static double py_mod(tpl_rt *rt, tv v, tv d) {
    if (!tv_is_num(v) || !tv_is_num(d))
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unsupported operand type(s) for %%: '%s' and '%s'", tv_type_name(v), tv_type_name(d));
    if (v.kind != TV_FLOAT && d.kind != TV_FLOAT) {
        int64_t x = v.kind == TV_BOOL ? v.b : v.i, y = d.kind == TV_BOOL ? d.b : d.i;
        if (y == 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "integer division or modulo by zero");
        if (y == -1) return 0;
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return (double)m;
    }
    double x = tv_num(v), y = tv_num(d);
    if (y == 0) tpl_raise(rt, Q_ERR_FORMAT, "ZeroDivisionError", "float modulo");
    double m = fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return m;
}

static bool t_odd(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return py_mod(rt, v, tv_int(2)) == 1; }
static bool t_even(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return py_mod(rt, v, tv_int(2)) == 0; }
static bool t_divisibleby(tpl_rt *rt, tv v, const tpl_args *a) { return py_mod(rt, v, arg0(a)) == 0; }

static bool t_sameas(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)rt;
    tv o = arg0(a);
    if (v.kind != o.kind) return false;
    switch ((tv_kind)v.kind) {
    case TV_NONE: case TV_UNDEFINED: return true;
    case TV_BOOL: return v.b == o.b;
    case TV_INT: return v.i == o.i && v.i >= -5 && v.i <= 256;   /* CPython's small-int cache */
    case TV_STR: return v.s.p == o.s.p && v.s.n == o.s.n;
    case TV_LIST: return v.l == o.l;
    case TV_DICT: case TV_NS: return v.d == o.d;
    default: return tv_eq(v, o);
    }
}

static bool t_lower(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    tv s = tpl_to_str(rt, v);
    tv l = tpl_str_case(rt, s, 0);
    tv u = tpl_str_case(rt, s, 1);
    return tv_eq(s, l) && !tv_eq(l, u);
}

static bool t_upper(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    tv s = tpl_to_str(rt, v);
    tv l = tpl_str_case(rt, s, 0);
    tv u = tpl_str_case(rt, s, 1);
    return tv_eq(s, u) && !tv_eq(l, u);
}

static bool t_filter(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    return v.kind == TV_STR && tpl_filter_find(tpl_cz(rt, v)) != NULL;
}

static bool t_test(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    return v.kind == TV_STR && tpl_test_find(tpl_cz(rt, v)) != NULL;
}

/* Sorted by name (strcmp order) for bsearch. */
static const tpl_test test_table[] = {
    { "!=",          t_ne },
    { "<",           t_lt },
    { "<=",          t_le },
    { "==",          t_eq },
    { ">",           t_gt },
    { ">=",          t_ge },
    { "boolean",     t_boolean },
    { "callable",    t_callable },
    { "defined",     t_defined },
    { "divisibleby", t_divisibleby },
    { "eq",          t_eq },
    { "equalto",     t_eq },
    { "escaped",     t_escaped },
    { "even",        t_even },
    { "false",       t_false },
    { "filter",      t_filter },
    { "float",       t_float },
    { "ge",          t_ge },
    { "greaterthan", t_gt },
    { "gt",          t_gt },
    { "in",          t_in },
    { "integer",     t_integer },
    { "iterable",    t_iterable },
    { "le",          t_le },
    { "lessthan",    t_lt },
    { "lower",       t_lower },
    { "lt",          t_lt },
    { "mapping",     t_mapping },
    { "ne",          t_ne },
    { "none",        t_none },
    { "number",      t_number },
    { "odd",         t_odd },
    { "sameas",      t_sameas },
    { "sequence",    t_sequence },
    { "string",      t_string },
    { "test",        t_test },
    { "true",        t_true },
    { "undefined",   t_undefined },
    { "upper",       t_upper },
};

static int test_cmp(const void *key, const void *e) { return strcmp(key, ((const tpl_test *)e)->name); }

const tpl_test *tpl_test_find(const char *name) {
    return bsearch(name, test_table, Q_ARRAY_LEN(test_table), sizeof test_table[0], test_cmp);
}

/* filters.c — jinja2's builtin filters, as a table sorted by name.
 *
 * Each filter is `tv f(rt, value, args)` with jinja2 3.1's semantics, including its
 * quirks: map/select/reject/selectattr/rejectattr/unique/items/batch return one-shot
 * generators (always truthy, not JSON-serialisable, no len()); tojson is the
 * transformers override (json.dumps with ensure_ascii=False, no HTML escaping).
 * Unknown filters raise at render time, as jinja2 does for filters in branches. */
#include "template/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tv mk_gen(tpl_rt *rt, tv_list *items) {
    tv_gen *g = tpl_alloc(rt, sizeof *g);
    g->items = items;
    tv v = { .kind = TV_GEN };
    v.g = g;
    return v;
}

static tv need_str(tpl_rt *rt, tv v) { return tpl_to_str(rt, v); }

static int64_t arg_int(tpl_rt *rt, tv v, const char *what) {
    if (v.kind == TV_INT) return v.i;
    if (v.kind == TV_BOOL) return v.b;
    if (v.kind == TV_FLOAT) return (int64_t)v.f;
    tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "%s must be an integer, not %s", what, tv_type_name(v));
}

/* Follows a dotted attribute path ("a.b", "items.0") with jinja2's getitem. */
static tv attr_path(tpl_rt *rt, tv item, tv path) {
    if (path.kind == TV_INT) return tpl_getitem(rt, item, path);
    tv p = need_str(rt, path);
    size_t i = 0;
    while (i <= p.s.n) {
        const char *dot = memchr(p.s.p + i, '.', p.s.n - i);
        size_t e = dot ? (size_t)(dot - p.s.p) : p.s.n;
        tv part = tv_strn(p.s.p + i, e - i);
        bool digits = part.s.n > 0;
        for (size_t k = 0; k < part.s.n; k++)
            if (part.s.p[k] < '0' || part.s.p[k] > '9') digits = false;
        if (digits && part.s.n < 18) part = tv_int(strtoll(tpl_cz(rt, part), NULL, 10));
        item = tpl_getitem(rt, item, part);
        if (!dot) break;
        i = e + 1;
    }
    return item;
}

/* ---- stable sort ------------------------------------------------------------------- */
typedef struct sort_key { tv key; tv item; } sort_key;

static int key_cmp(tpl_rt *rt, tv a, tv b) {
    bool ok;
    int c = tv_cmp(a, b, &ok);
    if (!ok)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'<' not supported between instances of '%s' and '%s'",
                  tv_type_name(a), tv_type_name(b));
    return c;
}

static void merge_sort(tpl_rt *rt, sort_key *v, sort_key *tmp, size_t n, bool reverse) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(rt, v, tmp, h, reverse);
    merge_sort(rt, v + h, tmp, n - h, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c = key_cmp(rt, v[j].key, v[i].key);
        /* Python's reverse sort keeps equal elements in their original order. */
        bool take_right = reverse ? c > 0 : c < 0;
        tmp[k++] = take_right ? v[j++] : v[i++];
    }
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static tv fold_case(tpl_rt *rt, tv v, bool case_sensitive) {
    return !case_sensitive && v.kind == TV_STR ? tpl_str_case(rt, v, 0) : v;
}

/* ---- filters ---------------------------------------------------------------------- */
static tv f_abs(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    if (v.kind == TV_INT) return v.i == INT64_MIN ? tv_float(-(double)v.i) : tv_int(v.i < 0 ? -v.i : v.i);
    if (v.kind == TV_BOOL) return tv_int(v.b);
    if (v.kind == TV_FLOAT) return tv_float(fabs(v.f));
    tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "bad operand type for abs(): '%s'", tv_type_name(v));
}

static tv f_attr(tpl_rt *rt, tv v, const tpl_args *a) {
    tv name = need_str(rt, tpl_arg(a, 0, "name", tpl_cstr("")));
    /* Attribute only: no fallback to dict items (jinja2's environment.getattr). */
    if (v.kind == TV_DICT) {
        tv_kind k = TV_DICT;
        bool unsafe;
        if (!tpl_method_find(k, tpl_cz(rt, name), &unsafe)) return tv_undef("no such attribute");
    }
    return tpl_getattr(rt, v, tpl_cz(rt, name));
}

static tv f_batch(tpl_rt *rt, tv v, const tpl_args *a) {
    int64_t n = arg_int(rt, tpl_arg(a, 0, "linecount", tv_int(1)), "linecount");
    if (n <= 0) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "batch size must be positive");
    bool fill = tpl_has_arg(a, 1, "fill_with");
    tv fv = tpl_arg(a, 1, "fill_with", tv_none());
    tv_list *items = tpl_iterate(rt, v), *out = tpl_list(rt, 0), *cur = NULL;
    for (size_t i = 0; i < items->n; i++) {
        if (!cur || (int64_t)cur->n == n) { cur = tpl_list(rt, 0); tpl_list_push(rt, out, tv_list_v(cur)); }
        tpl_list_push(rt, cur, items->v[i]);
    }
    if (cur && fill) while ((int64_t)cur->n < n) tpl_list_push(rt, cur, fv);
    return mk_gen(rt, out);
}

static tv f_capitalize(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tpl_str_case(rt, need_str(rt, v), 2); }

static tv f_center(tpl_rt *rt, tv v, const tpl_args *a) {
    tv s = need_str(rt, v);
    int64_t w = arg_int(rt, tpl_arg(a, 0, "width", tv_int(80)), "width");
    int64_t len = tpl_len(rt, s);
    if (w <= len) return s;
    if (w > (int64_t)rt->max_output) w = (int64_t)rt->max_output;
    int64_t pad = w - len, left = pad / 2 + (pad & w & 1);
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    for (int64_t i = 0; i < left; i++) tpl_sb_putc(&b, ' ');
    tpl_sb_put(&b, s.s.p, s.s.n);
    for (int64_t i = 0; i < pad - left; i++) tpl_sb_putc(&b, ' ');
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_default(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)rt;
    tv dv = tpl_arg(a, 0, "default_value", tpl_cstr(""));
    bool boolean = tv_truthy(tpl_arg(a, 1, "boolean", tv_bool(false)));
    if (v.kind == TV_UNDEFINED || (boolean && !tv_truthy(v))) return dv;
    return v;
}

static tv sorted_pairs(tpl_rt *rt, tv_list *pairs, int by, bool case_sensitive, bool reverse) {
    size_t n = pairs->n;
    sort_key *keys = tpl_alloc(rt, (n + 1) * sizeof *keys), *tmp = tpl_alloc(rt, (n + 1) * sizeof *tmp);
    for (size_t i = 0; i < n; i++) {
        keys[i].item = pairs->v[i];
        keys[i].key = fold_case(rt, pairs->v[i].l->v[by], case_sensitive);
    }
    merge_sort(rt, keys, tmp, n, reverse);
    tv_list *out = tpl_list(rt, n);
    for (size_t i = 0; i < n; i++) out->v[i] = keys[i].item;
    out->n = n;
    return tv_list_v(out);
}

static tv f_dictsort(tpl_rt *rt, tv v, const tpl_args *a) {
    if (v.kind != TV_DICT && v.kind != TV_NS)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "dictsort filter expects a mapping, not %s", tv_type_name(v));
    bool cs = tv_truthy(tpl_arg(a, 0, "case_sensitive", tv_bool(false)));
    tv by = tpl_arg(a, 1, "by", tpl_cstr("key"));
    bool reverse = tv_truthy(tpl_arg(a, 2, "reverse", tv_bool(false)));
    int pos = 0;
    if (by.kind == TV_STR && by.s.n == 5 && !memcmp(by.s.p, "value", 5)) pos = 1;
    else if (!(by.kind == TV_STR && by.s.n == 3 && !memcmp(by.s.p, "key", 3)))
        tpl_raise(rt, Q_ERR_FORMAT, "FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
    tv_list *pairs = tpl_list(rt, v.d->n);
    for (size_t i = 0; i < v.d->n; i++) pairs->v[i] = tpl_tuple2(rt, v.d->keys[i], v.d->vals[i]);
    pairs->n = v.d->n;
    return sorted_pairs(rt, pairs, pos, cs, reverse);
}

static tv html_escape(tpl_rt *rt, tv v) {
    tv s = need_str(rt, v);
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    for (size_t i = 0; i < s.s.n; i++) {
        switch (s.s.p[i]) {
        case '&': tpl_sb_put(&b, "&amp;", 5); break;
        case '<': tpl_sb_put(&b, "&lt;", 4); break;
        case '>': tpl_sb_put(&b, "&gt;", 4); break;
        case '"': tpl_sb_put(&b, "&#34;", 5); break;
        case '\'': tpl_sb_put(&b, "&#39;", 5); break;
        default: tpl_sb_putc(&b, s.s.p[i]);
        }
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_escape(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return html_escape(rt, v); }

static tv f_first(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    tv_list *l = tpl_iterate(rt, v);
    if (!l->n) return tv_undef("No first item, sequence was empty.");
    return l->v[0];
}

static bool parse_float_str(tv s, double *out) {
    char buf[128];
    size_t n = 0;
    for (size_t i = 0; i < s.s.n && n < sizeof buf - 1; i++)
        if (s.s.p[i] != '_') buf[n++] = s.s.p[i];
    buf[n] = 0;
    char *b = buf, *e;
    while (*b == ' ' || (*b >= '\t' && *b <= '\r')) b++;
    if (!*b) return false;
    errno = 0;
    double d = strtod(b, &e);
    while (*e == ' ' || (*e >= '\t' && *e <= '\r')) e++;
    if (*e) return false;
    *out = d;
    return true;
}

static tv f_float(tpl_rt *rt, tv v, const tpl_args *a) {
    tv dflt = tpl_arg(a, 0, "default", tv_float(0.0));
    if (v.kind == TV_UNDEFINED) tpl_raise(rt, Q_ERR_FORMAT, "UndefinedError", "%s", v.undef_name ? v.undef_name : "value is undefined");
    if (v.kind == TV_FLOAT) return v;
    if (v.kind == TV_INT || v.kind == TV_BOOL) return tv_float(tv_num(v));
    double d;
    if (v.kind == TV_STR && parse_float_str(v, &d)) return tv_float(d);
    return dflt;
}

static tv f_format(tpl_rt *rt, tv v, const tpl_args *a) {
    tv s = need_str(rt, v);
    if (a->nkw) {
        tv_dict *d = tpl_dict(rt, a->nkw);
        for (size_t i = 0; i < a->nkw; i++) tpl_dict_set(rt, d, tpl_cstr(a->kwnames[i]), a->kw[i]);
        return tpl_str_format_percent(rt, s, tv_dict_v(d));
    }
    tv_list *l = tpl_list(rt, a->n);
    for (size_t i = 0; i < a->n; i++) l->v[i] = a->pos[i];
    l->n = a->n;
    tv t = tv_list_v(l);
    t.tuple = true;
    return tpl_str_format_percent(rt, s, t);
}

static tv f_indent(tpl_rt *rt, tv v, const tpl_args *a) {
    /* jinja2 does `s += "\n"`: only a str survives that. */
    if (v.kind == TV_UNDEFINED) tpl_raise(rt, Q_ERR_FORMAT, "UndefinedError", "%s", v.undef_name ? v.undef_name : "value is undefined");
    if (v.kind == TV_LIST && !v.tuple && !v.view)  /* a list absorbs "\n", then has no splitlines */
        tpl_raise(rt, Q_ERR_FORMAT, "AttributeError", "'list' object has no attribute 'splitlines'");
    if (v.kind != TV_STR) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unsupported operand type(s) for +=: '%s' and 'str'", tv_type_name(v));
    tv s = v;
    tv w = tpl_arg(a, 0, "width", tv_int(4));
    bool first = tv_truthy(tpl_arg(a, 1, "first", tv_bool(false)));
    bool blank = tv_truthy(tpl_arg(a, 2, "blank", tv_bool(false)));
    tv ind;
    if (w.kind == TV_STR) ind = w;
    else {
        int64_t n = arg_int(rt, w, "width");
        if (n < 0) n = 0;
        if (n > 1000) n = 1000;
        char *sp = tpl_alloc(rt, (size_t)n + 1);
        memset(sp, ' ', (size_t)n);
        ind = tv_strn(sp, (size_t)n);
    }
    /* jinja2: lines = (s + "\n").splitlines(), i.e. s split at every line break
     * (a trailing break leaves a final empty line); lines after the first are
     * indented unless empty (or always with blank), the first only with `first`. */
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    if (first) tpl_sb_put(&b, ind.s.p, ind.s.n);
    const char *p = s.s.p;
    size_t n = s.s.n, st = 0, line = 0;
    for (;;) {
        size_t e = st, next = 0;
        bool brk = false;
        while (e < n) {
            int32_t cp;
            size_t len = tpl_utf8_decode(p + e, n - e, &cp);
            if (cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x1c || cp == 0x1d || cp == 0x1e ||
                cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
                next = e + len;
                if (cp == '\r' && next < n && p[next] == '\n') next++;
                brk = true;
                break;
            }
            e += len;
        }
        if (line > 0) {
            tpl_sb_putc(&b, '\n');
            if (blank || e > st) tpl_sb_put(&b, ind.s.p, ind.s.n);
        }
        tpl_sb_put(&b, p + st, e - st);
        line++;
        if (!brk) break;
        st = next;
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_int(tpl_rt *rt, tv v, const tpl_args *a) {
    if (v.kind == TV_UNDEFINED) tpl_raise(rt, Q_ERR_FORMAT, "UndefinedError", "%s", v.undef_name ? v.undef_name : "value is undefined");
    tv dflt = tpl_arg(a, 0, "default", tv_int(0));
    int64_t base = arg_int(rt, tpl_arg(a, 1, "base", tv_int(10)), "base");
    if (v.kind == TV_INT) return v;
    if (v.kind == TV_BOOL) return tv_int(v.b);
    if (v.kind == TV_FLOAT) return isfinite(v.f) && fabs(v.f) < 9.2e18 ? tv_int((int64_t)v.f) : dflt;
    if (v.kind == TV_STR) {
        char buf[128];
        size_t n = 0;
        for (size_t i = 0; i < v.s.n && n < sizeof buf - 1; i++)
            if (v.s.p[i] != '_') buf[n++] = v.s.p[i];
        buf[n] = 0;
        char *b = buf, *e;
        while (*b == ' ' || (*b >= '\t' && *b <= '\r')) b++;
        errno = 0;
        long long r = strtoll(b, &e, base >= 2 && base <= 36 ? (int)base : 10);
        while (*e == ' ' || (*e >= '\t' && *e <= '\r')) e++;
        if (e != b && !*e && !errno) return tv_int(r);
        double d;
        if (base == 10 && parse_float_str(v, &d) && isfinite(d) && fabs(d) < 9.2e18) return tv_int((int64_t)d);
    }
    return dflt;
}

static tv f_items(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    if (v.kind == TV_UNDEFINED) return mk_gen(rt, tpl_list(rt, 0));
    if (v.kind != TV_DICT && v.kind != TV_NS)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "Can only get item pairs from a mapping.");
    tv_list *l = tpl_list(rt, v.d->n);
    for (size_t i = 0; i < v.d->n; i++) l->v[i] = tpl_tuple2(rt, v.d->keys[i], v.d->vals[i]);
    l->n = v.d->n;
    return mk_gen(rt, l);
}

static tv f_join(tpl_rt *rt, tv v, const tpl_args *a) {
    tv sep = need_str(rt, tpl_arg(a, 0, "d", tpl_cstr("")));
    bool has_attr = tpl_has_arg(a, 1, "attribute");
    tv attr = tpl_arg(a, 1, "attribute", tv_none());
    tv_list *l = tpl_iterate(rt, v);
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    for (size_t i = 0; i < l->n; i++) {
        if (i) tpl_sb_put(&b, sep.s.p, sep.s.n);
        tv_str_append(&b, has_attr ? attr_path(rt, l->v[i], attr) : l->v[i]);
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_last(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    if (v.kind == TV_GEN) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'generator' object is not reversible");
    tv_list *l = tpl_iterate(rt, v);
    if (!l->n) return tv_undef("No last item, sequence was empty.");
    return l->v[l->n - 1];
}

static tv f_length(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tv_int(tpl_len(rt, v)); }

static tv f_list(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    tv_list *src = tpl_iterate(rt, v);
    tv_list *l = tpl_list(rt, src->n);
    if (src->n) memcpy(l->v, src->v, src->n * sizeof(tv));
    l->n = src->n;
    return tv_list_v(l);
}

static tv f_lower(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tpl_str_case(rt, need_str(rt, v), 0); }
static tv f_upper(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tpl_str_case(rt, need_str(rt, v), 1); }
static tv f_title(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tpl_str_case(rt, need_str(rt, v), 4); }

/* The arguments after the first `skip` positional ones, for map/select/... */
static tpl_args rest_args(const tpl_args *a, size_t skip) {
    tpl_args r = *a;
    r.n = a->n > skip ? a->n - skip : 0;
    r.pos = a->pos + (a->n > skip ? skip : a->n);
    return r;
}

static tv f_map(tpl_rt *rt, tv v, const tpl_args *a) {
    /* jinja2 iterates only `if value`: a falsy non-iterable maps to nothing. */
    tv_list *items = tv_truthy(v) ? tpl_iterate(rt, v) : tpl_list(rt, 0), *out = tpl_list(rt, items->n);
    if (a->n == 0 && tpl_has_arg(a, 99, "attribute")) {
        tv attr = tpl_arg(a, 99, "attribute", tv_none());
        bool has_default = tpl_has_arg(a, 99, "default");
        tv dflt = tpl_arg(a, 99, "default", tv_none());
        for (size_t i = 0; i < items->n; i++) {
            tv r = attr_path(rt, items->v[i], attr);
            if (r.kind == TV_UNDEFINED && has_default) r = dflt;
            out->v[out->n++] = r;
        }
        return mk_gen(rt, out);
    }
    if (a->n == 0) tpl_raise(rt, Q_ERR_FORMAT, "FilterArgumentError", "map requires a filter argument");
    tv name = need_str(rt, a->pos[0]);
    const char *fname = tpl_cz(rt, name);
    tpl_args r = rest_args(a, 1);
    for (size_t i = 0; i < items->n; i++) out->v[out->n++] = tpl_apply_filter(rt, fname, items->v[i], &r);
    return mk_gen(rt, out);
}

static tv select_impl(tpl_rt *rt, tv v, const tpl_args *a, bool by_attr, bool want) {
    tv_list *items = tv_truthy(v) ? tpl_iterate(rt, v) : tpl_list(rt, 0), *out = tpl_list(rt, 0);
    size_t skip = by_attr ? 1 : 0;
    tv attr = by_attr ? tpl_arg(a, 0, NULL, tv_none()) : tv_none();
    if (by_attr && a->n == 0) tpl_raise(rt, Q_ERR_FORMAT, "FilterArgumentError", "Missing parameter for attribute name");
    const char *test = a->n > skip ? tpl_cz(rt, need_str(rt, a->pos[skip])) : NULL;
    tpl_args r = rest_args(a, skip + 1);
    for (size_t i = 0; i < items->n; i++) {
        tv x = by_attr ? attr_path(rt, items->v[i], attr) : items->v[i];
        bool ok = test ? tpl_apply_test(rt, test, x, &r) : tv_truthy(x);
        if (ok == want) tpl_list_push(rt, out, items->v[i]);
    }
    return mk_gen(rt, out);
}

static tv f_select(tpl_rt *rt, tv v, const tpl_args *a) { return select_impl(rt, v, a, false, true); }
static tv f_reject(tpl_rt *rt, tv v, const tpl_args *a) { return select_impl(rt, v, a, false, false); }
static tv f_selectattr(tpl_rt *rt, tv v, const tpl_args *a) { return select_impl(rt, v, a, true, true); }
static tv f_rejectattr(tpl_rt *rt, tv v, const tpl_args *a) { return select_impl(rt, v, a, true, false); }

static tv minmax(tpl_rt *rt, tv v, const tpl_args *a, int sign) {
    bool cs = tv_truthy(tpl_arg(a, 0, "case_sensitive", tv_bool(false)));
    bool has_attr = tpl_has_arg(a, 1, "attribute");
    tv attr = tpl_arg(a, 1, "attribute", tv_none());
    tv_list *l = tpl_iterate(rt, v);
    if (!l->n) return tv_undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    tv bk = fold_case(rt, has_attr ? attr_path(rt, l->v[0], attr) : l->v[0], cs);
    for (size_t i = 1; i < l->n; i++) {
        tv k = fold_case(rt, has_attr ? attr_path(rt, l->v[i], attr) : l->v[i], cs);
        if (key_cmp(rt, k, bk) * sign > 0) { best = i; bk = k; }
    }
    return l->v[best];
}

static tv f_max(tpl_rt *rt, tv v, const tpl_args *a) { return minmax(rt, v, a, 1); }
static tv f_min(tpl_rt *rt, tv v, const tpl_args *a) { return minmax(rt, v, a, -1); }

static tv f_pprint(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return tpl_repr(rt, v); }

static tv f_replace(tpl_rt *rt, tv v, const tpl_args *a) {
    tv s = need_str(rt, v);
    tv old = need_str(rt, tpl_arg(a, 0, "old", tpl_cstr("")));
    tv nw = need_str(rt, tpl_arg(a, 1, "new", tpl_cstr("")));
    tv cnt = tpl_arg(a, 2, "count", tv_none());
    return tpl_str_replace(rt, s, old, nw, cnt.kind == TV_NONE ? -1 : arg_int(rt, cnt, "count"));
}

static tv f_reverse(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    if (v.kind == TV_STR) return tpl_str_slice(rt, v, -1, INT64_MAX, -1);
    tv_list *src = tpl_iterate(rt, v);
    tv_list *l = tpl_list(rt, src->n);
    for (size_t i = 0; i < src->n; i++) l->v[i] = src->v[src->n - 1 - i];
    l->n = src->n;
    return mk_gen(rt, l);
}

static tv f_round(tpl_rt *rt, tv v, const tpl_args *a) {
    int64_t prec = arg_int(rt, tpl_arg(a, 0, "precision", tv_int(0)), "precision");
    tv method = tpl_arg(a, 1, "method", tpl_cstr("common"));
    if (!tv_is_num(v)) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "type %s doesn't define __round__ method", tv_type_name(v));
    if (prec > 300) prec = 300;
    if (prec < -300) prec = -300;
    double x = tv_num(v), m = pow(10.0, (double)prec);
    if (method.kind == TV_STR && method.s.n == 4 && !memcmp(method.s.p, "ceil", 4)) return tv_float(ceil(x * m) / m);
    if (method.kind == TV_STR && method.s.n == 5 && !memcmp(method.s.p, "floor", 5)) return tv_float(floor(x * m) / m);
    /* "common" is Python's round(): an int stays an int; a float rounds half to even
     * on its exact decimal value, which is what glibc's %.*f does. */
    if (v.kind != TV_FLOAT && prec >= 0) return tv_int(v.kind == TV_BOOL ? v.b : v.i);
    if (!isfinite(x)) return tv_float(x);
    if (prec >= 0) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*f", (int)Q_MIN(prec, 100), x);
        return tv_float(strtod(buf, NULL));
    }
    return tv_float(nearbyint(x * m) / m);
}

static tv f_safe(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return need_str(rt, v); }

static tv f_sort(tpl_rt *rt, tv v, const tpl_args *a) {
    bool reverse = tv_truthy(tpl_arg(a, 0, "reverse", tv_bool(false)));
    bool cs = tv_truthy(tpl_arg(a, 1, "case_sensitive", tv_bool(false)));
    bool has_attr = tpl_has_arg(a, 2, "attribute");
    tv attr = tpl_arg(a, 2, "attribute", tv_none());
    tv_list *l = tpl_iterate(rt, v);
    size_t n = l->n;
    sort_key *keys = tpl_alloc(rt, (n + 1) * sizeof *keys), *tmp = tpl_alloc(rt, (n + 1) * sizeof *tmp);
    for (size_t i = 0; i < n; i++) {
        keys[i].item = l->v[i];
        keys[i].key = fold_case(rt, has_attr ? attr_path(rt, l->v[i], attr) : l->v[i], cs);
    }
    merge_sort(rt, keys, tmp, n, reverse);
    tv_list *out = tpl_list(rt, n);
    for (size_t i = 0; i < n; i++) out->v[i] = keys[i].item;
    out->n = n;
    return tv_list_v(out);
}

static tv f_string(tpl_rt *rt, tv v, const tpl_args *a) { (void)a; return need_str(rt, v); }

static tv f_sum(tpl_rt *rt, tv v, const tpl_args *a) {
    bool has_attr = tpl_has_arg(a, 0, "attribute");
    tv attr = tpl_arg(a, 0, "attribute", tv_none());
    tv acc = tpl_arg(a, 1, "start", tv_int(0));
    tv_list *l = tpl_iterate(rt, v);
    for (size_t i = 0; i < l->n; i++) {
        tv x = has_attr ? attr_path(rt, l->v[i], attr) : l->v[i];
        if (!tv_is_num(acc) || !tv_is_num(x))
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "unsupported operand type(s) for +: '%s' and '%s'", tv_type_name(acc), tv_type_name(x));
        if (acc.kind != TV_FLOAT && x.kind != TV_FLOAT) {
            int64_t r;
            int64_t p = acc.kind == TV_BOOL ? acc.b : acc.i, q = x.kind == TV_BOOL ? x.b : x.i;
            acc = __builtin_add_overflow(p, q, &r) ? tv_float((double)p + (double)q) : tv_int(r);
        } else {
            acc = tv_float(tv_num(acc) + tv_num(x));
        }
    }
    return acc;
}

static tv f_tojson(tpl_rt *rt, tv v, const tpl_args *a) {
    tpl_json_opts o = { 0 };
    o.ensure_ascii = tv_truthy(tpl_arg(a, 0, "ensure_ascii", tv_bool(false)));
    tv indent = tpl_arg(a, 1, "indent", tv_none());
    tv seps = tpl_arg(a, 2, "separators", tv_none());
    o.sort_keys = tv_truthy(tpl_arg(a, 3, "sort_keys", tv_bool(false)));
    if (indent.kind == TV_INT || indent.kind == TV_BOOL) {
        int64_t n = indent.kind == TV_BOOL ? indent.b : indent.i;
        if (n < 0) n = 0;
        if (n > 100) n = 100;
        char *sp = tpl_alloc(rt, (size_t)n + 1);
        memset(sp, ' ', (size_t)n);
        o.indent = sp;
        o.indent_len = (size_t)n;
    } else if (indent.kind == TV_STR) {
        o.indent = indent.s.p;
        o.indent_len = indent.s.n;
    } else if (indent.kind != TV_NONE) {
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "indent must be an int or a string");
    }
    o.item_sep = o.indent ? "," : ", ";
    o.key_sep = ": ";
    if (seps.kind == TV_LIST && seps.l->n == 2 && seps.l->v[0].kind == TV_STR && seps.l->v[1].kind == TV_STR) {
        o.item_sep = tpl_cz(rt, seps.l->v[0]);
        o.key_sep = tpl_cz(rt, seps.l->v[1]);
    } else if (seps.kind != TV_NONE) {
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "separators must be a pair of strings");
    }
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    tpl_json_dump(rt, &b, v, &o);
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_trim(tpl_rt *rt, tv v, const tpl_args *a) {
    return tpl_str_strip(rt, need_str(rt, v), tpl_arg(a, 0, "chars", tv_none()), true, true);
}

static tv f_truncate(tpl_rt *rt, tv v, const tpl_args *a) {
    tv s = v;
    int64_t len = arg_int(rt, tpl_arg(a, 0, "length", tv_int(255)), "length");
    bool killwords = tv_truthy(tpl_arg(a, 1, "killwords", tv_bool(false)));
    tv end = need_str(rt, tpl_arg(a, 2, "end", tpl_cstr("...")));
    int64_t leeway = arg_int(rt, tpl_arg(a, 3, "leeway", tv_int(5)), "leeway");
    int64_t n = tpl_len(rt, s), endn = tpl_len(rt, end);
    if (n <= len + leeway) return s;
    s = need_str(rt, s);
    tv head = tpl_str_slice(rt, s, 0, Q_MAX(0, len - endn), 1);
    if (!killwords) {
        /* Drop the last (partial) word: rsplit(" ", 1)[0]. */
        const char *sp = NULL;
        for (size_t i = head.s.n; i-- > 0;)
            if (head.s.p[i] == ' ') { sp = head.s.p + i; break; }
        if (sp) head.s.n = (size_t)(sp - head.s.p);
    }
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    tpl_sb_put(&b, head.s.p, head.s.n);
    tpl_sb_put(&b, end.s.p, end.s.n);
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static tv f_unique(tpl_rt *rt, tv v, const tpl_args *a) {
    bool cs = tv_truthy(tpl_arg(a, 0, "case_sensitive", tv_bool(false)));
    bool has_attr = tpl_has_arg(a, 1, "attribute");
    tv attr = tpl_arg(a, 1, "attribute", tv_none());
    tv_list *l = tpl_iterate(rt, v), *out = tpl_list(rt, 0), *seen = tpl_list(rt, 0);
    for (size_t i = 0; i < l->n; i++) {
        tv k = fold_case(rt, has_attr ? attr_path(rt, l->v[i], attr) : l->v[i], cs);
        bool dup = false;
        for (size_t j = 0; j < seen->n && !dup; j++) dup = tv_eq(seen->v[j], k);
        if (dup) continue;
        tpl_list_push(rt, seen, k);
        tpl_list_push(rt, out, l->v[i]);
    }
    return mk_gen(rt, out);
}

static tv f_wordcount(tpl_rt *rt, tv v, const tpl_args *a) {
    (void)a;
    tv s = need_str(rt, v);
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.s.n;) {
        int32_t cp;
        i += tpl_utf8_decode(s.s.p + i, s.s.n - i, &cp);
        bool w = cp == '_' || (cp < 128 ? ((cp | 32) >= 'a' && (cp | 32) <= 'z') || (cp >= '0' && cp <= '9') : !tpl_is_space_cp(cp));
        if (w && !in_word) n++;
        in_word = w;
    }
    return tv_int(n);
}

/* Sorted by name for bsearch. */
static const tpl_builtin filter_table[] = {
    { "abs",        f_abs },
    { "attr",       f_attr },
    { "batch",      f_batch },
    { "capitalize", f_capitalize },
    { "center",     f_center },
    { "count",      f_length },
    { "d",          f_default },
    { "default",    f_default },
    { "dictsort",   f_dictsort },
    { "e",          f_escape },
    { "escape",     f_escape },
    { "first",      f_first },
    { "float",      f_float },
    { "forceescape", f_escape },
    { "format",     f_format },
    { "indent",     f_indent },
    { "int",        f_int },
    { "items",      f_items },
    { "join",       f_join },
    { "last",       f_last },
    { "length",     f_length },
    { "list",       f_list },
    { "lower",      f_lower },
    { "map",        f_map },
    { "max",        f_max },
    { "min",        f_min },
    { "pprint",     f_pprint },
    { "reject",     f_reject },
    { "rejectattr", f_rejectattr },
    { "replace",    f_replace },
    { "reverse",    f_reverse },
    { "round",      f_round },
    { "safe",       f_safe },
    { "select",     f_select },
    { "selectattr", f_selectattr },
    { "sort",       f_sort },
    { "string",     f_string },
    { "sum",        f_sum },
    { "title",      f_title },
    { "tojson",     f_tojson },
    { "trim",       f_trim },
    { "truncate",   f_truncate },
    { "unique",     f_unique },
    { "upper",      f_upper },
    { "wordcount",  f_wordcount },
};

static int builtin_cmp(const void *key, const void *e) { return strcmp(key, ((const tpl_builtin *)e)->name); }

const tpl_builtin *tpl_filter_find(const char *name) {
    return bsearch(name, filter_table, Q_ARRAY_LEN(filter_table), sizeof filter_table[0], builtin_cmp);
}

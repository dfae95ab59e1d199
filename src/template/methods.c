/* methods.c — Python methods callable on template values ("s.strip()", "d.items()"),
 * one sorted table per receiver type. Mutating methods of list and dict (append, pop,
 * update, ...) exist but are refused at call time with jinja2's SecurityError, as
 * transformers' ImmutableSandboxedEnvironment refuses them. */
#include "template/eval.h"

#include <stdlib.h>
#include <string.h>

/* ---- str ------------------------------------------------------------------------ */
static tv m_str_strip(tpl_rt *rt, tv self, const tpl_args *a) { return tpl_str_strip(rt, self, tpl_arg(a, 0, "chars", tv_none()), true, true); }
static tv m_str_lstrip(tpl_rt *rt, tv self, const tpl_args *a) { return tpl_str_strip(rt, self, tpl_arg(a, 0, "chars", tv_none()), true, false); }
static tv m_str_rstrip(tpl_rt *rt, tv self, const tpl_args *a) { return tpl_str_strip(rt, self, tpl_arg(a, 0, "chars", tv_none()), false, true); }
static tv m_str_lower(tpl_rt *rt, tv self, const tpl_args *a) { (void)a; return tpl_str_case(rt, self, 0); }
static tv m_str_upper(tpl_rt *rt, tv self, const tpl_args *a) { (void)a; return tpl_str_case(rt, self, 1); }
static tv m_str_capitalize(tpl_rt *rt, tv self, const tpl_args *a) { (void)a; return tpl_str_case(rt, self, 2); }
static tv m_str_title(tpl_rt *rt, tv self, const tpl_args *a) { (void)a; return tpl_str_case(rt, self, 3); }

static tv str_arg(tpl_rt *rt, const tpl_args *a, size_t i, const char *name) {
    tv v = tpl_arg(a, i, name, tv_undef(NULL));
    if (v.kind != TV_STR) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "must be str, not %s", tv_type_name(v));
    return v;
}

static bool affix_match(tpl_rt *rt, tv s, tv affix, bool end) {
    if (affix.kind == TV_LIST && affix.tuple) {
        for (size_t i = 0; i < affix.l->n; i++)
            if (affix_match(rt, s, affix.l->v[i], end)) return true;
        return false;
    }
    if (affix.kind != TV_STR)
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "%s first arg must be str or a tuple of str, not %s",
                  end ? "endswith" : "startswith", tv_type_name(affix));
    if (affix.s.n > s.s.n) return false;
    return !memcmp(s.s.p + (end ? s.s.n - affix.s.n : 0), affix.s.p, affix.s.n);
}

static tv m_str_startswith(tpl_rt *rt, tv self, const tpl_args *a) { return tv_bool(affix_match(rt, self, tpl_arg(a, 0, NULL, tv_undef(NULL)), false)); }
static tv m_str_endswith(tpl_rt *rt, tv self, const tpl_args *a) { return tv_bool(affix_match(rt, self, tpl_arg(a, 0, NULL, tv_undef(NULL)), true)); }

static tv m_str_replace(tpl_rt *rt, tv self, const tpl_args *a) {
    tv cnt = tpl_arg(a, 2, "count", tv_int(-1));
    return tpl_str_replace(rt, self, str_arg(rt, a, 0, "old"), str_arg(rt, a, 1, "new"), cnt.kind == TV_INT ? cnt.i : -1);
}

static bool is_ws_at(tv s, size_t i, size_t *len) {
    int32_t cp;
    *len = tpl_utf8_decode(s.s.p + i, s.s.n - i, &cp);
    return tpl_is_space_cp(cp);
}

static tv split_impl(tpl_rt *rt, tv self, const tpl_args *a, bool from_right) {
    tv sep = tpl_arg(a, 0, "sep", tv_none());
    tv mx = tpl_arg(a, 1, "maxsplit", tv_int(-1));
    int64_t maxsplit = mx.kind == TV_INT ? mx.i : -1;
    if (maxsplit < 0) maxsplit = INT64_MAX;
    tv_list *out = tpl_list(rt, 0);
    const char *p = self.s.p;
    size_t n = self.s.n;
    if (sep.kind == TV_NONE) {
        /* Runs of whitespace separate; leading/trailing whitespace yields nothing. */
        if (!from_right) {
            size_t i = 0, len;
            int64_t splits = 0;
            for (;;) {
                while (i < n && is_ws_at(self, i, &len)) i += len;
                if (i >= n) break;
                if (splits == maxsplit) {
                    /* The rest, with trailing whitespace stripped. */
                    tv rest = tpl_str_strip(rt, tv_strn(p + i, n - i), tv_none(), false, true);
                    tpl_list_push(rt, out, rest);
                    break;
                }
                size_t st = i;
                while (i < n && !is_ws_at(self, i, &len)) i += len;
                tpl_list_push(rt, out, tv_strn(p + st, i - st));
                splits++;
            }
            return tv_list_v(out);
        }
        tv_list *rev = tpl_list(rt, 0);
        size_t e = n;
        int64_t splits = 0;
        for (;;) {
            while (e > 0 && (p[e - 1] == ' ' || (p[e - 1] >= '\t' && p[e - 1] <= '\r'))) e--;
            if (e == 0) break;
            if (splits == maxsplit) { tpl_list_push(rt, rev, tpl_str_strip(rt, tv_strn(p, e), tv_none(), true, false)); break; }
            size_t st = e;
            while (st > 0 && !(p[st - 1] == ' ' || (p[st - 1] >= '\t' && p[st - 1] <= '\r'))) st--;
            tpl_list_push(rt, rev, tv_strn(p + st, e - st));
            e = st;
            splits++;
        }
        for (size_t i = rev->n; i-- > 0;) tpl_list_push(rt, out, rev->v[i]);
        return tv_list_v(out);
    }
    if (sep.kind != TV_STR) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "must be str or None, not %s", tv_type_name(sep));
    if (sep.s.n == 0) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "empty separator");
    if (!from_right) {
        size_t i = 0;
        int64_t splits = 0;
        for (;;) {
            const char *hit = splits < maxsplit ? memmem(p + i, n - i, sep.s.p, sep.s.n) : NULL;
            if (!hit) { tpl_list_push(rt, out, tv_strn(p + i, n - i)); break; }
            tpl_list_push(rt, out, tv_strn(p + i, (size_t)(hit - (p + i))));
            i = (size_t)(hit - p) + sep.s.n;
            splits++;
        }
        return tv_list_v(out);
    }
    tv_list *rev = tpl_list(rt, 0);
    size_t e = n;
    int64_t splits = 0;
    for (;;) {
        size_t found = SIZE_MAX;
        if (splits < maxsplit && e >= sep.s.n)
            for (size_t k = e - sep.s.n + 1; k-- > 0;)
                if (!memcmp(p + k, sep.s.p, sep.s.n)) { found = k; break; }
        if (found == SIZE_MAX) { tpl_list_push(rt, rev, tv_strn(p, e)); break; }
        tpl_list_push(rt, rev, tv_strn(p + found + sep.s.n, e - found - sep.s.n));
        e = found;
        splits++;
    }
    for (size_t i = rev->n; i-- > 0;) tpl_list_push(rt, out, rev->v[i]);
    return tv_list_v(out);
}

static tv m_str_split(tpl_rt *rt, tv self, const tpl_args *a) { return split_impl(rt, self, a, false); }
static tv m_str_rsplit(tpl_rt *rt, tv self, const tpl_args *a) { return split_impl(rt, self, a, true); }

static tv m_str_splitlines(tpl_rt *rt, tv self, const tpl_args *a) {
    bool keep = tv_truthy(tpl_arg(a, 0, "keepends", tv_bool(false)));
    tv_list *out = tpl_list(rt, 0);
    size_t st = 0, i = 0, n = self.s.n;
    const char *p = self.s.p;
    while (i < n) {
        int32_t cp;
        size_t len = tpl_utf8_decode(p + i, n - i, &cp);
        if (cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x1c || cp == 0x1d || cp == 0x1e ||
            cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
            size_t next = i + len;
            if (cp == '\r' && next < n && p[next] == '\n') next++;
            tpl_list_push(rt, out, tv_strn(p + st, (keep ? next : i) - st));
            st = i = next;
        } else {
            i += len;
        }
    }
    if (st < n) tpl_list_push(rt, out, tv_strn(p + st, n - st));
    return tv_list_v(out);
}

static tv m_str_join(tpl_rt *rt, tv self, const tpl_args *a) {
    tv_list *l = tpl_iterate(rt, tpl_arg(a, 0, NULL, tv_undef(NULL)));
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].kind != TV_STR)
            tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "sequence item %zu: expected str instance, %s found", i, tv_type_name(l->v[i]));
        if (i) tpl_sb_put(&b, self.s.p, self.s.n);
        tpl_sb_put(&b, l->v[i].s.p, l->v[i].s.n);
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static int64_t find_impl(tv self, tv sub, bool from_right) {
    if (sub.s.n > self.s.n) return -1;
    size_t hit = SIZE_MAX;
    if (!from_right) {
        const char *h = sub.s.n ? memmem(self.s.p, self.s.n, sub.s.p, sub.s.n) : self.s.p;
        if (h) hit = (size_t)(h - self.s.p);
    } else {
        for (size_t k = self.s.n - sub.s.n + 1; k-- > 0;)
            if (!memcmp(self.s.p + k, sub.s.p, sub.s.n)) { hit = k; break; }
    }
    return hit == SIZE_MAX ? -1 : (int64_t)tpl_utf8_count(self.s.p, hit);
}

static tv m_str_find(tpl_rt *rt, tv self, const tpl_args *a) { return tv_int(find_impl(self, str_arg(rt, a, 0, "sub"), false)); }
static tv m_str_rfind(tpl_rt *rt, tv self, const tpl_args *a) { return tv_int(find_impl(self, str_arg(rt, a, 0, "sub"), true)); }

static tv m_str_count(tpl_rt *rt, tv self, const tpl_args *a) {
    tv sub = str_arg(rt, a, 0, "sub");
    if (sub.s.n == 0) return tv_int((int64_t)tpl_utf8_count(self.s.p, self.s.n) + 1);
    int64_t c = 0;
    size_t i = 0;
    const char *h;
    while (i <= self.s.n && (h = memmem(self.s.p + i, self.s.n - i, sub.s.p, sub.s.n))) {
        c++;
        i = (size_t)(h - self.s.p) + sub.s.n;
    }
    return tv_int(c);
}

typedef bool (*cp_pred)(int32_t cp);
static bool p_space(int32_t cp) { return tpl_is_space_cp(cp); }
static bool p_digit(int32_t cp) { return cp >= '0' && cp <= '9'; }
static bool p_alpha(int32_t cp) { return ((cp | 32) >= 'a' && (cp | 32) <= 'z') || cp > 127; }
static bool p_alnum(int32_t cp) { return p_alpha(cp) || p_digit(cp); }

static tv all_pred(tv self, cp_pred f) {
    if (self.s.n == 0) return tv_bool(false);
    for (size_t i = 0; i < self.s.n;) {
        int32_t cp;
        i += tpl_utf8_decode(self.s.p + i, self.s.n - i, &cp);
        if (!f(cp)) return tv_bool(false);
    }
    return tv_bool(true);
}

static tv m_str_isspace(tpl_rt *rt, tv self, const tpl_args *a) { (void)rt; (void)a; return all_pred(self, p_space); }
static tv m_str_isdigit(tpl_rt *rt, tv self, const tpl_args *a) { (void)rt; (void)a; return all_pred(self, p_digit); }
static tv m_str_isalpha(tpl_rt *rt, tv self, const tpl_args *a) { (void)rt; (void)a; return all_pred(self, p_alpha); }
static tv m_str_isalnum(tpl_rt *rt, tv self, const tpl_args *a) { (void)rt; (void)a; return all_pred(self, p_alnum); }

static tv m_str_islower(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    tv l = tpl_str_case(rt, self, 0), u = tpl_str_case(rt, self, 1);
    return tv_bool(tv_eq(self, l) && !tv_eq(l, u));
}

static tv m_str_isupper(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    tv l = tpl_str_case(rt, self, 0), u = tpl_str_case(rt, self, 1);
    return tv_bool(tv_eq(self, u) && !tv_eq(l, u));
}

static tv m_str_removeprefix(tpl_rt *rt, tv self, const tpl_args *a) {
    tv x = str_arg(rt, a, 0, "prefix");
    if (x.s.n <= self.s.n && !memcmp(self.s.p, x.s.p, x.s.n)) return tv_strn(self.s.p + x.s.n, self.s.n - x.s.n);
    return self;
}

static tv m_str_removesuffix(tpl_rt *rt, tv self, const tpl_args *a) {
    tv x = str_arg(rt, a, 0, "suffix");
    if (x.s.n && x.s.n <= self.s.n && !memcmp(self.s.p + self.s.n - x.s.n, x.s.p, x.s.n)) return tv_strn(self.s.p, self.s.n - x.s.n);
    return self;
}

/* str.format with "{}", "{0}", "{name}" and "{{ }}"; format specs are not supported. */
static tv m_str_format(tpl_rt *rt, tv self, const tpl_args *a) {
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    const char *p = self.s.p, *end = p + self.s.n;
    size_t auto_idx = 0;
    while (p < end) {
        if (*p == '{' && p + 1 < end && p[1] == '{') { tpl_sb_putc(&b, '{'); p += 2; continue; }
        if (*p == '}' && p + 1 < end && p[1] == '}') { tpl_sb_putc(&b, '}'); p += 2; continue; }
        if (*p != '{') { tpl_sb_putc(&b, *p++); continue; }
        const char *close = memchr(p, '}', (size_t)(end - p));
        if (!close) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "Single '{' encountered in format string");
        tv field = tv_strn(p + 1, (size_t)(close - p - 1));
        if (memchr(field.s.p, ':', field.s.n) || memchr(field.s.p, '!', field.s.n) || memchr(field.s.p, '.', field.s.n) ||
            memchr(field.s.p, '[', field.s.n))
            tpl_raise(rt, Q_ERR_UNSUPPORTED, "NotImplementedError", "str.format: format specs and field access are not supported");
        tv v;
        if (field.s.n == 0) {
            if (auto_idx >= a->n) tpl_raise(rt, Q_ERR_FORMAT, "IndexError", "Replacement index %zu out of range for positional args tuple", auto_idx);
            v = a->pos[auto_idx++];
        } else if (field.s.p[0] >= '0' && field.s.p[0] <= '9') {
            size_t idx = (size_t)strtoul(tpl_cz(rt, field), NULL, 10);
            if (idx >= a->n) tpl_raise(rt, Q_ERR_FORMAT, "IndexError", "Replacement index %zu out of range for positional args tuple", idx);
            v = a->pos[idx];
        } else {
            const char *nm = tpl_cz(rt, field);
            bool found = false;
            for (size_t k = 0; k < a->nkw; k++)
                if (!strcmp(a->kwnames[k], nm)) { v = a->kw[k]; found = true; break; }
            if (!found) tpl_raise(rt, Q_ERR_FORMAT, "KeyError", "'%s'", nm);
        }
        tv_str_append(&b, v);
        p = close + 1;
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static const tpl_builtin str_methods[] = {
    { "capitalize",   m_str_capitalize },
    { "count",        m_str_count },
    { "endswith",     m_str_endswith },
    { "find",         m_str_find },
    { "format",       m_str_format },
    { "isalnum",      m_str_isalnum },
    { "isalpha",      m_str_isalpha },
    { "isdigit",      m_str_isdigit },
    { "islower",      m_str_islower },
    { "isspace",      m_str_isspace },
    { "isupper",      m_str_isupper },
    { "join",         m_str_join },
    { "lower",        m_str_lower },
    { "lstrip",       m_str_lstrip },
    { "removeprefix", m_str_removeprefix },
    { "removesuffix", m_str_removesuffix },
    { "replace",      m_str_replace },
    { "rfind",        m_str_rfind },
    { "rsplit",       m_str_rsplit },
    { "rstrip",       m_str_rstrip },
    { "split",        m_str_split },
    { "splitlines",   m_str_splitlines },
    { "startswith",   m_str_startswith },
    { "strip",        m_str_strip },
    { "title",        m_str_title },
    { "upper",        m_str_upper },
};

/* ---- dict ------------------------------------------------------------------------ */
static tv m_dict_items(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    tv_list *l = tpl_list(rt, self.d->n);
    for (size_t i = 0; i < self.d->n; i++) l->v[i] = tpl_tuple2(rt, self.d->keys[i], self.d->vals[i]);
    l->n = self.d->n;
    tv r = tv_list_v(l);
    r.view = TV_VIEW_ITEMS;
    return r;
}

/* A list copy of n keys or values, tagged so it prints as dict_keys([...]) etc. */
static tv dict_view(tpl_rt *rt, const tv *src, size_t n, tv_view view) {
    tv_list *l = tpl_list(rt, n);
    memcpy(l->v, src, n * sizeof(tv));
    l->n = n;
    tv r = tv_list_v(l);
    r.view = (uint8_t)view;
    return r;
}

static tv m_dict_keys(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    return dict_view(rt, self.d->keys, self.d->n, TV_VIEW_KEYS);
}

static tv m_dict_values(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    return dict_view(rt, self.d->vals, self.d->n, TV_VIEW_VALUES);
}

static tv m_dict_get(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)rt;
    tv *v = tv_dict_get(self.d, tpl_arg(a, 0, NULL, tv_none()));
    return v ? *v : tpl_arg(a, 1, NULL, tv_none());
}

static tv m_dict_copy(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)a;
    tv_dict *d = tpl_dict(rt, self.d->n);
    for (size_t i = 0; i < self.d->n; i++) tpl_dict_set(rt, d, self.d->keys[i], self.d->vals[i]);
    return tv_dict_v(d);
}

static const tpl_builtin dict_methods[] = {
    { "copy",   m_dict_copy },
    { "get",    m_dict_get },
    { "items",  m_dict_items },
    { "keys",   m_dict_keys },
    { "values", m_dict_values },
};

/* ---- list ------------------------------------------------------------------------ */
static tv m_list_index(tpl_rt *rt, tv self, const tpl_args *a) {
    tv x = tpl_arg(a, 0, NULL, tv_undef(NULL));
    for (size_t i = 0; i < self.l->n; i++)
        if (tv_eq(self.l->v[i], x)) return tv_int((int64_t)i);
    tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "value is not in list");
}

static tv m_list_count(tpl_rt *rt, tv self, const tpl_args *a) {
    (void)rt;
    tv x = tpl_arg(a, 0, NULL, tv_undef(NULL));
    int64_t c = 0;
    for (size_t i = 0; i < self.l->n; i++) c += tv_eq(self.l->v[i], x);
    return tv_int(c);
}

static const tpl_builtin list_methods[] = {
    { "count", m_list_count },
    { "index", m_list_index },
};

/* Mutators the immutable sandbox refuses (sorted). */
static const char *const dict_unsafe[] = { "clear", "pop", "popitem", "setdefault", "update" };
static const char *const list_unsafe[] = { "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort" };

static int builtin_cmp(const void *key, const void *e) { return strcmp(key, ((const tpl_builtin *)e)->name); }
static int name_cmp(const void *key, const void *e) { return strcmp(key, *(const char *const *)e); }

const tpl_builtin *tpl_method_find(tv_kind kind, const char *name, bool *unsafe) {
    *unsafe = false;
    switch (kind) {
    case TV_STR:
        return bsearch(name, str_methods, Q_ARRAY_LEN(str_methods), sizeof str_methods[0], builtin_cmp);
    case TV_DICT:
        *unsafe = bsearch(name, dict_unsafe, Q_ARRAY_LEN(dict_unsafe), sizeof dict_unsafe[0], name_cmp) != NULL;
        return bsearch(name, dict_methods, Q_ARRAY_LEN(dict_methods), sizeof dict_methods[0], builtin_cmp);
    case TV_LIST:
        *unsafe = bsearch(name, list_unsafe, Q_ARRAY_LEN(list_unsafe), sizeof list_unsafe[0], name_cmp) != NULL;
        return bsearch(name, list_methods, Q_ARRAY_LEN(list_methods), sizeof list_methods[0], builtin_cmp);
    default:
        return NULL;
    }
}

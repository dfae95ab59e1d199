/* json.c — the JSON side of templates: jansson values to template values (key order
 * kept: jansson >= 2.8 iterates objects in insertion order), and tojson, which is
 * Python's json.dumps as transformers calls it:
 *   json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
 * Defaults: separators ", " and ": " (", " becomes "," with an indent); floats as
 * repr() (NaN, Infinity); non-str keys converted (True -> "true", 1 -> "1");
 * Undefined, generators, namespaces and functions are not serialisable (TypeError). */
#include "template/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- jansson -> tv ------------------------------------------------------------------ */
bool tpl_json_to_value(tpl_arena *a, const json_t *j, tv *out) {
    switch (json_typeof(j)) {
    case JSON_NULL:  *out = tv_none(); return true;
    case JSON_TRUE:  *out = tv_bool(true); return true;
    case JSON_FALSE: *out = tv_bool(false); return true;
    case JSON_INTEGER: *out = tv_int((int64_t)json_integer_value(j)); return true;
    case JSON_REAL:  *out = tv_float(json_real_value(j)); return true;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        char *p = tpl_arena_alloc(a, n + 1);
        if (!p) return false;
        memcpy(p, json_string_value(j), n);
        *out = tv_strn(p, n);
        return true;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        tv_list *l = tv_list_new(a, n);
        if (!l) return false;
        for (size_t i = 0; i < n; i++)
            if (!tpl_json_to_value(a, json_array_get(j, i), &l->v[i])) return false;
        l->n = n;
        *out = tv_list_v(l);
        return true;
    }
    case JSON_OBJECT: {
        tv_dict *d = tv_dict_new(a, json_object_size(j));
        if (!d) return false;
        const char *key;
        json_t *val;
        /* json_object_foreach is insertion-ordered; keys are unique, so append. */
        json_object_foreach((json_t *)j, key, val) {
            size_t kn = strlen(key);
            char *kp = tpl_arena_alloc(a, kn + 1);
            if (!kp) return false;
            memcpy(kp, key, kn);
            tv v;
            if (!tpl_json_to_value(a, val, &v)) return false;
            d->keys[d->n] = tv_strn(kp, kn);
            d->vals[d->n] = v;
            d->n++;
        }
        *out = tv_dict_v(d);
        return true;
    }
    }
    return false;
}

/* ---- tojson ------------------------------------------------------------------------- */
static void put_json_string(tpl_sb *b, const char *p, size_t n, bool ensure_ascii) {
    tpl_sb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x80) {
            switch (c) {
            case '"':  tpl_sb_put(b, "\\\"", 2); break;
            case '\\': tpl_sb_put(b, "\\\\", 2); break;
            case '\n': tpl_sb_put(b, "\\n", 2); break;
            case '\r': tpl_sb_put(b, "\\r", 2); break;
            case '\t': tpl_sb_put(b, "\\t", 2); break;
            case '\b': tpl_sb_put(b, "\\b", 2); break;
            case '\f': tpl_sb_put(b, "\\f", 2); break;
            default:
                if (c < 0x20 || (ensure_ascii && c == 0x7f)) tpl_sb_printf(b, "\\u%04x", c);
                else tpl_sb_putc(b, (char)c);
            }
            i++;
            continue;
        }
        int32_t cp;
        size_t len = tpl_utf8_decode(p + i, n - i, &cp);
        if (!ensure_ascii) tpl_sb_put(b, p + i, len);
        else if (cp < 0x10000) tpl_sb_printf(b, "\\u%04x", (unsigned)cp);
        else {
            int32_t v = cp - 0x10000;
            tpl_sb_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)), (unsigned)(0xDC00 + (v & 0x3FF)));
        }
        i += len;
    }
    tpl_sb_putc(b, '"');
}

static void put_float(tpl_sb *b, double f) {
    if (isnan(f)) { tpl_sb_put(b, "NaN", 3); return; }
    if (isinf(f)) { if (f < 0) tpl_sb_put(b, "-Infinity", 9); else tpl_sb_put(b, "Infinity", 8); return; }
    char buf[64];
    tv_float_repr(f, buf, sizeof buf);
    tpl_sb_put(b, buf, strlen(buf));
}

static void newline_indent(tpl_sb *b, const tpl_json_opts *o, int level) {
    tpl_sb_putc(b, '\n');
    for (int i = 0; i < level; i++) tpl_sb_put(b, o->indent, o->indent_len);
}

static void dump(tpl_rt *rt, tpl_sb *b, tv v, const tpl_json_opts *o, int level);

/* The dict key as a JSON string (Python's str/int/float/bool/None key coercion). */
static void put_key(tpl_rt *rt, tpl_sb *b, tv k, const tpl_json_opts *o) {
    char buf[64];
    switch ((tv_kind)k.kind) {
    case TV_STR: put_json_string(b, k.s.p, k.s.n, o->ensure_ascii); return;
    case TV_BOOL: tpl_sb_put(b, k.b ? "\"true\"" : "\"false\"", k.b ? 6 : 7); return;
    case TV_NONE: tpl_sb_put(b, "\"null\"", 6); return;
    case TV_INT: tpl_sb_printf(b, "\"%lld\"", (long long)k.i); return;
    case TV_FLOAT:
        tpl_sb_putc(b, '"');
        if (isnan(k.f) || isinf(k.f)) put_float(b, k.f);
        else { tv_float_repr(k.f, buf, sizeof buf); tpl_sb_put(b, buf, strlen(buf)); }
        tpl_sb_putc(b, '"');
        return;
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "keys must be str, int, float, bool or None, not %s", tv_type_name(k));
    }
}

static void dump_dict(tpl_rt *rt, tpl_sb *b, const tv_dict *d, const tpl_json_opts *o, int level) {
    if (d->n == 0) { tpl_sb_put(b, "{}", 2); return; }
    size_t *order = tpl_alloc(rt, d->n * sizeof *order);
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (o->sort_keys) {
        /* Insertion sort by key: dicts in templates are small. */
        for (size_t i = 1; i < d->n; i++) {
            size_t x = order[i], j = i;
            while (j > 0) {
                bool ok;
                int c = tv_cmp(d->keys[order[j - 1]], d->keys[x], &ok);
                if (!ok) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "'<' not supported between dict keys of different types");
                if (c <= 0) break;
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
    }
    tpl_sb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) tpl_sb_put(b, o->item_sep, strlen(o->item_sep));
        if (o->indent) newline_indent(b, o, level + 1);
        put_key(rt, b, d->keys[order[i]], o);
        tpl_sb_put(b, o->key_sep, strlen(o->key_sep));
        dump(rt, b, d->vals[order[i]], o, level + 1);
    }
    if (o->indent) newline_indent(b, o, level);
    tpl_sb_putc(b, '}');
}

static void dump(tpl_rt *rt, tpl_sb *b, tv v, const tpl_json_opts *o, int level) {
    if (level > 500) tpl_raise(rt, Q_ERR_LIMIT, "RecursionError", "maximum recursion depth exceeded while encoding a JSON object");
    switch ((tv_kind)v.kind) {
    case TV_NONE:  tpl_sb_put(b, "null", 4); break;
    case TV_BOOL:  if (v.b) tpl_sb_put(b, "true", 4); else tpl_sb_put(b, "false", 5); break;
    case TV_INT:   tpl_sb_printf(b, "%lld", (long long)v.i); break;
    case TV_FLOAT: put_float(b, v.f); break;
    case TV_STR:   put_json_string(b, v.s.p, v.s.n, o->ensure_ascii); break;
    case TV_LIST:
        if (v.view) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "Object of type %s is not JSON serializable", tv_type_name(v));
        if (v.l->n == 0) { tpl_sb_put(b, "[]", 2); break; }
        tpl_sb_putc(b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) tpl_sb_put(b, o->item_sep, strlen(o->item_sep));
            if (o->indent) newline_indent(b, o, level + 1);
            dump(rt, b, v.l->v[i], o, level + 1);
        }
        if (o->indent) newline_indent(b, o, level);
        tpl_sb_putc(b, ']');
        break;
    case TV_DICT: dump_dict(rt, b, v.d, o, level); break;
    default:
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "Object of type %s is not JSON serializable", tv_type_name(v));
    }
    tpl_sb_check(rt, b);
}

void tpl_json_dump(tpl_rt *rt, tpl_sb *b, tv v, const tpl_json_opts *o) { dump(rt, b, v, o, 0); }

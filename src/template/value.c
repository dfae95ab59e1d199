/* value.c — arena, string builder, containers and the Python semantics of template
 * values (truth, ==, ordering, str(), repr(), float repr). See value.h for the contract.
 * Everything allocated here lives in the caller's tpl_arena. */
#include "template/value.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- arena -------------------------------------------------------------------- */
struct tpl_chunk {
    tpl_chunk *next;
    size_t     used, cap;
    _Alignas(16) unsigned char data[];
};

#define TPL_CHUNK_MIN (64 * 1024)

void tpl_arena_init(tpl_arena *a, size_t limit) {
    a->head = NULL;
    a->used_total = 0;
    a->limit = limit;
}

void tpl_arena_free(tpl_arena *a) {
    tpl_chunk *c = a->head;
    while (c) {
        tpl_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void *tpl_arena_alloc(tpl_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && (n > a->limit || a->used_total > a->limit - n)) return NULL;
    tpl_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > TPL_CHUNK_MIN ? n : TPL_CHUNK_MIN;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        /* A big one-off block goes behind the head so the head keeps its free room. */
        if (a->head && cap == n) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    memset(p, 0, n);
    return p;
}

/* ---- string builder ------------------------------------------------------------ */
void tpl_sb_init(tpl_sb *b, tpl_arena *a, size_t limit) {
    memset(b, 0, sizeof *b);
    b->arena = a;
    b->limit = limit;
}

bool tpl_sb_put(tpl_sb *b, const char *p, size_t n) {
    if (b->overflow) return false;
    if (n == 0) return true;
    if (b->limit && (n > b->limit || b->n > b->limit - n)) { b->overflow = true; return false; }
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap - b->n < n) cap *= 2;
        char *np = tpl_arena_alloc(b->arena, cap);
        if (!np) { b->overflow = true; return false; }
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return true;
}

bool tpl_sb_putc(tpl_sb *b, char c) { return tpl_sb_put(b, &c, 1); }

bool tpl_sb_printf(tpl_sb *b, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    Q_ASSERT(n >= 0 && (size_t)n < sizeof buf);
    return tpl_sb_put(b, buf, (size_t)n);
}

tv tpl_sb_str(tpl_sb *b) { return tv_strn(b->n ? b->p : "", b->n); }

/* ---- containers ---------------------------------------------------------------- */
tv_list *tv_list_new(tpl_arena *a, size_t cap) {
    tv_list *l = tpl_arena_alloc(a, sizeof *l);
    if (!l) return NULL;
    if (cap == 0) cap = 1;  /* v is never NULL, so memcpy on it is always defined */
    {
        l->v = tpl_arena_alloc(a, cap * sizeof(tv));
        if (!l->v) return NULL;
        l->cap = cap;
    }
    return l;
}

bool tv_list_push(tpl_arena *a, tv_list *l, tv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        tv *nv = tpl_arena_alloc(a, cap * sizeof(tv));
        if (!nv) return false;
        if (l->n) memcpy(nv, l->v, l->n * sizeof(tv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return true;
}

tv_dict *tv_dict_new(tpl_arena *a, size_t cap) {
    tv_dict *d = tpl_arena_alloc(a, sizeof *d);
    if (!d) return NULL;
    if (cap == 0) cap = 1;
    {
        d->keys = tpl_arena_alloc(a, cap * sizeof(tv));
        d->vals = tpl_arena_alloc(a, cap * sizeof(tv));
        if (!d->keys || !d->vals) return NULL;
        d->cap = cap;
    }
    return d;
}

/* Python hashes 1, 1.0 and True alike, so they are one key; lookup is linear because
 * template dicts are small (messages, tool schemas). */
tv *tv_dict_get(const tv_dict *d, tv key) {
    for (size_t i = 0; i < d->n; i++)
        if (tv_eq(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

tv *tv_dict_gets(const tv_dict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].kind == TV_STR && d->keys[i].s.n == n && !memcmp(d->keys[i].s.p, key, n))
            return &d->vals[i];
    return NULL;
}

bool tv_dict_set(tpl_arena *a, tv_dict *d, tv key, tv val) {
    tv *slot = tv_dict_get(d, key);
    if (slot) { *slot = val; return true; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        tv *nk = tpl_arena_alloc(a, cap * sizeof(tv));
        tv *nv = tpl_arena_alloc(a, cap * sizeof(tv));
        if (!nk || !nv) return false;
        if (d->n) {
            memcpy(nk, d->keys, d->n * sizeof(tv));
            memcpy(nv, d->vals, d->n * sizeof(tv));
        }
        d->keys = nk;
        d->vals = nv;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return true;
}

/* ---- Python semantics ------------------------------------------------------------ */
bool tv_truthy(tv v) {
    switch ((tv_kind)v.kind) {
    case TV_UNDEFINED: case TV_NONE: return false;
    case TV_BOOL:  return v.b;
    case TV_INT:   return v.i != 0;
    case TV_FLOAT: return v.f != 0.0;
    case TV_STR:   return v.s.n != 0;
    case TV_LIST:  return v.l->n != 0;
    case TV_DICT:  return v.d->n != 0;
    default:       return true;   /* namespace, callables, generators, loop: objects */
    }
}

bool tv_is_num(tv v) { return v.kind == TV_INT || v.kind == TV_FLOAT || v.kind == TV_BOOL; }

double tv_num(tv v) {
    if (v.kind == TV_INT) return (double)v.i;
    if (v.kind == TV_FLOAT) return v.f;
    if (v.kind == TV_BOOL) return v.b ? 1.0 : 0.0;
    return 0.0;
}

static int64_t tv_as_i64(tv v) { return v.kind == TV_BOOL ? (int64_t)v.b : v.i; }

static bool eq_rec(tv a, tv b, int depth) {
    if (tv_is_num(a) && tv_is_num(b)) {
        if (a.kind != TV_FLOAT && b.kind != TV_FLOAT) return tv_as_i64(a) == tv_as_i64(b);
        return tv_num(a) == tv_num(b);
    }
    if (a.kind != b.kind) return false;
    switch ((tv_kind)a.kind) {
    case TV_UNDEFINED: case TV_NONE: return true;
    case TV_STR: return a.s.n == b.s.n && (a.s.n == 0 || !memcmp(a.s.p, b.s.p, a.s.n));
    case TV_LIST:
        if (a.tuple != b.tuple || a.l->n != b.l->n || depth > TV_MAX_NEST) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!eq_rec(a.l->v[i], b.l->v[i], depth + 1)) return false;
        return true;
    case TV_DICT:
        if (a.d->n != b.d->n || depth > TV_MAX_NEST) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            tv *o = tv_dict_get(b.d, a.d->keys[i]);
            if (!o || !eq_rec(a.d->vals[i], *o, depth + 1)) return false;
        }
        return true;
    case TV_NS:   return a.d == b.d;
    case TV_FUNC: return a.fn == b.fn;
    case TV_GEN:  return a.g == b.g;
    case TV_LOOP: return a.loop == b.loop;
    default: return false;
    }
}

bool tv_eq(tv a, tv b) { return eq_rec(a, b, 0); }

static int cmp_rec(tv a, tv b, bool *ok, int depth) {
    *ok = true;
    if (tv_is_num(a) && tv_is_num(b)) {
        if (a.kind != TV_FLOAT && b.kind != TV_FLOAT) {
            int64_t x = tv_as_i64(a), y = tv_as_i64(b);
            return x < y ? -1 : x > y;
        }
        double x = tv_num(a), y = tv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.kind == TV_STR && b.kind == TV_STR) {
        /* UTF-8 byte order is code point order, which is Python's str order. */
        size_t n = Q_MIN(a.s.n, b.s.n);
        int c = n ? memcmp(a.s.p, b.s.p, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return a.s.n < b.s.n ? -1 : a.s.n > b.s.n;
    }
    if (a.kind == TV_LIST && b.kind == TV_LIST && a.tuple == b.tuple && depth <= TV_MAX_NEST) {
        size_t n = Q_MIN(a.l->n, b.l->n);
        for (size_t i = 0; i < n; i++) {
            if (eq_rec(a.l->v[i], b.l->v[i], depth + 1)) continue;
            return cmp_rec(a.l->v[i], b.l->v[i], ok, depth + 1);
        }
        return a.l->n < b.l->n ? -1 : a.l->n > b.l->n;
    }
    *ok = false;
    return 0;
}

int tv_cmp(tv a, tv b, bool *ok) { return cmp_rec(a, b, ok, 0); }

const char *tv_type_name(tv v) {
    static const char *const names[TV_KIND_COUNT] = {
        [TV_UNDEFINED] = "Undefined", [TV_NONE] = "NoneType", [TV_BOOL] = "bool",
        [TV_INT] = "int", [TV_FLOAT] = "float", [TV_STR] = "str", [TV_LIST] = "list",
        [TV_DICT] = "dict", [TV_NS] = "Namespace", [TV_FUNC] = "function",
        [TV_GEN] = "generator", [TV_LOOP] = "LoopContext",
    };
    if (v.kind == TV_LIST && v.view) {
        static const char *const views[] = { "list", "dict_items", "dict_keys", "dict_values" };
        return views[v.view];
    }
    if (v.kind == TV_LIST && v.tuple) return "tuple";
    return v.kind < TV_KIND_COUNT ? names[v.kind] : "object";
}

/* ---- float repr ------------------------------------------------------------------ */
void tv_float_repr(double f, char *buf, size_t cap) {
    if (isnan(f)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(f)) { snprintf(buf, cap, f < 0 ? "-inf" : "inf"); return; }
    /* Shortest %.*e that reads back to the same double: Python's repr digits. */
    char e[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX: split into sign, digits and decimal exponent. */
    const char *p = e;
    bool neg = false;
    if (*p == '-') { neg = true; p++; }
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++) out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        size_t intlen = (size_t)exp10 + 1;
        for (size_t i = 0; i < intlen; i++) out[o++] = i < nd ? digits[i] : '0';
        out[o++] = '.';
        if (nd > intlen) {
            memcpy(out + o, digits + intlen, nd - intlen);
            o += nd - intlen;
        } else {
            out[o++] = '0';
        }
    }
    out[o] = 0;
    snprintf(buf, cap, "%s", out);
}

/* ---- str / repr ------------------------------------------------------------------ */
static bool py_printable(int32_t cp) {
    if (cp == ' ') return true;
    if (cp < 0x20 || cp == 0x7f) return false;
    if (cp < 0x7f) return true;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}

static bool str_repr_append(tpl_sb *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    tpl_sb_putc(b, q);
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t len = tpl_utf8_decode(p + i, n - i, &cp);
        if (cp == q || cp == '\\') { tpl_sb_putc(b, '\\'); tpl_sb_putc(b, (char)cp); }
        else if (cp == '\n') tpl_sb_put(b, "\\n", 2);
        else if (cp == '\r') tpl_sb_put(b, "\\r", 2);
        else if (cp == '\t') tpl_sb_put(b, "\\t", 2);
        else if (py_printable(cp)) tpl_sb_put(b, p + i, len);
        else if (cp < 0x100) tpl_sb_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp < 0x10000) tpl_sb_printf(b, "\\u%04x", (unsigned)cp);
        else tpl_sb_printf(b, "\\U%08x", (unsigned)cp);
        i += len;
    }
    return tpl_sb_putc(b, q);
}

static bool nest_enter(tpl_sb *b) {
    if (++b->depth > TV_MAX_NEST) {
        b->too_deep = b->overflow = true;
        b->depth--;
        return false;
    }
    return true;
}

static bool seq_repr_append(tpl_sb *b, tv v) {
    const tv_list *l = v.l;
    if (!nest_enter(b)) return false;
    if (v.view) {
        static const char *const names[] = { "", "dict_items(", "dict_keys(", "dict_values(" };
        tpl_sb_put(b, names[v.view], strlen(names[v.view]));
        tv inner = v;
        inner.view = TV_VIEW_NONE;
        seq_repr_append(b, inner);
        b->depth--;
        return tpl_sb_putc(b, ')');
    }
    tpl_sb_putc(b, v.tuple ? '(' : '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i) tpl_sb_put(b, ", ", 2);
        tv_repr_append(b, l->v[i]);
    }
    if (v.tuple && l->n == 1) tpl_sb_putc(b, ',');
    b->depth--;
    return tpl_sb_putc(b, v.tuple ? ')' : ']');
}

static bool dict_repr_append(tpl_sb *b, const tv_dict *d) {
    if (!nest_enter(b)) return false;
    tpl_sb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) tpl_sb_put(b, ", ", 2);
        tv_repr_append(b, d->keys[i]);
        tpl_sb_put(b, ": ", 2);
        tv_repr_append(b, d->vals[i]);
    }
    b->depth--;
    return tpl_sb_putc(b, '}');
}

bool tv_repr_append(tpl_sb *b, tv v) {
    switch ((tv_kind)v.kind) {
    case TV_STR:  return str_repr_append(b, v.s.p, v.s.n);
    case TV_LIST: return seq_repr_append(b, v);
    case TV_DICT: return dict_repr_append(b, v.d);
    case TV_UNDEFINED: return tpl_sb_put(b, "Undefined", 9);  /* repr(Undefined()) */
    default: return tv_str_append(b, v);
    }
}

bool tv_str_append(tpl_sb *b, tv v) {
    char buf[64];
    switch ((tv_kind)v.kind) {
    case TV_UNDEFINED: return true;
    case TV_NONE:  return tpl_sb_put(b, "None", 4);
    case TV_BOOL:  return v.b ? tpl_sb_put(b, "True", 4) : tpl_sb_put(b, "False", 5);
    case TV_INT:   return tpl_sb_printf(b, "%lld", (long long)v.i);
    case TV_FLOAT: tv_float_repr(v.f, buf, sizeof buf); return tpl_sb_put(b, buf, strlen(buf));
    case TV_STR:   return tpl_sb_put(b, v.s.p, v.s.n);
    case TV_LIST:  return seq_repr_append(b, v);
    case TV_DICT:  return dict_repr_append(b, v.d);
    case TV_NS:
        tpl_sb_put(b, "<Namespace ", 11);
        dict_repr_append(b, v.d);
        return tpl_sb_putc(b, '>');
    case TV_FUNC:  return tpl_sb_put(b, "<function>", 10);
    case TV_GEN:   return tpl_sb_put(b, "<generator object>", 18);
    case TV_LOOP:  return tpl_sb_put(b, "<LoopContext>", 13);
    default:       return true;
    }
}

/* ---- UTF-8 ---------------------------------------------------------------------- */
size_t tpl_utf8_decode(const char *p, size_t n, int32_t *cp) {
    utf8proc_int32_t c;
    utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)n, &c);
    if (len <= 0) { *cp = 0xFFFD; return 1; }
    *cp = c;
    return (size_t)len;
}

size_t tpl_utf8_encode(int32_t cp, char *out) {
    utf8proc_ssize_t n = utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
    return n > 0 ? (size_t)n : 0;
}

size_t tpl_utf8_count(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

bool tpl_is_space_cp(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f)) return true;
    if (cp < 0x80) return false;
    switch (cp) {
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200a;
    }
}

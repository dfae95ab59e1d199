/* lex.c — template source to tokens, with jinja2's whitespace control.
 *
 * What it is: the lexer of the Jinja2 subset used by chat templates, configured as
 * transformers configures jinja2 (trim_blocks=True, lstrip_blocks=True,
 * keep_trailing_newline=False). What it is not: the parser.
 *
 * Source normalisation (before anything else): "\r\n" and "\r" become "\n"; one
 * trailing "\n" is dropped.
 *
 * Top level: text up to the next "{{", "{%" or "{#". The opener may carry a sign:
 *   "{{-" "{%-" "{#-"  strip all whitespace before the tag from the text;
 *   "{%+" "{#+"        disable lstrip_blocks for this tag;
 *   otherwise, for "{%" and "{#" (never "{{"), lstrip_blocks: when only spaces/tabs
 *   separate the tag from the start of its line, they are removed.
 * Closers:
 *   "}}"   plain;  "-}}" also strips all whitespace after it;
 *   "%}"   drops one "\n" right after it (trim_blocks);  "-%}" strips all whitespace
 *          after it;  "+%}" keeps what follows;
 *   "#}"   like "%}" (comments are dropped entirely).
 * "{% raw %}...{% endraw %}" yields its body verbatim as text.
 * Inside tags: names [A-Za-z_][A-Za-z0-9_]*, integers and floats (with "_" digit
 * separators and exponents), '...' / "..." strings with Python escapes, operators
 * (longest first: // ** == != <= >=, then single characters). While brackets are open
 * a closer is not recognised (as in jinja2), so "{{ {'a': {}} }}" lexes.
 *
 * Memory: tokens and their texts live in the caller's arena. */
#include "template/ast.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    tpl_arena  *a;
    const char *s;
    size_t      n;
    tpl_tok    *v;
    size_t      nt, cap;
    q_error    *err;
    q_status    st;
} lexer;

void tpl_line_col(const char *src, size_t len, uint32_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (src[i] == '\n') { l++; c = 1; }
        else if (((unsigned char)src[i] & 0xC0) != 0x80) c++;
    }
    *line = l;
    *col = c;
}

static q_status lex_fail(lexer *L, size_t pos, const char *what) {
    int line, col;
    tpl_line_col(L->s, L->n, (uint32_t)pos, &line, &col);
    L->st = q_fail(L->err, Q_ERR_FORMAT, "TemplateSyntaxError: %s (line %d, column %d)", what, line, col);
    return L->st;
}

static tpl_tok *lex_push(lexer *L, tpl_tok_kind k, size_t pos, const char *text, size_t len) {
    if (L->nt == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        tpl_tok *nv = tpl_arena_alloc(L->a, cap * sizeof *nv);
        if (!nv) { L->st = q_fail(L->err, Q_ERR_NOMEM, "template too large"); return NULL; }
        if (L->nt) memcpy(nv, L->v, L->nt * sizeof *nv);
        L->v = nv;
        L->cap = cap;
    }
    tpl_tok *t = &L->v[L->nt++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)k;
    t->pos = (uint32_t)pos;
    if (text) {
        char *c = tpl_arena_alloc(L->a, len + 1);
        if (!c) { L->st = q_fail(L->err, Q_ERR_NOMEM, "template too large"); return NULL; }
        memcpy(c, text, len);
        t->text = c;
        t->len = len;
    } else {
        t->text = "";
    }
    return t;
}

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           (c >= 0x1c && c <= 0x1f);
}
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static bool starts(const lexer *L, size_t pos, const char *lit) {
    size_t n = strlen(lit);
    return pos + n <= L->n && !memcmp(L->s + pos, lit, n);
}

static size_t skip_ws(const lexer *L, size_t pos) {
    while (pos < L->n && is_ws(L->s[pos])) pos++;
    return pos;
}

/* Emits text s[from, to) with the opener's whitespace rules applied. */
static bool emit_text(lexer *L, size_t from, size_t to, char sign, bool is_var) {
    if (sign == '-') {
        while (to > from && is_ws(L->s[to - 1])) to--;
    } else if (sign != '+' && !is_var) {
        /* lstrip_blocks: only whitespace between the line start and the tag. */
        size_t l = to;
        while (l > from && L->s[l - 1] != '\n') l--;
        bool line_start = l > from || from == 0 || L->s[from - 1] == '\n';
        if (line_start && l < to) {
            bool all_ws = true;
            for (size_t i = l; i < to; i++)
                if (!is_ws(L->s[i])) { all_ws = false; break; }
            if (all_ws) to = l;
        }
    }
    if (to > from && !lex_push(L, TK_DATA, from, L->s + from, to - from)) return false;
    return true;
}

/* Python string-literal escapes (jinja2 decodes with "unicode-escape"). */
static bool lex_string(lexer *L, size_t *pos) {
    size_t start = *pos;
    char q = L->s[start];
    size_t i = start + 1;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\' && i + 1 < L->n) i++;
        i++;
    }
    if (i >= L->n) { lex_fail(L, start, "unexpected end of string"); return false; }
    size_t end = i;
    char *out = tpl_arena_alloc(L->a, end - start + 1);
    if (!out) { L->st = q_fail(L->err, Q_ERR_NOMEM, "template too large"); return false; }
    size_t o = 0;
    for (i = start + 1; i < end; i++) {
        char c = L->s[i];
        if (c != '\\' || i + 1 >= end) { out[o++] = c; continue; }
        char e = L->s[++i];
        int32_t cp = -1;
        int hex = 0;
        switch (e) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case '\n': break;  /* line continuation */
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                cp = 0;
                int k = 0;
                while (k < 3 && i < end && L->s[i] >= '0' && L->s[i] <= '7') { cp = cp * 8 + (L->s[i] - '0'); i++; k++; }
                i--;
            } else {
                out[o++] = '\\';
                out[o++] = e;
            }
        }
        if (hex) {
            if (i + (size_t)hex >= end) { lex_fail(L, i, "truncated \\x/\\u escape in string"); return false; }
            uint32_t acc = 0;  /* 8 hex digits may exceed int32: check the range as we go */
            for (int k = 1; k <= hex; k++) {
                char h = L->s[i + (size_t)k];
                int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (d < 0) { lex_fail(L, i, "bad \\x/\\u escape in string"); return false; }
                acc = acc * 16 + (uint32_t)d;
                if (acc > 0x10FFFF) { lex_fail(L, i, "escape out of Unicode range"); return false; }
            }
            cp = (int32_t)acc;
            i += (size_t)hex;
        }
        if (cp >= 0) {
            if (cp > 0x10FFFF) { lex_fail(L, i, "escape out of Unicode range"); return false; }
            o += tpl_utf8_encode(cp, out + o);
        }
    }
    tpl_tok *t = lex_push(L, TK_STRING, start, NULL, 0);
    if (!t) return false;
    t->text = out;
    t->len = o;
    *pos = end + 1;
    return true;
}

/* 0b / 0o / 0x integer literals (with "_" separators); false if s[i] starts none. */
static bool lex_radix(lexer *L, size_t *pos) {
    size_t i = *pos;
    if (L->s[i] != '0' || i + 2 >= L->n) return false;
    char r = (char)(L->s[i + 1] | 32);
    int base = r == 'b' ? 2 : r == 'o' ? 8 : r == 'x' ? 16 : 0;
    if (!base) return false;
    uint64_t v = 0;
    bool any = false, overflow = false;
    size_t j = i + 2;
    for (; j < L->n; j++) {
        char c = L->s[j];
        if (c == '_' && j + 1 < L->n && L->s[j + 1] != '_') continue;
        int d = is_digit(c) ? c - '0' : ((c | 32) >= 'a' && (c | 32) <= 'f') ? (c | 32) - 'a' + 10 : 99;
        if (d >= base) break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = true;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any) return false;
    tpl_tok *t = lex_push(L, TK_INT, i, L->s + i, j - i);
    if (!t) return false;
    if (overflow || v > INT64_MAX) {  /* beyond int64: approximate, as for decimals */
        t->kind = TK_FLOAT;
        t->fval = (double)v;
    } else {
        t->ival = (int64_t)v;
    }
    *pos = j;
    return true;
}

static bool lex_number(lexer *L, size_t *pos) {
    size_t start = *pos, i = start;
    bool is_float = false;
    char buf[128];
    size_t b = 0;
    if (lex_radix(L, pos)) return true;
    if (L->st != Q_OK) return false;
    while (i < L->n && (is_digit(L->s[i]) || (L->s[i] == '_' && i + 1 < L->n && is_digit(L->s[i + 1])))) {
        if (L->s[i] != '_' && b < sizeof buf - 8) buf[b++] = L->s[i];
        i++;
    }
    if (i + 1 < L->n && L->s[i] == '.' && is_digit(L->s[i + 1])) {
        is_float = true;
        buf[b++] = L->s[i++];
        while (i < L->n && (is_digit(L->s[i]) || (L->s[i] == '_' && i + 1 < L->n && is_digit(L->s[i + 1])))) {
            if (L->s[i] != '_' && b < sizeof buf - 8) buf[b++] = L->s[i];
            i++;
        }
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (L->s[j] == '+' || L->s[j] == '-')) j++;
        if (j < L->n && is_digit(L->s[j])) {
            is_float = true;
            buf[b++] = 'e';
            for (size_t k = i + 1; k < j; k++) buf[b++] = L->s[k];
            i = j;
            while (i < L->n && (is_digit(L->s[i]) || L->s[i] == '_')) {
                if (L->s[i] != '_' && b < sizeof buf - 2) buf[b++] = L->s[i];
                i++;
            }
        }
    }
    if (!is_float && L->s[start] == '0') {
        /* jinja2's decimal integers have no leading zeros: "0(_?0)*" only, so "007"
         * lexes as 0, 0, 7 (and then fails to parse, as in jinja2). */
        i = start + 1;
        b = 1;
        while (i < L->n && (L->s[i] == '0' || (L->s[i] == '_' && i + 1 < L->n && L->s[i + 1] == '0'))) i++;
    }
    buf[b] = 0;
    tpl_tok *t = lex_push(L, is_float ? TK_FLOAT : TK_INT, start, L->s + start, i - start);
    if (!t) return false;
    if (is_float) {
        t->fval = strtod(buf, NULL);
    } else {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE) {  /* Python ints are unbounded; ours are int64 */
            t->kind = TK_FLOAT;
            t->fval = strtod(buf, NULL);
        } else {
            t->ival = v;
        }
    }
    *pos = i;
    return true;
}

static const char *const lex_ops2[] = { "//", "**", "==", "!=", "<=", ">=" };
static const char lex_ops1[] = "+-/*%~[](){}<>=.:|,;";

/* Lexes the inside of a tag starting at pos; returns the position after its closer. */
static bool lex_tag(lexer *L, size_t *pos, bool is_var) {
    size_t i = *pos;
    int depth = 0;
    for (;;) {
        i = skip_ws(L, i);
        if (i >= L->n) {
            lex_fail(L, *pos, is_var ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'");
            return false;
        }
        if (depth == 0) {
            if (is_var && (starts(L, i, "}}") || starts(L, i, "-}}"))) {
                bool minus = L->s[i] == '-';
                if (!lex_push(L, TK_VAR_END, i, NULL, 0)) return false;
                i += minus ? 3 : 2;
                if (minus) i = skip_ws(L, i);
                *pos = i;
                return true;
            }
            if (!is_var && (starts(L, i, "%}") || starts(L, i, "-%}") || starts(L, i, "+%}"))) {
                char sign = L->s[i] == '%' ? 0 : L->s[i];
                if (!lex_push(L, TK_BLOCK_END, i, NULL, 0)) return false;
                i += sign ? 3 : 2;
                if (sign == '-') i = skip_ws(L, i);
                else if (!sign && i < L->n && L->s[i] == '\n') i++;  /* trim_blocks */
                *pos = i;
                return true;
            }
        }
        char c = L->s[i];
        if (c == '\'' || c == '"') {
            if (!lex_string(L, &i)) return false;
        } else if (is_digit(c)) {
            if (!lex_number(L, &i)) return false;
        } else if (is_name_start(c)) {
            size_t s = i;
            while (i < L->n && is_name_char(L->s[i])) i++;
            if (!lex_push(L, TK_NAME, s, L->s + s, i - s)) return false;
        } else {
            size_t oplen = 0;
            for (size_t k = 0; k < Q_ARRAY_LEN(lex_ops2); k++)
                if (starts(L, i, lex_ops2[k])) { oplen = 2; break; }
            if (!oplen && c && strchr(lex_ops1, c)) oplen = 1;
            if (!oplen) {
                lex_fail(L, i, "unexpected character in tag");
                return false;
            }
            if (c == '(' || c == '[' || c == '{') depth++;
            else if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
            if (!lex_push(L, TK_OP, i, L->s + i, oplen)) return false;
            i += oplen;
        }
    }
}

/* At pos: "{%" sign? ws "name" ws sign? "%}"; returns the end (after %}) or 0. */
static size_t match_simple_tag(const lexer *L, size_t pos, const char *name, char *open_sign, char *close_sign) {
    size_t i = pos + 2;
    *open_sign = 0;
    if (i < L->n && (L->s[i] == '-' || L->s[i] == '+')) *open_sign = L->s[i++];
    i = skip_ws(L, i);
    if (!starts(L, i, name)) return 0;
    i += strlen(name);
    if (i < L->n && is_name_char(L->s[i])) return 0;
    i = skip_ws(L, i);
    *close_sign = 0;
    if (i < L->n && (L->s[i] == '-' || L->s[i] == '+')) *close_sign = L->s[i++];
    if (!starts(L, i, "%}")) return 0;
    return i + 2;
}

q_status tpl_lex(tpl_arena *a, const char *src, size_t len, tpl_toks *out, q_error *err) {
    /* Normalise newlines; drop one trailing newline. */
    char *s = tpl_arena_alloc(a, len + 1);
    if (!s) return q_fail(err, Q_ERR_NOMEM, "template too large");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;

    lexer L = { .a = a, .s = s, .n = n, .err = err, .st = Q_OK };
    size_t pos = 0;
    while (pos < n) {
        /* Next tag opener. */
        size_t t = pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) {
            if (!lex_push(&L, TK_DATA, pos, s + pos, n - pos)) return L.st;
            break;
        }
        char kind = s[t + 1];
        char sign = (t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+')) ? s[t + 2] : 0;
        if (kind == '{' && sign == '+') sign = 0;  /* "{{+" is not a sign in jinja2 */
        if (!emit_text(&L, pos, t, sign, kind == '{')) return L.st;
        size_t body = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            if (t + 2 == n) break;  /* jinja2 drops a bare "{#" ending the template */
            size_t e = body;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) return lex_fail(&L, t, "missing end of comment tag");
            char csign = (e > body && (s[e - 1] == '-' || s[e - 1] == '+')) ? s[e - 1] : 0;
            pos = e + 2;
            if (csign == '-') pos = skip_ws(&L, pos);
            else if (!csign && pos < n && s[pos] == '\n') pos++;
            continue;
        }
        if (kind == '%') {
            char os, cs;
            size_t e = match_simple_tag(&L, t, "raw", &os, &cs);
            if (e) {
                if (cs == '-') e = skip_ws(&L, e);
                /* Body up to {% endraw %}. */
                size_t r = e, re = 0;
                char es = 0, ecs = 0;
                for (; r + 1 < n; r++)
                    if (s[r] == '{' && s[r + 1] == '%' && (re = match_simple_tag(&L, r, "endraw", &es, &ecs))) break;
                if (!re) return lex_fail(&L, t, "missing endraw tag");
                /* The endraw tag strips like any block tag ("-" or lstrip_blocks). */
                if (!emit_text(&L, e, r, es, false)) return L.st;
                pos = re;
                if (ecs == '-') pos = skip_ws(&L, pos);
                else if (!ecs && pos < n && s[pos] == '\n') pos++;
                continue;
            }
        }
        if (!lex_push(&L, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, t, NULL, 0)) return L.st;
        pos = body;
        if (!lex_tag(&L, &pos, kind == '{')) return L.st;
    }
    if (!lex_push(&L, TK_EOF, n, NULL, 0)) return L.st;
    out->v = L.v;
    out->n = L.nt;
    out->src = s;
    out->len = n;
    return Q_OK;
}

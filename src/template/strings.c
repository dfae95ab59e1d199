/* strings.c — Python str operations shared by filters and methods: strip, replace,
 * case mapping (lower/upper/capitalize/title), and printf-style "%" formatting.
 *
 * Code-point aware (UTF-8 decoded with utf8proc); case mapping is utf8proc's simple
 * per-code-point mapping (Python's full mappings such as "ß".upper() == "SS" differ).
 * Results live in the render arena. */
#include "template/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

static bool cp_in(int32_t cp, tv set) {
    for (size_t i = 0; i < set.s.n;) {
        int32_t c;
        i += tpl_utf8_decode(set.s.p + i, set.s.n - i, &c);
        if (c == cp) return true;
    }
    return false;
}

tv tpl_str_strip(tpl_rt *rt, tv s, tv chars, bool left, bool right) {
    bool ws = chars.kind != TV_STR;
    if (!ws && chars.kind == TV_NONE) ws = true;
    size_t b = 0, e = s.s.n;
    if (left) {
        while (b < e) {
            int32_t cp;
            size_t len = tpl_utf8_decode(s.s.p + b, e - b, &cp);
            if (ws ? !tpl_is_space_cp(cp) : !cp_in(cp, chars)) break;
            b += len;
        }
    }
    if (right) {
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s.s.p[st] & 0xC0) == 0x80) st--;
            int32_t cp;
            tpl_utf8_decode(s.s.p + st, e - st, &cp);
            if (ws ? !tpl_is_space_cp(cp) : !cp_in(cp, chars)) break;
            e = st;
        }
    }
    (void)rt;
    return tv_strn(s.s.p + b, e - b);
}

tv tpl_str_replace(tpl_rt *rt, tv s, tv old, tv new_, int64_t count) {
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    if (count < 0) count = INT64_MAX;
    if (old.s.n == 0) {
        /* Python inserts `new` before every character and at the end. */
        int64_t done = 0;
        size_t i = 0;
        while (i <= s.s.n) {
            if (done < count) { tpl_sb_put(&b, new_.s.p, new_.s.n); done++; }
            if (i == s.s.n) break;
            int32_t cp;
            size_t len = tpl_utf8_decode(s.s.p + i, s.s.n - i, &cp);
            tpl_sb_put(&b, s.s.p + i, len);
            i += len;
        }
        tpl_sb_check(rt, &b);
        return tpl_sb_str(&b);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < s.s.n) {
        const char *hit = done < count ? memmem(s.s.p + i, s.s.n - i, old.s.p, old.s.n) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - s.s.p);
        tpl_sb_put(&b, s.s.p + i, at - i);
        tpl_sb_put(&b, new_.s.p, new_.s.n);
        i = at + old.s.n;
        done++;
    }
    tpl_sb_put(&b, s.s.p + i, s.s.n - i);
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

static bool cp_cased(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

static bool jinja_title_sep(int32_t cp) {
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || tpl_is_space_cp(cp);
}

/* mode: 0 lower, 1 upper, 2 capitalize, 3 Python str.title, 4 jinja2's title filter */
tv tpl_str_case(tpl_rt *rt, tv s, int mode) {
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    bool prev_cased = false, first = true, prev_sep = true;
    for (size_t i = 0; i < s.s.n;) {
        int32_t cp;
        size_t len = tpl_utf8_decode(s.s.p + i, s.s.n - i, &cp);
        int32_t out;
        switch (mode) {
        case 0: out = utf8proc_tolower(cp); break;
        case 1: out = utf8proc_toupper(cp); break;
        case 2: out = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp); break;
        case 3:
            out = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
            prev_cased = cp_cased(cp);
            break;
        default: {
            /* jinja2 splits on runs of [-\s({[<] and upper-cases each item's first char. */
            bool sep = jinja_title_sep(cp);
            bool item_start = first || sep != prev_sep;
            out = item_start ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
            prev_sep = sep;
            break;
        }
        }
        first = false;
        char enc[4];
        size_t el = tpl_utf8_encode(out, enc);
        if (el && out != cp) tpl_sb_put(&b, enc, el);
        else tpl_sb_put(&b, s.s.p + i, len);
        i += len;
    }
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

/* Pads `body` to width code points (left-justified when left). */
static void put_padded(tpl_sb *b, const char *p, size_t n, int width, bool left, char fill) {
    size_t cps = tpl_utf8_count(p, n);
    size_t pad = width > 0 && (size_t)width > cps ? (size_t)width - cps : 0;
    if (!left) for (size_t i = 0; i < pad; i++) tpl_sb_putc(b, fill);
    tpl_sb_put(b, p, n);
    if (left) for (size_t i = 0; i < pad; i++) tpl_sb_putc(b, ' ');
}

tv tpl_str_format_percent(tpl_rt *rt, tv fmt, tv args) {
    const tv *items = &args;
    size_t nitems = 1, next = 0;
    bool mapping = args.kind == TV_DICT;
    if (args.kind == TV_LIST && args.tuple) { items = args.l->v; nitems = args.l->n; }
    tpl_sb b;
    tpl_sb_init_rt(rt, &b);
    const char *p = fmt.s.p, *end = p + fmt.s.n;
    bool used_mapping = false;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        if (!pct) { tpl_sb_put(&b, p, (size_t)(end - p)); break; }
        tpl_sb_put(&b, p, (size_t)(pct - p));
        p = pct + 1;
        if (p >= end) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "incomplete format");
        tv arg = tv_undef(NULL);
        bool have_arg = false;
        if (*p == '(') {
            const char *close = memchr(p, ')', (size_t)(end - p));
            if (!close || !mapping) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "format requires a mapping");
            tv key = tv_strn(p + 1, (size_t)(close - p - 1));
            tv *v = tv_dict_get(args.d, key);
            if (!v) tpl_raise(rt, Q_ERR_FORMAT, "KeyError", "'%.*s'", (int)key.s.n, key.s.p);
            arg = *v;
            have_arg = true;
            used_mapping = true;
            p = close + 1;
        }
        bool left = false, plus = false, space = false, zero = false, alt = false;
        for (; p < end && strchr("-+ 0#", *p); p++) {
            if (*p == '-') left = true;
            else if (*p == '+') plus = true;
            else if (*p == ' ') space = true;
            else if (*p == '0') zero = true;
            else alt = true;
        }
        int width = -1, prec = -1;
        if (p < end && *p == '*') {
            if (next >= nitems) tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "not enough arguments for format string");
            width = (int)tv_num(items[next++]);
            p++;
        } else {
            for (; p < end && *p >= '0' && *p <= '9'; p++) width = (width < 0 ? 0 : width) * 10 + (*p - '0'), width = Q_MIN(width, 10000);
        }
        if (p < end && *p == '.') {
            p++;
            prec = 0;
            for (; p < end && *p >= '0' && *p <= '9'; p++) prec = Q_MIN(prec * 10 + (*p - '0'), 1000);
        }
        while (p < end && (*p == 'h' || *p == 'l' || *p == 'L')) p++;
        if (p >= end) tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "incomplete format");
        char conv = *p++;
        if (conv == '%') { tpl_sb_putc(&b, '%'); continue; }
        if (!have_arg) {
            if (mapping) arg = args;
            else if (next < nitems) arg = items[next++];
            else tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "not enough arguments for format string");
        }
        char spec[32], buf[1200];
        int sl = 0;
        spec[sl++] = '%';
        if (left) spec[sl++] = '-';
        if (plus) spec[sl++] = '+';
        if (space) spec[sl++] = ' ';
        if (zero && !left) spec[sl++] = '0';
        if (alt) spec[sl++] = '#';
        switch (conv) {
        case 's': case 'r': case 'a': {
            tv s = conv == 's' ? tpl_to_str(rt, arg) : tpl_repr(rt, arg);
            size_t n = s.s.n;
            if (prec >= 0) {
                size_t off = 0;
                for (int k = 0; k < prec && off < n; k++) {
                    int32_t cp;
                    off += tpl_utf8_decode(s.s.p + off, n - off, &cp);
                }
                n = off;
            }
            put_padded(&b, s.s.p, n, width, left, ' ');
            break;
        }
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
            if (!tv_is_num(arg))
                tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "%%%c format: a real number is required, not %s", conv, tv_type_name(arg));
            if (conv == 'c') {
                char enc[4];
                size_t el = tpl_utf8_encode((int32_t)tv_num(arg), enc);
                put_padded(&b, enc, el, width, left, ' ');
                break;
            }
            long long iv = arg.kind == TV_FLOAT ? (long long)trunc(arg.f) : (long long)(arg.kind == TV_BOOL ? arg.b : arg.i);
            if (width >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, "%d", width);
            if (prec >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, ".%d", prec);
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = conv == 'i' || conv == 'u' ? 'd' : conv;
            spec[sl] = 0;
            int n = snprintf(buf, sizeof buf, spec, iv);
            tpl_sb_put(&b, buf, (size_t)Q_MAX(0, Q_MIN(n, (int)sizeof buf - 1)));
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            if (!tv_is_num(arg))
                tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "must be real number, not %s", tv_type_name(arg));
            if (width >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, "%d", width);
            if (prec >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, ".%d", Q_MIN(prec, 100));
            spec[sl++] = conv;
            spec[sl] = 0;
            int n = snprintf(buf, sizeof buf, spec, tv_num(arg));
            tpl_sb_put(&b, buf, (size_t)Q_MAX(0, Q_MIN(n, (int)sizeof buf - 1)));
            break;
        }
        default:
            tpl_raise(rt, Q_ERR_FORMAT, "ValueError", "unsupported format character '%c'", conv);
        }
    }
    if (!mapping && !used_mapping && next < nitems && !(nitems == 1 && args.kind != TV_LIST))
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "not all arguments converted during string formatting");
    if (!mapping && nitems == 1 && next == 0 && !(args.kind == TV_LIST && args.tuple))
        tpl_raise(rt, Q_ERR_FORMAT, "TypeError", "not all arguments converted during string formatting");
    tpl_sb_check(rt, &b);
    return tpl_sb_str(&b);
}

/* parse.c — tokens to syntax tree, following jinja2's grammar.
 *
 * What it is: a recursive-descent parser for the statements and expressions chat
 * templates use. What it is not: an evaluator; names of filters and tests are checked
 * at render time (jinja2 >= 3 also defers unknown filters inside conditionals).
 *
 * Statements: for (tuple targets, "if" filter, else), if/elif/else, set (name, tuple,
 * ns.attr, and set blocks with an optional filter), macro (defaults), filter blocks,
 * break/continue (loopcontrols), raw (lexer), generation (body rendered unchanged).
 * call blocks, include/import/extends/block and recursive loops are refused with a
 * clear error naming the line.
 *
 * Expression precedence, loosest first (jinja2's parser):
 *   a if c else b  >  or  >  and  >  not  >  comparisons (== != < <= > >= in, not in;
 *   chained)  >  + -  >  ~  >  * / // %  >  **  >  unary - +  >  primary with postfix
 *   (.attr  [item]  [a:b:c]  (call))  and filters/tests (|f(args)  is [not] t args).
 *
 * Memory: nodes live in prog->arena. Errors longjmp to tpl_parse, which fills err. */
#include "template/ast.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TPL_PARSE_MAX_DEPTH 200

typedef struct parser {
    tpl_program    *prog;
    const tpl_tok  *t;
    size_t          n, i;
    q_error        *err;
    q_status        st;
    int             depth;
    int             loops;   /* enclosing for bodies (a macro body starts at 0) */
    jmp_buf         jb;
} parser;

static _Noreturn void p_fail(parser *P, uint32_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static _Noreturn void p_fail(parser *P, uint32_t pos, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    tpl_line_col(P->prog->src, P->prog->len, pos, &line, &col);
    P->st = q_fail(P->err, Q_ERR_FORMAT, "TemplateSyntaxError: %s (line %d, column %d)", msg, line, col);
    longjmp(P->jb, 1);
}

/* A construct this interpreter does not implement: Q_ERR_UNSUPPORTED, so callers can
 * fall back (q_template_error_is_unsupported). */
static _Noreturn void p_unsupported(parser *P, uint32_t pos, const char *what) {
    int line, col;
    tpl_line_col(P->prog->src, P->prog->len, pos, &line, &col);
    P->st = q_fail(P->err, Q_ERR_UNSUPPORTED, "TemplateSyntaxError: unsupported feature: %s (line %d, column %d)", what,
                   line, col);
    longjmp(P->jb, 1);
}

static _Noreturn void p_nomem(parser *P) {
    P->st = q_fail(P->err, Q_ERR_NOMEM, "out of memory while parsing the template");
    longjmp(P->jb, 1);
}

static const tpl_tok *cur(parser *P) { return &P->t[P->i]; }
static const tpl_tok *peek(parser *P, size_t k) { return &P->t[Q_MIN(P->i + k, P->n - 1)]; }
static void advance(parser *P) { if (P->i + 1 < P->n) P->i++; }

static bool is_op(const tpl_tok *t, const char *op) { return t->kind == TK_OP && !strcmp(t->text, op); }
static bool is_name(const tpl_tok *t, const char *nm) { return t->kind == TK_NAME && !strcmp(t->text, nm); }

static const char *tok_desc(const tpl_tok *t) {
    static const char *const names[TK_KIND_COUNT] = {
        [TK_EOF] = "end of template", [TK_DATA] = "text", [TK_VAR_BEGIN] = "'{{'",
        [TK_VAR_END] = "'}}'", [TK_BLOCK_BEGIN] = "'{%'", [TK_BLOCK_END] = "'%}'",
        [TK_NAME] = NULL, [TK_STRING] = "string", [TK_INT] = "integer", [TK_FLOAT] = "float",
        [TK_OP] = NULL,
    };
    return names[t->kind] ? names[t->kind] : t->text;
}

static void expect_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) p_fail(P, cur(P)->pos, "expected '%s', got '%s'", op, tok_desc(cur(P)));
    advance(P);
}

static void expect_kind(parser *P, tpl_tok_kind k, const char *what) {
    if (cur(P)->kind != k) p_fail(P, cur(P)->pos, "expected %s, got '%s'", what, tok_desc(cur(P)));
    advance(P);
}

static const char *expect_name(parser *P) {
    if (cur(P)->kind != TK_NAME) p_fail(P, cur(P)->pos, "expected a name, got '%s'", tok_desc(cur(P)));
    const char *s = cur(P)->text;
    advance(P);
    return s;
}

static tpl_node *node_new(parser *P, tpl_node_kind k, uint32_t pos) {
    tpl_node *nd = tpl_arena_alloc(&P->prog->arena, sizeof *nd);
    if (!nd) p_nomem(P);
    nd->kind = (uint8_t)k;
    nd->pos = pos;
    return nd;
}

static void nodes_push(parser *P, tpl_nodes *v, tpl_node *nd) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        tpl_node **nv = tpl_arena_alloc(&P->prog->arena, cap * sizeof *nv);
        if (!nv) p_nomem(P);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = nd;
}

/* ---- expressions ---------------------------------------------------------------- */
static tpl_node *parse_expr(parser *P);
static tpl_node *parse_or(parser *P);
static tpl_node *parse_unary(parser *P, bool with_filter);
static tpl_node *parse_postfix(parser *P, tpl_node *nd);
static tpl_node *parse_filter_expr(parser *P, tpl_node *nd);

static void depth_enter(parser *P) {
    if (++P->depth > TPL_PARSE_MAX_DEPTH)
        p_fail(P, cur(P)->pos, "expression nested deeper than %d levels", TPL_PARSE_MAX_DEPTH);
}

/* (args) after the '(' has been consumed; fills nd->args / kwnames / kwvals. */
static void parse_call_args(parser *P, tpl_node *nd) {
    size_t nkw = 0, capkw = 0;
    while (!is_op(cur(P), ")")) {
        if (nd->args.n || nkw) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;  /* trailing comma */
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            p_unsupported(P, cur(P)->pos, "*args / **kwargs in calls");
        if (cur(P)->kind == TK_NAME && is_op(peek(P, 1), "=")) {
            const char *kn = cur(P)->text;
            advance(P);
            advance(P);
            if (nkw == capkw) {
                capkw = capkw ? capkw * 2 : 4;
                const char **nk = tpl_arena_alloc(&P->prog->arena, capkw * sizeof *nk);
                if (!nk) p_nomem(P);
                if (nkw) memcpy(nk, nd->kwnames, nkw * sizeof *nk);
                nd->kwnames = nk;
            }
            nd->kwnames[nkw++] = kn;
            nodes_push(P, &nd->kwvals, parse_expr(P));
        } else {
            if (nkw) p_fail(P, cur(P)->pos, "positional argument after keyword argument");
            nodes_push(P, &nd->args, parse_expr(P));
        }
    }
    advance(P);  /* ')' */
}

/* Parses "expr, expr, ..." (a tuple when there is a comma) or one expression. */
/* no_cond: elements are parsed without a trailing inline-if (for iterables and if
 * tests, as jinja2's parse_tuple(with_condexpr=False)). */
static tpl_node *parse_tuple(parser *P, bool no_cond, bool explicit_parens) {
    uint32_t pos = cur(P)->pos;
    tpl_node *tup = NULL, *first = NULL;
    for (;;) {
        if (tup || first) {
            if (!is_op(cur(P), ",")) break;
            advance(P);
            if (!tup) {
                tup = node_new(P, N_TUPLE, pos);
                nodes_push(P, &tup->args, first);
            }
        }
        const tpl_tok *t = cur(P);
        if (t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || is_op(t, ")") || is_name(t, "in") ||
            (tup && is_op(t, "=")))
            break;
        tpl_node *e = no_cond ? parse_or(P) : parse_expr(P);
        if (!first && !tup) first = e;
        else nodes_push(P, &tup->args, e);
    }
    if (tup) return tup;
    if (!first) {
        if (explicit_parens) return node_new(P, N_TUPLE, pos);
        p_fail(P, pos, "expected an expression, got '%s'", tok_desc(cur(P)));
    }
    return first;
}

static tpl_node *parse_primary(parser *P) {
    const tpl_tok *t = cur(P);
    tpl_node *nd;
    switch ((tpl_tok_kind)t->kind) {
    case TK_NAME:
        if (!strcmp(t->text, "true") || !strcmp(t->text, "True")) { nd = node_new(P, N_CONST, t->pos); nd->val = tv_bool(true); }
        else if (!strcmp(t->text, "false") || !strcmp(t->text, "False")) { nd = node_new(P, N_CONST, t->pos); nd->val = tv_bool(false); }
        else if (!strcmp(t->text, "none") || !strcmp(t->text, "None")) { nd = node_new(P, N_CONST, t->pos); nd->val = tv_none(); }
        else { nd = node_new(P, N_NAME, t->pos); nd->name = t->text; }
        advance(P);
        return nd;
    case TK_STRING: {
        /* Adjacent string literals concatenate. */
        nd = node_new(P, N_CONST, t->pos);
        tpl_sb b;
        tpl_sb_init(&b, &P->prog->arena, 0);
        while (cur(P)->kind == TK_STRING) {
            if (!tpl_sb_put(&b, cur(P)->text, cur(P)->len)) p_nomem(P);
            advance(P);
        }
        nd->val = tpl_sb_str(&b);
        return nd;
    }
    case TK_INT:
        nd = node_new(P, N_CONST, t->pos);
        nd->val = tv_int(t->ival);
        advance(P);
        return nd;
    case TK_FLOAT:
        nd = node_new(P, N_CONST, t->pos);
        nd->val = tv_float(t->fval);
        advance(P);
        return nd;
    case TK_OP:
        if (is_op(t, "(")) {
            advance(P);
            nd = parse_tuple(P, false, true);
            expect_op(P, ")");
            return nd;
        }
        if (is_op(t, "[")) {
            nd = node_new(P, N_LIST, t->pos);
            advance(P);
            while (!is_op(cur(P), "]")) {
                if (nd->args.n) expect_op(P, ",");
                if (is_op(cur(P), "]")) break;
                nodes_push(P, &nd->args, parse_expr(P));
            }
            advance(P);
            return nd;
        }
        if (is_op(t, "{")) {
            nd = node_new(P, N_DICT, t->pos);
            advance(P);
            while (!is_op(cur(P), "}")) {
                if (nd->args.n) expect_op(P, ",");
                if (is_op(cur(P), "}")) break;
                nodes_push(P, &nd->args, parse_expr(P));
                expect_op(P, ":");
                nodes_push(P, &nd->args2, parse_expr(P));
            }
            advance(P);
            return nd;
        }
        break;
    default:
        break;
    }
    p_fail(P, t->pos, "unexpected '%s'", tok_desc(t));
}

static tpl_node *parse_subscript(parser *P, tpl_node *obj) {
    const tpl_tok *t = cur(P);
    if (is_op(t, ".")) {
        advance(P);
        tpl_node *nd = node_new(P, N_GETATTR, t->pos);
        nd->a = obj;
        if (cur(P)->kind == TK_INT) {  /* foo.0 is foo[0] */
            nd->kind = N_GETITEM;
            nd->b = node_new(P, N_CONST, cur(P)->pos);
            nd->b->val = tv_int(cur(P)->ival);
            advance(P);
            return nd;
        }
        nd->name = expect_name(P);
        return nd;
    }
    /* '[' */
    advance(P);
    tpl_node *items[3] = { NULL, NULL, NULL };
    bool is_slice = false;
    int part = 0;
    tpl_node *tuple = NULL;
    for (;;) {
        if (is_op(cur(P), ":")) {
            is_slice = true;
            if (++part > 2) p_fail(P, cur(P)->pos, "too many ':' in slice");
            advance(P);
            continue;
        }
        if (is_op(cur(P), "]")) break;
        if (is_op(cur(P), ",") && !is_slice) {
            if (!items[0] && !tuple) p_fail(P, cur(P)->pos, "unexpected ','");
            advance(P);
            if (is_op(cur(P), "]")) p_fail(P, cur(P)->pos, "unexpected ']'");
            if (!tuple) {
                tuple = node_new(P, N_TUPLE, t->pos);
                if (items[0]) nodes_push(P, &tuple->args, items[0]);
            }
            continue;
        }
        tpl_node *e = parse_expr(P);
        if (tuple) nodes_push(P, &tuple->args, e);
        else if (items[part]) p_fail(P, cur(P)->pos, "expected ']' or ':'");
        else items[part] = e;
    }
    advance(P);
    tpl_node *nd = node_new(P, is_slice ? N_SLICE : N_GETITEM, t->pos);
    nd->a = obj;
    if (is_slice) {
        nd->b = items[0];
        nd->c = items[1];
        nd->d = items[2];
    } else {
        nd->b = tuple ? tuple : items[0];
        if (!nd->b) p_fail(P, t->pos, "expected an index inside []");
    }
    return nd;
}

static tpl_node *parse_postfix(parser *P, tpl_node *nd) {
    for (;;) {
        const tpl_tok *t = cur(P);
        if (is_op(t, ".") || is_op(t, "[")) {
            nd = parse_subscript(P, nd);
        } else if (is_op(t, "(")) {
            advance(P);
            tpl_node *c = node_new(P, N_CALL, t->pos);
            c->a = nd;
            parse_call_args(P, c);
            nd = c;
        } else {
            return nd;
        }
    }
}

static const char *parse_dotted_name(parser *P) {
    const char *nm = expect_name(P);
    while (is_op(cur(P), ".") && peek(P, 1)->kind == TK_NAME) {
        advance(P);
        const char *part = expect_name(P);
        size_t a = strlen(nm), b = strlen(part);
        char *s = tpl_arena_alloc(&P->prog->arena, a + b + 2);
        if (!s) p_nomem(P);
        memcpy(s, nm, a);
        s[a] = '.';
        memcpy(s + a + 1, part, b + 1);
        nm = s;
    }
    return nm;
}

static tpl_node *parse_filter(parser *P, tpl_node *in) {
    uint32_t pos = cur(P)->pos;
    tpl_node *f = node_new(P, N_FILTER, pos);
    f->a = in;
    f->name = parse_dotted_name(P);
    if (is_op(cur(P), "(")) {
        advance(P);
        parse_call_args(P, f);
    }
    return f;
}

static tpl_node *parse_test(parser *P, tpl_node *in) {
    uint32_t pos = cur(P)->pos;
    advance(P);  /* 'is' */
    tpl_node *t = node_new(P, N_TEST, pos);
    t->a = in;
    if (is_name(cur(P), "not")) { t->flag = true; advance(P); }
    t->name = parse_dotted_name(P);
    const tpl_tok *c = cur(P);
    if (is_op(c, "(")) {
        advance(P);
        parse_call_args(P, t);
    } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT ||
                is_op(c, "[") || is_op(c, "{")) &&
               !(is_name(c, "else") || is_name(c, "or") || is_name(c, "and") || is_name(c, "if") ||
                 is_name(c, "in") || is_name(c, "is") || is_name(c, "not"))) {
        /* "x is divisibleby 3": one argument, a primary with postfix. */
        tpl_node *arg = parse_postfix(P, parse_primary(P));
        nodes_push(P, &t->args, arg);
    }
    return t;
}

static tpl_node *parse_filter_expr(parser *P, tpl_node *nd) {
    for (;;) {
        if (is_op(cur(P), "|")) {
            advance(P);
            nd = parse_filter(P, nd);
        } else if (is_name(cur(P), "is")) {
            nd = parse_test(P, nd);
        } else if (is_op(cur(P), "(")) {
            uint32_t pos = cur(P)->pos;
            advance(P);
            tpl_node *c = node_new(P, N_CALL, pos);
            c->a = nd;
            parse_call_args(P, c);
            nd = c;
        } else {
            return nd;
        }
    }
}

static tpl_node *parse_unary(parser *P, bool with_filter) {
    depth_enter(P);
    const tpl_tok *t = cur(P);
    tpl_node *nd;
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(P);
        nd = node_new(P, is_op(t, "-") ? N_NEG : N_POS, t->pos);
        nd->a = parse_unary(P, false);
    } else {
        nd = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) nd = parse_filter_expr(P, nd);
    P->depth--;
    return nd;
}

static tpl_node *binop(parser *P, tpl_op op, uint32_t pos, tpl_node *l, tpl_node *r) {
    tpl_node *nd = node_new(P, N_BINOP, pos);
    nd->op = (uint8_t)op;
    nd->a = l;
    nd->b = r;
    return nd;
}

static tpl_node *parse_pow(parser *P) {
    tpl_node *l = parse_unary(P, true);
    while (is_op(cur(P), "**")) {
        uint32_t pos = cur(P)->pos;
        advance(P);
        l = binop(P, OP_POW, pos, l, parse_unary(P, true));
    }
    return l;
}

static tpl_node *parse_math2(parser *P) {
    tpl_node *l = parse_pow(P);
    for (;;) {
        const tpl_tok *t = cur(P);
        tpl_op op = is_op(t, "*") ? OP_MUL : is_op(t, "/") ? OP_DIV : is_op(t, "//") ? OP_FLOORDIV
                  : is_op(t, "%") ? OP_MOD : OP_NONE;
        if (op == OP_NONE) return l;
        advance(P);
        l = binop(P, op, t->pos, l, parse_pow(P));
    }
}

static tpl_node *parse_concat(parser *P) {
    tpl_node *first = parse_math2(P);
    if (!is_op(cur(P), "~")) return first;
    tpl_node *nd = node_new(P, N_CONCAT, first->pos);
    nodes_push(P, &nd->args, first);
    while (is_op(cur(P), "~")) {
        advance(P);
        nodes_push(P, &nd->args, parse_math2(P));
    }
    return nd;
}

static tpl_node *parse_math1(parser *P) {
    tpl_node *l = parse_concat(P);
    for (;;) {
        const tpl_tok *t = cur(P);
        tpl_op op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : OP_NONE;
        if (op == OP_NONE) return l;
        advance(P);
        l = binop(P, op, t->pos, l, parse_concat(P));
    }
}

static tpl_node *parse_compare(parser *P) {
    tpl_node *first = parse_math1(P);
    tpl_node *cmp = NULL;
    uint8_t ops[64];
    size_t nops = 0;
    for (;;) {
        const tpl_tok *t = cur(P);
        tpl_op op = is_op(t, "==") ? OP_EQ : is_op(t, "!=") ? OP_NE : is_op(t, "<") ? OP_LT
                  : is_op(t, "<=") ? OP_LE : is_op(t, ">") ? OP_GT : is_op(t, ">=") ? OP_GE
                  : is_name(t, "in") ? OP_IN
                  : (is_name(t, "not") && is_name(peek(P, 1), "in")) ? OP_NOTIN : OP_NONE;
        if (op == OP_NONE) break;
        advance(P);
        if (op == OP_NOTIN) advance(P);
        if (!cmp) {
            cmp = node_new(P, N_COMPARE, first->pos);
            cmp->a = first;
        }
        if (nops == Q_ARRAY_LEN(ops)) p_fail(P, t->pos, "comparison chain too long");
        ops[nops++] = (uint8_t)op;
        nodes_push(P, &cmp->args, parse_math1(P));
    }
    if (!cmp) return first;
    cmp->ops = tpl_arena_alloc(&P->prog->arena, nops);
    if (!cmp->ops) p_nomem(P);
    memcpy(cmp->ops, ops, nops);
    return cmp;
}

static tpl_node *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        depth_enter(P);
        tpl_node *nd = node_new(P, N_NOT, cur(P)->pos);
        advance(P);
        nd->a = parse_not(P);
        P->depth--;
        return nd;
    }
    return parse_compare(P);
}

static tpl_node *parse_and(parser *P) {
    tpl_node *l = parse_not(P);
    while (is_name(cur(P), "and")) {
        tpl_node *nd = node_new(P, N_AND, cur(P)->pos);
        advance(P);
        nd->a = l;
        nd->b = parse_not(P);
        l = nd;
    }
    return l;
}

static tpl_node *parse_or(parser *P) {
    tpl_node *l = parse_and(P);
    while (is_name(cur(P), "or")) {
        tpl_node *nd = node_new(P, N_OR, cur(P)->pos);
        advance(P);
        nd->a = l;
        nd->b = parse_and(P);
        l = nd;
    }
    return l;
}

static tpl_node *parse_expr(parser *P) {
    depth_enter(P);
    tpl_node *e = parse_or(P);
    while (is_name(cur(P), "if")) {
        tpl_node *nd = node_new(P, N_COND, cur(P)->pos);
        advance(P);
        nd->b = e;
        nd->a = parse_or(P);
        if (is_name(cur(P), "else")) {
            advance(P);
            nd->c = parse_expr(P);
        }
        e = nd;
    }
    P->depth--;
    return e;
}

/* ---- statements ----------------------------------------------------------------- */
static size_t parse_body(parser *P, tpl_nodes *body, const char *const *ends);

/* A target: name, ns.attr, or a tuple of names. */
static tpl_node *parse_target(parser *P, bool allow_attr) {
    uint32_t pos = cur(P)->pos;
    tpl_node *first = NULL, *tup = NULL;
    bool paren = false;
    if (is_op(cur(P), "(")) { paren = true; advance(P); }
    for (;;) {
        tpl_node *nd = node_new(P, N_NAME, cur(P)->pos);
        nd->name = expect_name(P);
        if (allow_attr && is_op(cur(P), ".")) {
            advance(P);
            tpl_node *g = node_new(P, N_GETATTR, nd->pos);
            g->a = nd;
            g->name = expect_name(P);
            nd = g;
        }
        if (!first) first = nd;
        else nodes_push(P, &tup->args, nd);
        if (!is_op(cur(P), ",")) break;
        advance(P);
        if (!tup) {
            tup = node_new(P, N_TUPLE, pos);
            nodes_push(P, &tup->args, first);
        }
        if (cur(P)->kind != TK_NAME) break;
    }
    if (paren) expect_op(P, ")");
    return tup ? tup : first;
}

static void end_block(parser *P) { expect_kind(P, TK_BLOCK_END, "'%}'"); }

static tpl_node *stmt_for(parser *P, uint32_t pos) {
    tpl_node *nd = node_new(P, N_FOR, pos);
    nd->a = parse_target(P, false);
    if (!is_name(cur(P), "in")) p_fail(P, cur(P)->pos, "expected 'in' in for statement");
    advance(P);
    nd->b = parse_tuple(P, true, false);
    if (is_name(cur(P), "if")) {
        advance(P);
        nd->d = parse_expr(P);
    }
    if (is_name(cur(P), "recursive")) p_unsupported(P, cur(P)->pos, "recursive loops");
    end_block(P);
    static const char *const ends[] = { "endfor", "else", NULL };
    P->loops++;
    size_t which = parse_body(P, &nd->body, ends);
    P->loops--;
    if (which == 1) {
        end_block(P);
        static const char *const ends2[] = { "endfor", NULL };
        parse_body(P, &nd->else2, ends2);
    }
    end_block(P);
    return nd;
}

static tpl_node *stmt_if(parser *P, uint32_t pos) {
    tpl_node *nd = node_new(P, N_IF, pos);
    nd->a = parse_tuple(P, true, false);
    end_block(P);
    static const char *const ends[] = { "endif", "elif", "else", NULL };
    size_t which = parse_body(P, &nd->body, ends);
    if (which == 1) {  /* elif: a nested if as the else branch */
        nodes_push(P, &nd->else2, stmt_if(P, cur(P)->pos));
        return nd;
    }
    if (which == 2) {
        end_block(P);
        static const char *const ends2[] = { "endif", NULL };
        parse_body(P, &nd->else2, ends2);
    }
    end_block(P);
    return nd;
}

static tpl_node *stmt_set(parser *P, uint32_t pos) {
    tpl_node *target = parse_target(P, true);
    if (is_op(cur(P), "=")) {
        advance(P);
        tpl_node *nd = node_new(P, N_SET, pos);
        nd->a = target;
        nd->b = parse_tuple(P, false, false);
        end_block(P);
        return nd;
    }
    tpl_node *nd = node_new(P, N_SETBLOCK, pos);
    nd->a = target;
    if (target->kind != N_NAME) p_fail(P, pos, "a set block assigns one plain name");
    tpl_node *chain = NULL;
    while (is_op(cur(P), "|")) {
        advance(P);
        chain = parse_filter(P, chain);
    }
    nd->d = chain;
    end_block(P);
    static const char *const ends[] = { "endset", NULL };
    parse_body(P, &nd->body, ends);
    end_block(P);
    return nd;
}

static tpl_node *stmt_macro(parser *P, uint32_t pos) {
    tpl_node *nd = node_new(P, N_MACRO, pos);
    nd->name = expect_name(P);
    expect_op(P, "(");
    while (!is_op(cur(P), ")")) {
        if (nd->args.n) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;
        tpl_node *param = node_new(P, N_NAME, cur(P)->pos);
        param->name = expect_name(P);
        nodes_push(P, &nd->args, param);
        tpl_node *def = NULL;
        if (is_op(cur(P), "=")) {
            advance(P);
            def = parse_expr(P);
        }
        nodes_push(P, &nd->args2, def);
    }
    advance(P);
    end_block(P);
    static const char *const ends[] = { "endmacro", NULL };
    int saved_loops = P->loops;
    P->loops = 0;  /* a macro body is its own function: break cannot leave it */
    parse_body(P, &nd->body, ends);
    P->loops = saved_loops;
    if (cur(P)->kind == TK_NAME) advance(P);  /* {% endmacro name %} */
    end_block(P);
    return nd;
}

static tpl_node *stmt_filter(parser *P, uint32_t pos) {
    tpl_node *nd = node_new(P, N_FILTERBLOCK, pos);
    tpl_node *chain = parse_filter(P, NULL);
    while (is_op(cur(P), "|")) {
        advance(P);
        chain = parse_filter(P, chain);
    }
    nd->d = chain;
    end_block(P);
    static const char *const ends[] = { "endfilter", NULL };
    parse_body(P, &nd->body, ends);
    end_block(P);
    return nd;
}

static tpl_node *stmt_break(parser *P, uint32_t pos) {
    if (!P->loops) p_fail(P, pos, "'break' outside loop");
    end_block(P);
    return node_new(P, N_BREAK, pos);
}

static tpl_node *stmt_continue(parser *P, uint32_t pos) {
    if (!P->loops) p_fail(P, pos, "'continue' not properly in loop");
    end_block(P);
    return node_new(P, N_CONTINUE, pos);
}

static tpl_node *stmt_generation(parser *P, uint32_t pos) {
    tpl_node *nd = node_new(P, N_SCOPE, pos);
    end_block(P);
    static const char *const ends[] = { "endgeneration", NULL };
    parse_body(P, &nd->body, ends);
    end_block(P);
    return nd;
}

typedef tpl_node *(*stmt_fn)(parser *P, uint32_t pos);
typedef struct stmt_entry { const char *name; stmt_fn fn; } stmt_entry;

/* Sorted by name for bsearch. */
static const stmt_entry stmt_table[] = {
    { "break",      stmt_break },
    { "continue",   stmt_continue },
    { "filter",     stmt_filter },
    { "for",        stmt_for },
    { "generation", stmt_generation },
    { "if",         stmt_if },
    { "macro",      stmt_macro },
    { "set",        stmt_set },
};

static int stmt_cmp(const void *key, const void *e) { return strcmp(key, ((const stmt_entry *)e)->name); }

/* Parses statements until a block tag named one of ends (NULL-terminated); returns
 * its index with the cursor after the name. ends == NULL: until end of template. */
static size_t parse_body(parser *P, tpl_nodes *body, const char *const *ends) {
    uint32_t start = cur(P)->pos;
    for (;;) {
        const tpl_tok *t = cur(P);
        switch ((tpl_tok_kind)t->kind) {
        case TK_EOF:
            if (ends) p_fail(P, start, "unexpected end of template: missing '%s'", ends[0]);
            return 0;
        case TK_DATA: {
            tpl_node *nd = node_new(P, N_DATA, t->pos);
            nd->val = tv_strn(t->text, t->len);
            nodes_push(P, body, nd);
            advance(P);
            break;
        }
        case TK_VAR_BEGIN: {
            advance(P);
            tpl_node *nd = node_new(P, N_OUTPUT, t->pos);
            nd->a = parse_tuple(P, false, false);
            expect_kind(P, TK_VAR_END, "'}}'");
            nodes_push(P, body, nd);
            break;
        }
        case TK_BLOCK_BEGIN: {
            advance(P);
            const tpl_tok *nt = cur(P);
            if (nt->kind != TK_NAME) p_fail(P, nt->pos, "expected a statement name after '{%%'");
            for (size_t k = 0; ends && ends[k]; k++)
                if (!strcmp(nt->text, ends[k])) { advance(P); return k; }
            const stmt_entry *e = bsearch(nt->text, stmt_table, Q_ARRAY_LEN(stmt_table), sizeof stmt_table[0], stmt_cmp);
            if (!e) {
                if (!strncmp(nt->text, "end", 3) || !strcmp(nt->text, "elif") || !strcmp(nt->text, "else"))
                    p_fail(P, nt->pos, "unexpected '%s'%s%s", nt->text, ends ? ", expected " : "", ends ? ends[0] : "");
                /* Tags jinja2 has but chat templates do not need: unsupported (the
                 * caller may fall back); any other name is jinja2's syntax error. */
                static const char *const known[] = { "autoescape", "block", "call", "do", "extends", "from",
                                                     "import", "include", "pluralize", "trans", "with" };
                for (size_t k = 0; k < Q_ARRAY_LEN(known); k++) {
                    if (strcmp(nt->text, known[k])) continue;
                    char what[96];
                    snprintf(what, sizeof what, "'{%% %.40s %%}' statement", nt->text);
                    p_unsupported(P, nt->pos, what);
                }
                p_fail(P, nt->pos, "Encountered unknown tag '%.60s'.", nt->text);
            }
            advance(P);
            P->depth++;
            if (P->depth > TPL_PARSE_MAX_DEPTH) p_fail(P, nt->pos, "statements nested deeper than %d levels", TPL_PARSE_MAX_DEPTH);
            nodes_push(P, body, e->fn(P, nt->pos));
            P->depth--;
            break;
        }
        default:
            p_fail(P, t->pos, "unexpected '%s'", tok_desc(t));
        }
    }
}

q_status tpl_parse(tpl_program *prog, const tpl_toks *toks, q_error *err) {
    parser P = { .prog = prog, .t = toks->v, .n = toks->n, .i = 0, .err = err, .st = Q_OK };
    Q_ASSERT(toks->n > 0 && toks->v[toks->n - 1].kind == TK_EOF);
    if (setjmp(P.jb)) return P.st;
    parse_body(&P, &prog->body, NULL);
    return Q_OK;
}

/* ast.h — tokens (lex.c) and syntax tree (parse.c) of the template language.
 *
 * What it is: the shapes shared by the lexer, parser and evaluator. What it is not:
 * any semantics. Memory: tokens and nodes live in the compile arena of the template
 * (struct tpl_program), which also owns the normalised source they point into. */
#ifndef QUARREL_TEMPLATE_AST_H
#define QUARREL_TEMPLATE_AST_H

#include "template/value.h"
#include "quarrel/status.h"

/* ---- tokens ------------------------------------------------------------------- */
typedef enum tpl_tok_kind {
    TK_EOF = 0,
    TK_DATA,         /* template text, already whitespace-controlled */
    TK_VAR_BEGIN,    /* {{ */
    TK_VAR_END,      /* }} */
    TK_BLOCK_BEGIN,  /* {% */
    TK_BLOCK_END,    /* %} */
    TK_NAME,
    TK_STRING,       /* text = unescaped bytes */
    TK_INT,
    TK_FLOAT,
    TK_OP,           /* text = the operator ("+", "//", "[", ...) */
    TK_KIND_COUNT
} tpl_tok_kind;

typedef struct tpl_tok {
    uint8_t     kind;     /* tpl_tok_kind */
    const char *text;     /* NUL-terminated in the arena */
    size_t      len;
    int64_t     ival;
    double      fval;
    uint32_t    pos;      /* byte offset in the normalised source, for line/column */
} tpl_tok;

typedef struct tpl_toks {
    tpl_tok    *v;
    size_t      n;
    const char *src;   /* the normalised source the offsets refer to */
    size_t      len;
} tpl_toks;

/* Tokenises src (normalised: "\r\n"/"\r" -> "\n", one trailing "\n" dropped) with
 * trim_blocks and lstrip_blocks on, as transformers configures jinja2. */
q_status tpl_lex(tpl_arena *a, const char *src, size_t len, tpl_toks *out, q_error *err);

/* Line and column (1-based) of byte offset pos in src. */
void tpl_line_col(const char *src, size_t len, uint32_t pos, int *line, int *col);

/* ---- nodes -------------------------------------------------------------------- */
typedef enum tpl_node_kind {
    /* expressions */
    N_CONST = 0,   /* val */
    N_NAME,        /* name */
    N_GETATTR,     /* a.name */
    N_GETITEM,     /* a[b] */
    N_SLICE,       /* a[b:c:d]; absent parts NULL */
    N_CALL,        /* a(args, kw) */
    N_FILTER,      /* a|name(args, kw); a NULL inside a filter block */
    N_TEST,        /* a is [not] name(args); flag = negated */
    N_BINOP,       /* a op b (op: + - * / // % **) */
    N_NEG, N_POS, N_NOT,  /* a */
    N_AND, N_OR,   /* a, b */
    N_COMPARE,     /* a, then args[i] with ops[i] (chained) */
    N_CONCAT,      /* args joined with ~ */
    N_COND,        /* b if a else c (c may be NULL) */
    N_LIST, N_TUPLE,  /* args */
    N_DICT,        /* args = keys, args2 = values */
    /* statements */
    N_DATA,        /* val (string) */
    N_OUTPUT,      /* {{ a }} */
    N_FOR,         /* for b in c [if d]: body; else2: else body; a = target */
    N_IF,          /* if a: body; else2 */
    N_SET,         /* a (target) = b */
    N_SETBLOCK,    /* a (target) = captured body, then filter chain d (N_FILTER on NULL) */
    N_MACRO,       /* name(params = args (N_NAME), defaults = args2 (NULL = none)): body */
    N_CALLBLOCK,   /* call [(params args / defaults args2)] a: body becomes caller() */
    N_FILTERBLOCK, /* filter chain d applied to the captured body */
    N_BREAK, N_CONTINUE,
    N_SCOPE,       /* body (the {% generation %} block): renders body unchanged */
    N_KIND_COUNT
} tpl_node_kind;

typedef enum tpl_op {
    OP_NONE = 0, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN, OP_COUNT
} tpl_op;

typedef struct tpl_node tpl_node;
typedef struct tpl_nodes { tpl_node **v; size_t n, cap; } tpl_nodes;

struct tpl_node {
    uint8_t     kind;      /* tpl_node_kind */
    uint8_t     op;        /* tpl_op for N_BINOP */
    bool        flag;      /* N_TEST: negated; N_FILTERBLOCK/N_SETBLOCK: has filter */
    uint32_t    pos;       /* byte offset, for messages */
    const char *name;      /* NUL-terminated: variable, attribute, filter, test, macro */
    tv          val;       /* N_CONST, N_DATA */
    tpl_node   *a, *b, *c, *d;
    tpl_nodes   args;      /* positional args, list items, dict keys, params, compare rhs */
    tpl_nodes   args2;     /* dict values, macro defaults (entries may be NULL) */
    const char **kwnames;  /* N_CALL/N_FILTER/N_TEST: names of kwvals */
    tpl_nodes   kwvals;
    uint8_t    *ops;       /* N_COMPARE: tpl_op per args entry */
    tpl_nodes   body;      /* statements */
    tpl_nodes   else2;     /* else statements */
};

/* A compiled template: arena + source + top-level statement list. */
typedef struct tpl_program {
    tpl_arena   arena;
    const char *src;       /* normalised source (arena) */
    size_t      len;
    tpl_nodes   body;
} tpl_program;

/* Parses tokens into prog->body. Errors name the line and column. */
q_status tpl_parse(tpl_program *prog, const tpl_toks *toks, q_error *err);

#endif

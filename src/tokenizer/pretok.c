/* pretok.c — BPE pre-tokenizers: tokenizer.ggml.pre name -> list of regexes, and the
 * splitter that applies them the way llama.cpp's unicode_regex_split does.
 *
 * Semantics (llama.cpp's, reproduced on purpose):
 *   - The text is decoded leniently into codepoints (bad bytes -> U+FFFD).
 *   - The regexes run in sequence. Each one runs separately on every piece left by the
 *     previous one, and a piece's end is the end of the subject (so a lookahead never sees
 *     the next piece). Matches become pieces, and so do the gaps between matches.
 *   - A regex that uses \p{N} \p{L} \p{P} \p{M} \p{S} (or \p{Lu} ... \p{Lo}, all = \p{L})
 *     runs on a "collapsed" text: ASCII stays as is, non-ASCII whitespace becomes 0x0B and
 *     every other codepoint becomes one code for its category (0xD1 number, 0xD2 letter,
 *     0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0xD0 anything else); each \p{X} in the
 *     regex becomes a class of that code plus X's ASCII members (llama.cpp's own ASCII
 *     lists, e.g. '~' is in neither \p{P} nor \p{S}). llama.cpp's hand-written gpt2 and
 *     llama3 splitters give the same pieces as their regexes on this collapsed text.
 *   - Any other regex runs on the codepoints themselves with non-ASCII whitespace
 *     replaced by 0x0B; \s is ASCII-only there (std::regex in the C locale).
 *   - `$` matches only at the very end of a piece.
 * PCRE2's 32-bit library runs all of them in non-UTF mode (code unit = codepoint or
 * collapsed code), JIT-compiled once per vocab; any 32-bit value is a legal code unit,
 * so surrogates from lenient decoding cannot make a match fail.
 *
 * Ownership: a pretok owns its compiled patterns; pretok_split writes into caller
 * buffers and allocates only per-call scratch. */
#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok.h"

/* ---- the regexes (from the models' HF tokenizer.json, as llama.cpp adapted them) ---- */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3 RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2  RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO   " ?[^(\\s|.,!?…。，、।۔،)]+"
/* (the deepseek-llm letter class below is written with \x{..} escapes so that no
 * editor or tool can normalise its compatibility characters, e.g. U+1F7D, U+2126) */
/* "upper then lower" letter runs, written with lookaheads because \p{Lu}/\p{Ll} do not
 * survive collapsing (llama.cpp's rewrite; non-ASCII letters count as both cases). */
#define RE_CASED_A "((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define RE_CASED_B "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
#define RE_DEEPSEEK_LLM_LETTERS \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-" \
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}" \
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-" \
    "\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-" \
    "\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}" \
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-" \
    "\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-" \
    "\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-" \
    "\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}" \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-" \
    "\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}" \
    "\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}" \
    "\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}" \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-" \
    "\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}" \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"

enum {
    PRE_DEFAULT, PRE_LLAMA3, PRE_DEEPSEEK_LLM, PRE_DEEPSEEK3, PRE_DEEPSEEK_CODER, PRE_FALCON,
    PRE_STARCODER, PRE_GPT2, PRE_QWEN2, PRE_PORO, PRE_VIKING, PRE_TEKKEN, PRE_CHAMELEON,
    PRE_GPT4O, PRE_BAILINGMOE, PRE_SEED_CODER,
    PRE_KIND_COUNT
};

/* Regex lists, one row per distinct list. */
static const char *const pre_regexes[PRE_KIND_COUNT][PRETOK_MAX_REGEX] = {
    [PRE_DEFAULT]        = { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" },
    [PRE_LLAMA3]         = { RE_LLAMA3 },
    [PRE_DEEPSEEK_LLM]   = { "[\r\n]", RE_DEEPSEEK_LLM_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
                             "[一-龥ࠀ-一가-퟿]+", "\\p{N}+" },
    [PRE_DEEPSEEK3]      = { "\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                             "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+" },
    [PRE_DEEPSEEK_CODER] = { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}" },
    [PRE_FALCON]         = { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]" },
    [PRE_STARCODER]      = { "\\p{N}", RE_GPT2 },
    [PRE_GPT2]           = { RE_GPT2 },
    [PRE_QWEN2]          = { RE_QWEN2 },
    [PRE_PORO]           = { RE_PORO },
    [PRE_VIKING]         = { RE_PORO, "\\p{N}" },
    [PRE_TEKKEN]         = { "[^\\r\\n\\p{L}\\p{N}]?" RE_CASED_A "|[^\\r\\n\\p{L}\\p{N}]?" RE_CASED_B
                             "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    [PRE_CHAMELEON]      = { "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
                             "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2 },
    [PRE_GPT4O]          = { "[^\\r\\n\\p{L}\\p{N}]?" RE_CASED_A RE_CONTRACTIONS_CI "?|[^\\r\\n\\p{L}\\p{N}]?" RE_CASED_B
                             RE_CONTRACTIONS_CI "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
    [PRE_BAILINGMOE]     = { "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+" },
    [PRE_SEED_CODER]     = { RE_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
};

typedef struct pre_name {
    const char *name;
    int         kind;
    unsigned    flags;  /* PRETOK_F_* : vocab settings llama.cpp ties to the name */
} pre_name;

#define NOCLEAN PRETOK_F_NO_CLEAN_SPACES
static const pre_name pre_names[] = {
    { "default",        PRE_DEFAULT,        0 },
    { "llama3",         PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "llama-v3",       PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "llama-bpe",      PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "falcon3",        PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "falcon-h1",      PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "pixtral",        PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "midm-2.0",       PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "lfm2",           PRE_LLAMA3,         PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "dbrx",           PRE_LLAMA3,         0 },
    { "smaug-bpe",      PRE_LLAMA3,         0 },
    { "deepseek-llm",   PRE_DEEPSEEK_LLM,   NOCLEAN },
    { "deepseek-coder", PRE_DEEPSEEK_CODER, NOCLEAN },
    { "deepseek-v3",    PRE_DEEPSEEK3,      NOCLEAN },
    { "hunyuan-dense",  PRE_DEEPSEEK3,      NOCLEAN },
    { "falcon",         PRE_FALCON,         0 },
    { "mpt",            PRE_GPT2,           0 },
    { "starcoder",      PRE_STARCODER,      0 },
    { "gpt-2",          PRE_GPT2,           0 },
    { "phi-2",          PRE_GPT2,           0 },
    { "jina-es",        PRE_GPT2,           0 },
    { "jina-de",        PRE_GPT2,           0 },
    { "gigachat",       PRE_GPT2,           0 },
    { "jina-v2-es",     PRE_GPT2,           0 },
    { "jina-v2-de",     PRE_GPT2,           0 },
    { "a.x-4.0",        PRE_GPT2,           0 },
    { "mellum",         PRE_GPT2,           0 },
    { "exaone4",        PRE_GPT2,           0 },
    { "jina-v1-en",     PRE_GPT2,           PRETOK_F_ADD_SEP },
    { "jina-v2-code",   PRE_GPT2,           PRETOK_F_ADD_SEP },
    { "roberta-bpe",    PRE_GPT2,           PRETOK_F_ADD_SEP },
    { "refact",         PRE_STARCODER,      0 },
    { "command-r",      PRE_STARCODER,      NOCLEAN },
    { "qwen2",          PRE_QWEN2,          NOCLEAN },
    { "deepseek-r1-qwen", PRE_QWEN2,        NOCLEAN },
    { "kormo",          PRE_QWEN2,          NOCLEAN },
    { "megrez",         PRE_QWEN2,          0 },
    { "hunyuan",        PRE_QWEN2,          NOCLEAN },
    { "grok-2",         PRE_QWEN2,          NOCLEAN },
    { "stablelm2",      PRE_QWEN2,          0 },
    { "olmo",           PRE_GPT2,           0 },
    { "poro-chat",      PRE_PORO,           NOCLEAN },
    { "glm4",           PRE_LLAMA3,         PRETOK_F_NO_BOS },
    { "chatglm-bpe",    PRE_LLAMA3,         PRETOK_F_NO_BOS },
    { "viking",         PRE_VIKING,         NOCLEAN },
    { "jais",           PRE_GPT2,           0 },
    { "tekken",         PRE_TEKKEN,         NOCLEAN | PRETOK_F_IGNORE_MERGES | PRETOK_F_ADD_BOS },
    { "smollm",         PRE_STARCODER,      NOCLEAN },
    { "codeshell",      PRE_STARCODER,      0 },
    { "bloom",          PRE_PORO,           0 },
    { "gpt3-finnish",   PRE_PORO,           0 },
    { "exaone",         PRE_STARCODER,      0 },
    { "chameleon",      PRE_CHAMELEON,      NOCLEAN | PRETOK_F_ADD_BOS },
    { "minerva-7b",     PRE_STARCODER,      0 },
    { "gpt-4o",         PRE_GPT4O,          NOCLEAN },
    { "llama4",         PRE_GPT4O,          NOCLEAN },
    { "minimax-m2",     PRE_GPT4O,          NOCLEAN },
    { "trillion",       PRE_GPT2,           NOCLEAN },
    { "granite-docling", PRE_GPT2,          NOCLEAN },
    { "bailingmoe",     PRE_BAILINGMOE,     NOCLEAN },
    { "bailingmoe2",    PRE_BAILINGMOE,     NOCLEAN },
    { "llada-moe",      PRE_BAILINGMOE,     NOCLEAN },
    { "seed-coder",     PRE_SEED_CODER,     NOCLEAN },
};
#undef NOCLEAN

typedef struct pre_regex {
    pcre2_code *code;
    bool        collapsed;  /* runs on the collapsed text */
} pre_regex;

struct pretok {
    pre_regex re[PRETOK_MAX_REGEX];
    int       n_re;
    bool      any_collapsed;
};

/* ---- regex collapsing ---- */

typedef struct ucat_sub {
    const char *prop;    /* as written in the regex */
    uint8_t     code;    /* collapsed code of the category */
    const char *ascii;   /* the category's ASCII members, in class syntax */
} ucat_sub;

static const ucat_sub ucat_subs[] = {
    { "\\p{N}",  0xD1, "0-9" },
    { "\\p{L}",  0xD2, "A-Za-z" },
    { "\\p{P}",  0xD3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}" },
    { "\\p{M}",  0xD4, "" },
    { "\\p{S}",  0xD5, "\\$\\+<->^`\\|" },
    { "\\p{Lu}", 0xD2, "A-Za-z" },
    { "\\p{Ll}", 0xD2, "A-Za-z" },
    { "\\p{Lt}", 0xD2, "A-Za-z" },
    { "\\p{Lm}", 0xD2, "A-Za-z" },
    { "\\p{Lo}", 0xD2, "A-Za-z" },
};

static const ucat_sub *ucat_at(const char *s) {
    if (s[0] != '\\' || s[1] != 'p' || s[2] != '{') return NULL;
    for (size_t i = 0; i < Q_ARRAY_LEN(ucat_subs); i++)
        if (!strncmp(s, ucat_subs[i].prop, strlen(ucat_subs[i].prop))) return &ucat_subs[i];
    return NULL;
}

static bool regex_uses_categories(const char *re) {
    for (const char *p = re; *p; p++)
        if (ucat_at(p)) return true;
    return false;
}

/* Rewrites re into 32-bit code units: collapsed (each \p{X} -> a class of X's code and
 * ASCII members) or the UTF-8 decoded codepoints. Returns a malloc'ed array. */
static uint32_t *regex_to_units(const char *re, bool collapse, size_t *n_out) {
    size_t n = strlen(re);
    uint32_t *u = q_xmalloc((n * 4 + 64) * sizeof *u);
    size_t k = 0;
    bool inside = false;
    for (size_t i = 0; i < n;) {
        if (collapse) {
            char c = re[i];
            if (c == '[' && (i == 0 || re[i - 1] != '\\')) { u[k++] = '['; inside = true; i++; continue; }
            if (inside && c == ']' && re[i - 1] != '\\') { u[k++] = ']'; inside = false; i++; continue; }
            const ucat_sub *sub = ucat_at(re + i);
            if (sub) {
                if (!inside) u[k++] = '[';
                u[k++] = sub->code;
                for (const char *a = sub->ascii; *a; a++) u[k++] = (uint8_t)*a;
                if (!inside) u[k++] = ']';
                i += strlen(sub->prop);
                continue;
            }
            Q_ASSERT((uint8_t)c < 0x80);  /* llama.cpp rejects non-ASCII here too */
            u[k++] = (uint8_t)c;
            i++;
        } else {
            size_t adv;
            u[k++] = utf8_decode_lenient((const uint8_t *)re + i, n - i, &adv);
            i += adv;
        }
    }
    *n_out = k;
    return u;
}

/* ---- table lookup ---- */

bool pretok_lookup(const char *name, unsigned *flags) {
    for (size_t i = 0; i < Q_ARRAY_LEN(pre_names); i++)
        if (!strcmp(pre_names[i].name, name)) {
            if (flags) *flags = pre_names[i].flags;
            return true;
        }
    return false;
}

q_status pretok_new(const char *name, pretok **out, q_error *err) {
    const pre_name *pn = NULL;
    for (size_t i = 0; i < Q_ARRAY_LEN(pre_names); i++)
        if (!strcmp(pre_names[i].name, name)) pn = &pre_names[i];
    if (!pn) return q_fail(err, Q_ERR_UNSUPPORTED, "unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)", name);

    pretok *p = q_xcalloc(1, sizeof *p);
    for (int i = 0; i < PRETOK_MAX_REGEX && pre_regexes[pn->kind][i]; i++) {
        const char *re = pre_regexes[pn->kind][i];
        bool collapse = regex_uses_categories(re);
        size_t n;
        uint32_t *units = regex_to_units(re, collapse, &n);
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *code = pcre2_compile(units, n, PCRE2_DOLLAR_ENDONLY, &ecode, &eoff, NULL);
        free(units);
        /* The table is ours: a pattern that does not compile is a bug, not bad input. */
        Q_ASSERT(code != NULL);
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  /* falls back to the interpreter if JIT is unavailable */
        p->re[p->n_re].code = code;
        p->re[p->n_re].collapsed = collapse;
        p->any_collapsed |= collapse;
        p->n_re++;
    }
    *out = p;
    return Q_OK;
}

void pretok_free(pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i].code);
    free(p);
}

/* ---- splitting ---- */

static uint32_t collapse_cp(uint32_t cp) {
    static const uint8_t code_of_cat[UFLAG_CAT_MASK + 1] = {
        [UCAT_NUMBER] = 0xD1, [UCAT_LETTER] = 0xD2, [UCAT_PUNCT] = 0xD3,
        [UCAT_MARK] = 0xD4, [UCAT_SYMBOL] = 0xD5,
    };
    if (cp < 0x80) return cp;
    uint8_t f = ucp_flags(cp);
    if (f & UFLAG_WHITESPACE) return 0x0B;
    uint8_t c = code_of_cat[f & UFLAG_CAT_MASK];
    return c ? c : 0xD0;
}

typedef struct len_vec {
    uint32_t *v;
    size_t    n, cap;
} len_vec;

static void len_push(len_vec *l, uint32_t x) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = q_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = x;
}

struct pretok_ctx {
    pcre2_match_data    *md;
    pcre2_match_context *mc;
    pcre2_jit_stack     *js;
    uint32_t            *collapsed, *plain;  /* subjects, cap codepoints each */
    size_t               cap;
    len_vec              cur, next;
};

pretok_ctx *pretok_ctx_new(void) {
    pretok_ctx *c = q_xcalloc(1, sizeof *c);
    c->md = pcre2_match_data_create(1, NULL);
    Q_ASSERT(c->md);
    return c;
}

/* Repeated groups (tekken, gpt-4o) need JIT stack in proportion to a word's length; the
 * default 32 KiB one covers ordinary text, a large one is set up only when a match runs
 * out of it. */
static bool pretok_ctx_grow_stack(pretok_ctx *c) {
    if (c->js) return false;
    c->mc = pcre2_match_context_create(NULL);
    c->js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    if (!c->mc || !c->js) return false;
    pcre2_jit_stack_assign(c->mc, NULL, c->js);
    return true;
}

void pretok_ctx_free(pretok_ctx *c) {
    if (!c) return;
    pcre2_jit_stack_free(c->js);
    pcre2_match_context_free(c->mc);
    pcre2_match_data_free(c->md);
    free(c->collapsed);
    free(c->plain);
    free(c->cur.v);
    free(c->next.v);
    free(c);
}

void pretok_split(const pretok *p, pretok_ctx *c, const uint32_t *cps, size_t n, pretok_words *w) {
    w->n = 0;
    w->lens = NULL;
    if (n == 0) return;
    if (c->cap < n) {
        c->cap = n;
        c->collapsed = q_xrealloc(c->collapsed, n * sizeof *c->collapsed);
        c->plain = q_xrealloc(c->plain, n * sizeof *c->plain);
    }
    /* Subjects: the collapsed text and the plain one (non-ASCII whitespace -> 0x0B). */
    bool have_collapsed = false, have_plain = false;
    for (int r = 0; r < p->n_re; r++) {
        if (p->re[r].collapsed && !have_collapsed) {
            for (size_t i = 0; i < n; i++) c->collapsed[i] = collapse_cp(cps[i]);
            have_collapsed = true;
        } else if (!p->re[r].collapsed && !have_plain) {
            for (size_t i = 0; i < n; i++) c->plain[i] = (cps[i] > 0x7F && ucp_is_space(cps[i])) ? 0x0B : cps[i];
            have_plain = true;
        }
    }

    len_vec *cur = &c->cur, *next = &c->next;
    cur->n = 0;
    len_push(cur, (uint32_t)n);
    for (int r = 0; r < p->n_re; r++) {
        const uint32_t *subj = p->re[r].collapsed ? c->collapsed : c->plain;
        next->n = 0;
        size_t start = 0;
        for (size_t k = 0; k < cur->n; k++) {
            size_t len = cur->v[k];
            size_t pos = 0, prev_end = 0;
            while (pos < len) {
                int rc = pcre2_match(p->re[r].code, subj + start, len, pos, 0, c->md, c->mc);
                if (rc == PCRE2_ERROR_JIT_STACKLIMIT && pretok_ctx_grow_stack(c))
                    rc = pcre2_match(p->re[r].code, subj + start, len, pos, 0, c->md, c->mc);
                if (rc < 0) break;  /* no match (or a resource limit: the rest stays one piece) */
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { pos = ms + 1; continue; }  /* empty matches make no pieces */
                if (ms > prev_end) len_push(next, (uint32_t)(ms - prev_end));
                len_push(next, (uint32_t)(me - ms));
                prev_end = pos = me;
            }
            if (prev_end < len) len_push(next, (uint32_t)(len - prev_end));
            start += len;
        }
        len_vec *t = cur; cur = next; next = t;
    }
    /* keep the result in c->cur */
    if (cur != &c->cur) { len_vec t = c->cur; c->cur = c->next; c->next = t; }
    w->lens = c->cur.v;
    w->n = c->cur.n;
}

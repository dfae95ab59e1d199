/* unicode.c — the Unicode facts the tokenizers need, defined the way llama.cpp defines
 * them (not the way a strict Unicode library would):
 *
 *   - decoding is lenient: overlong forms and surrogates decode; a lead byte without its
 *     continuation bytes, a stray continuation byte or 0xF8..0xFF decodes to U+FFFD and
 *     consumes one byte. (llama.cpp additionally accepts 4-byte forms above U+10FFFF and
 *     then throws while re-encoding them; here they are invalid bytes instead.)
 *   - category flags are Python-`regex` general categories (\p{N} \p{L} \p{Z} \p{M} \p{P}
 *     \p{S} \p{C}, unassigned codepoints count as C), whitespace is the Unicode
 *     White_Space property; both are read from utf8proc into a 1.1 MB table built once.
 *   - "NFD" is the FIRST codepoint of the canonical decomposition (llama.cpp keeps only
 *     that one, which also strips accents), lowercase is the simple lowercase mapping.
 *   - GPT-2's bytes_to_unicode map for byte-level BPE.
 * No allocation visible to callers; the flag table is process-global and immutable. */
#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/internal.h"

#define UCP_MAX 0x110000u

static uint8_t        g_flags[UCP_MAX];
static pthread_once_t g_flags_once = PTHREAD_ONCE_INIT;

/* utf8proc general category -> llama.cpp category flag. */
static const uint8_t cat_of_utf8proc[] = {
    [UTF8PROC_CATEGORY_CN] = UCAT_CONTROL,
    [UTF8PROC_CATEGORY_LU] = UCAT_LETTER, [UTF8PROC_CATEGORY_LL] = UCAT_LETTER,
    [UTF8PROC_CATEGORY_LT] = UCAT_LETTER, [UTF8PROC_CATEGORY_LM] = UCAT_LETTER,
    [UTF8PROC_CATEGORY_LO] = UCAT_LETTER,
    [UTF8PROC_CATEGORY_MN] = UCAT_MARK, [UTF8PROC_CATEGORY_MC] = UCAT_MARK,
    [UTF8PROC_CATEGORY_ME] = UCAT_MARK,
    [UTF8PROC_CATEGORY_ND] = UCAT_NUMBER, [UTF8PROC_CATEGORY_NL] = UCAT_NUMBER,
    [UTF8PROC_CATEGORY_NO] = UCAT_NUMBER,
    [UTF8PROC_CATEGORY_PC] = UCAT_PUNCT, [UTF8PROC_CATEGORY_PD] = UCAT_PUNCT,
    [UTF8PROC_CATEGORY_PS] = UCAT_PUNCT, [UTF8PROC_CATEGORY_PE] = UCAT_PUNCT,
    [UTF8PROC_CATEGORY_PI] = UCAT_PUNCT, [UTF8PROC_CATEGORY_PF] = UCAT_PUNCT,
    [UTF8PROC_CATEGORY_PO] = UCAT_PUNCT,
    [UTF8PROC_CATEGORY_SM] = UCAT_SYMBOL, [UTF8PROC_CATEGORY_SC] = UCAT_SYMBOL,
    [UTF8PROC_CATEGORY_SK] = UCAT_SYMBOL, [UTF8PROC_CATEGORY_SO] = UCAT_SYMBOL,
    [UTF8PROC_CATEGORY_ZS] = UCAT_SEPARATOR, [UTF8PROC_CATEGORY_ZL] = UCAT_SEPARATOR,
    [UTF8PROC_CATEGORY_ZP] = UCAT_SEPARATOR,
    [UTF8PROC_CATEGORY_CC] = UCAT_CONTROL, [UTF8PROC_CATEGORY_CF] = UCAT_CONTROL,
    [UTF8PROC_CATEGORY_CS] = UCAT_CONTROL, [UTF8PROC_CATEGORY_CO] = UCAT_CONTROL,
};

/* Unicode White_Space property (what Python's `regex` \s matches). */
static const uint32_t white_space[][2] = {
    { 0x0009, 0x000D }, { 0x0020, 0x0020 }, { 0x0085, 0x0085 }, { 0x00A0, 0x00A0 },
    { 0x1680, 0x1680 }, { 0x2000, 0x200A }, { 0x2028, 0x2029 }, { 0x202F, 0x202F },
    { 0x205F, 0x205F }, { 0x3000, 0x3000 },
};

static void flags_build(void) {
    for (uint32_t cp = 0; cp < UCP_MAX; cp++) {
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        g_flags[cp] = (unsigned)c < Q_ARRAY_LEN(cat_of_utf8proc) ? cat_of_utf8proc[c] : UCAT_CONTROL;
    }
    for (size_t i = 0; i < Q_ARRAY_LEN(white_space); i++)
        for (uint32_t cp = white_space[i][0]; cp <= white_space[i][1]; cp++) g_flags[cp] |= UFLAG_WHITESPACE;
}

uint8_t ucp_flags(uint32_t cp) {
    if (cp >= UCP_MAX) return UCAT_UNDEF;
    pthread_once(&g_flags_once, flags_build);
    return g_flags[cp];
}

uint32_t ucp_tolower(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp >= UCP_MAX) return cp;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

uint32_t ucp_nfd_first(uint32_t cp) {
    if (cp < 0xC0 || cp >= UCP_MAX || (cp >= 0xD800 && cp <= 0xDFFF)) return cp;
    utf8proc_int32_t dst[8];
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, dst, 8, UTF8PROC_DECOMPOSE,
                                                 &last_boundclass);
    return n >= 1 ? (uint32_t)dst[0] : cp;
}

uint32_t utf8_decode_lenient(const uint8_t *s, size_t n, size_t *adv) {
    uint8_t b0 = s[0];
    *adv = 1;
    if (b0 < 0x80) return b0;
    if (!(b0 & 0x40)) return 0xFFFD;                      /* stray continuation byte */
    size_t need = !(b0 & 0x20) ? 1 : !(b0 & 0x10) ? 2 : !(b0 & 0x08) ? 3 : 0;
    if (need == 0 || need >= n) return 0xFFFD;            /* 0xF8..0xFF, or truncated */
    uint32_t cp = b0 & (0x3F >> need);
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp > 0x10FFFF) return 0xFFFD;
    *adv = need + 1;
    return cp;
}

size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    Q_ASSERT(cp <= 0x10FFFF);
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* bytes_to_unicode: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the
 * other 68 bytes get codepoints 256, 257, ... in increasing byte order. */
static uint16_t       g_b2u[256];
static int16_t        g_u2b[324];  /* codepoints 0..323 -> byte, -1 = none */
static pthread_once_t g_bytemap_once = PTHREAD_ONCE_INIT;

static bool byte_is_printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void bytemap_build(void) {
    for (size_t i = 0; i < Q_ARRAY_LEN(g_u2b); i++) g_u2b[i] = -1;
    int next = 256;
    for (int b = 0; b < 256; b++) {
        g_b2u[b] = (uint16_t)(byte_is_printable(b) ? b : next++);
        g_u2b[g_b2u[b]] = (int16_t)b;
    }
}

uint32_t bpe_byte_to_cp(uint8_t b) {
    pthread_once(&g_bytemap_once, bytemap_build);
    return g_b2u[b];
}

int bpe_cp_to_byte(uint32_t cp) {
    pthread_once(&g_bytemap_once, bytemap_build);
    return cp < Q_ARRAY_LEN(g_u2b) ? g_u2b[cp] : -1;
}

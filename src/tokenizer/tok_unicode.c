#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tok_unicode.h"

#include "moepager/status.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *g_flags;  /* MP_CPT_MAX entries, or NULL if the build failed */
static int g_init_status; /* result of the one-time build */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const uint32_t k_whitespace[] = {
    0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x0020, 0x0085, 0x00A0, 0x1680,
    0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
    0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
};

size_t mp_utf8_encode(uint32_t cpt, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cpt <= 0x7F) {
        o[0] = (unsigned char)cpt;
        return 1;
    }
    if (cpt <= 0x7FF) {
        o[0] = (unsigned char)(0xC0 | (cpt >> 6));
        o[1] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt > 0x10FFFF)
        cpt = MP_CPT_REPLACEMENT;
    if (cpt <= 0xFFFF) {
        o[0] = (unsigned char)(0xE0 | (cpt >> 12));
        o[1] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cpt >> 18));
    o[1] = (unsigned char)(0x80 | ((cpt >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cpt >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cpt & 0x3F));
    return 4;
}

uint32_t mp_utf8_decode(const uint8_t *s, size_t n, size_t *adv)
{
    uint8_t c = s[0];
    *adv = 1;
    if (c < 0x80)
        return c;
    if (!(c & 0x40)) /* stray continuation byte */
        return MP_CPT_REPLACEMENT;
    if (!(c & 0x20)) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return MP_CPT_REPLACEMENT;
        *adv = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (!(c & 0x10)) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return MP_CPT_REPLACEMENT;
        *adv = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if (!(c & 0x08)) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return MP_CPT_REPLACEMENT;
        *adv = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return MP_CPT_REPLACEMENT;
}

int64_t mp_utf8_to_cpts(const char *text, size_t len, uint32_t **cpts)
{
    uint32_t *out = malloc((len ? len : 1) * sizeof(*out));
    if (!out)
        return -1;
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    int64_t n = 0;
    while (i < len) {
        size_t adv;
        out[n++] = mp_utf8_decode(s + i, len - i, &adv);
        i += adv;
    }
    *cpts = out;
    return n;
}

/* Marks every code point matched by `pattern` (a run pattern such as
 * "\p{L}+") in `all`, the UTF-8 string of all scalar values in order. */
static int mark_category(const char *pattern, uint8_t bit, const char *all, size_t all_len)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &errcode, &erroff, NULL);
    if (!re)
        return MP_E_UNSUPPORTED;
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return MP_E_NOMEM;
    }
    size_t off = 0;
    while (off < all_len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)all, all_len, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t i = ov[0];
        while (i < ov[1]) {
            size_t adv;
            uint32_t cpt = mp_utf8_decode((const uint8_t *)all + i, all_len - i, &adv);
            g_flags[cpt] |= bit;
            i += adv;
        }
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return MP_OK;
}

static void build_table(void)
{
    g_flags = calloc(MP_CPT_MAX, 1);
    char *all = malloc((size_t)MP_CPT_MAX * 4);
    if (!g_flags || !all) {
        free(all);
        free(g_flags);
        g_flags = NULL;
        g_init_status = MP_E_NOMEM;
        return;
    }
    size_t n = 0;
    for (uint32_t c = 0; c < MP_CPT_MAX; c++)
        if (c < 0xD800 || c > 0xDFFF)
            n += mp_utf8_encode(c, all + n);
    static const struct {
        const char *pat;
        uint8_t bit;
    } cats[] = {
        {"\\p{L}+", MP_CPT_LETTER}, {"\\p{N}+", MP_CPT_NUMBER}, {"\\p{P}+", MP_CPT_PUNCT},
        {"\\p{S}+", MP_CPT_SYMBOL}, {"\\p{M}+", MP_CPT_MARK},
        {"[\\p{Cc}\\p{Cf}\\p{Co}]+", MP_CPT_CONTROL},
    };
    int st = MP_OK;
    for (size_t k = 0; k < sizeof(cats) / sizeof(cats[0]) && st == MP_OK; k++)
        st = mark_category(cats[k].pat, cats[k].bit, all, n);
    free(all);
    if (st != MP_OK) {
        free(g_flags);
        g_flags = NULL;
        g_init_status = st;
        return;
    }
    for (uint32_t c = 0xD800; c <= 0xDFFF; c++) /* Cs: not encodable for PCRE2 */
        g_flags[c] |= MP_CPT_CONTROL;
    for (uint32_t c = 0; c < MP_CPT_MAX; c++)
        if (!(g_flags[c] & (MP_CPT_LETTER | MP_CPT_NUMBER | MP_CPT_PUNCT | MP_CPT_SYMBOL | MP_CPT_MARK)))
            g_flags[c] |= MP_CPT_OTHER;
    for (size_t k = 0; k < sizeof(k_whitespace) / sizeof(k_whitespace[0]); k++)
        g_flags[k_whitespace[k]] |= MP_CPT_WHITESPACE;
    g_init_status = MP_OK;
}

int mp_cpt_init(void)
{
    pthread_once(&g_once, build_table);
    return g_init_status;
}

uint8_t mp_cpt_flags(uint32_t cpt)
{
    if (cpt >= MP_CPT_MAX)
        return MP_CPT_OTHER;
    if (g_flags)
        return g_flags[cpt];
    /* Degraded ASCII-only answer when the table could not be built. */
    if (cpt >= 0x80)
        return MP_CPT_OTHER;
    if ((cpt >= 'a' && cpt <= 'z') || (cpt >= 'A' && cpt <= 'Z'))
        return MP_CPT_LETTER;
    if (cpt >= '0' && cpt <= '9')
        return MP_CPT_NUMBER;
    if (cpt == ' ' || (cpt >= 9 && cpt <= 13))
        return MP_CPT_OTHER | MP_CPT_WHITESPACE;
    return MP_CPT_OTHER;
}

extern const uint32_t mp_tok_lower_map[][2];
extern const size_t mp_tok_lower_n;
extern const uint32_t mp_tok_nfd_ranges[][3];
extern const size_t mp_tok_nfd_n;

uint32_t mp_cpt_tolower(uint32_t cpt)
{
    size_t lo = 0, hi = mp_tok_lower_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mp_tok_lower_map[mid][0] < cpt)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < mp_tok_lower_n && mp_tok_lower_map[lo][0] == cpt ? mp_tok_lower_map[lo][1] : cpt;
}

uint32_t mp_cpt_nfd_first(uint32_t cpt)
{
    /* last range whose first <= cpt */
    size_t lo = 0, hi = mp_tok_nfd_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mp_tok_nfd_ranges[mid][0] <= cpt)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return cpt;
    const uint32_t *r = mp_tok_nfd_ranges[lo - 1];
    return cpt <= r[1] ? r[2] : cpt;
}

/* Byte b is shown as itself when printable Latin-1 (0x21..0x7E,
 * 0xA1..0xAC, 0xAE..0xFF); the other 68 bytes get 256, 257, ... in byte order. */
static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static uint16_t g_byte_cpt[256];
static int16_t g_cpt_byte[512];
static pthread_once_t g_byte_once = PTHREAD_ONCE_INIT;

static void build_byte_tables(void)
{
    uint32_t k = 0;
    for (int i = 0; i < 512; i++)
        g_cpt_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        g_byte_cpt[b] = (uint16_t)(byte_is_printable(b) ? b : 256 + k++);
        g_cpt_byte[g_byte_cpt[b]] = (int16_t)b;
    }
}

uint32_t mp_byte_to_cpt(uint8_t b)
{
    pthread_once(&g_byte_once, build_byte_tables);
    return g_byte_cpt[b];
}

int mp_cpt_to_byte(uint32_t cpt)
{
    pthread_once(&g_byte_once, build_byte_tables);
    return cpt < 512 ? g_cpt_byte[cpt] : -1;
}

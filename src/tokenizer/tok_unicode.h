/* Unicode helpers for the tokenizers, with llama.cpp's (src/unicode.cpp)
 * exact semantics where they differ from the standard:
 *  - UTF-8 decoding never fails: a byte that does not start a well-formed
 *    sequence becomes U+FFFD and decoding resumes at the next byte; overlong
 *    forms and surrogates are decoded as-is (no further validation);
 *  - the whitespace set is a fixed list of 25 code points (\t..\r, space,
 *    U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028/9, U+202F, U+205F, U+3000);
 *  - general categories come from PCRE2's Unicode tables (\p{L} etc.), built
 *    once per process into a 1.1 MB table (about 20-60 ms on first use).
 * Internal to src/tokenizer/. */
#ifndef MP_TOK_UNICODE_H
#define MP_TOK_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_CPT_MAX 0x110000u
#define MP_CPT_REPLACEMENT 0xFFFDu

/* Category bits of mp_cpt_flags(). A code point below MP_CPT_MAX without
 * any of L/N/P/S/M (controls, separators, unassigned) has MP_CPT_OTHER. */
enum {
    MP_CPT_LETTER = 1 << 0,     /* \p{L} */
    MP_CPT_NUMBER = 1 << 1,     /* \p{N} */
    MP_CPT_PUNCT = 1 << 2,      /* \p{P} */
    MP_CPT_SYMBOL = 1 << 3,     /* \p{S} */
    MP_CPT_MARK = 1 << 4,       /* \p{M} */
    MP_CPT_OTHER = 1 << 5,      /* none of the above */
    MP_CPT_WHITESPACE = 1 << 6, /* the fixed whitespace list above */
    MP_CPT_CONTROL = 1 << 7,    /* Cc, Cf, Co, Cs (llama.cpp's \p{C} less Cn) */
};

/* Builds the category table (thread-safe, once per process). Returns 0, or
 * a negative mp_status if PCRE2 or memory failed; then every flag query
 * answers as if only ASCII were classified. */
int mp_cpt_init(void);

/* Flags of cpt; mp_cpt_init() must have been called. Code points at or
 * above MP_CPT_MAX get MP_CPT_OTHER. */
uint8_t mp_cpt_flags(uint32_t cpt);

/* Number of bytes llama.cpp assumes a UTF-8 sequence starting with byte c
 * has (1 for ASCII and for continuation bytes, 2/3/4 by the high bits). */
static inline size_t mp_utf8_len(uint8_t c)
{
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

/* Decodes one code point at s[0..n) (n >= 1) with llama.cpp's rules; sets
 * *adv to the bytes consumed (>= 1). */
uint32_t mp_utf8_decode(const uint8_t *s, size_t n, size_t *adv);

/* Encodes cpt into out (4 bytes of room); returns the byte count. Code
 * points above U+10FFFF are written as U+FFFD. */
size_t mp_utf8_encode(uint32_t cpt, char *out);

/* Decodes text[0..len) into *cpts (malloc'd, caller frees); returns the
 * count or -1 on OOM. */
int64_t mp_utf8_to_cpts(const char *text, size_t len, uint32_t **cpts);

/* Simple lowercase mapping (cpt itself if none), and the first code point
 * of cpt's NFD decomposition (cpt itself if none): the Unicode data
 * llama.cpp's WordPiece normalizer uses (tok_unicode_tables.c). */
uint32_t mp_cpt_tolower(uint32_t cpt);
uint32_t mp_cpt_nfd_first(uint32_t cpt);

/* GPT-2 byte-level alphabet: the code point byte b is shown as
 * (b itself for printable Latin-1, 256+k for the others). */
uint32_t mp_byte_to_cpt(uint8_t b);
/* Inverse: the byte for code point cpt, or -1 if cpt is not in the alphabet. */
int mp_cpt_to_byte(uint32_t cpt);

#endif

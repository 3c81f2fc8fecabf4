/* Pre-tokenizer splits (src/tokenizer/pretok.c).
 *  1. Hand-derived splits for each supported family, worked out from the
 *     regex lists llama.cpp uses (see the comments per case).
 *  2. The hand-written GPT-2 / Llama-3 / Qwen2 matchers against PCRE2
 *     running the original tokenizer.json regexes (Unicode mode) over the
 *     46 llama.cpp test strings and extra cases: both must split alike.
 *  3. llama-bpe and qwen2 have token vectors but no vocabulary here: each
 *     word yields at least one token, so words <= tokens per string. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "mp_test.h"

#include "tokenizer/pretok.h"
#include "tokenizer/tok_unicode.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits s with kind; returns the words joined by '|' into out. */
static void split_str(mp_pretok_kind kind, const char *s, size_t len, char *out, size_t cap)
{
    mp_pretok *p = NULL;
    mp_err err = {0};
    out[0] = '\0';
    int st = mp_pretok_create(&p, kind, &err);
    CHECKF(st == MP_OK, "create %d: %s", (int)kind, err.msg);
    if (st != MP_OK)
        return;
    uint32_t *cpts;
    int64_t n = mp_utf8_to_cpts(s, len, &cpts);
    size_t *wl = NULL;
    int64_t nw = mp_pretok_split(p, cpts, (size_t)n, &wl);
    CHECK(nw >= 0);
    size_t o = 0, c = 0;
    for (int64_t w = 0; w < nw; w++) {
        if (w && o + 1 < cap)
            out[o++] = '|';
        for (size_t k = 0; k < wl[w]; k++) {
            char u[4];
            size_t ul = mp_utf8_encode(cpts[c++], u);
            for (size_t j = 0; j < ul && o + 1 < cap; j++)
                out[o++] = u[j];
        }
    }
    out[o] = '\0';
    CHECK(c == (size_t)n);
    free(wl);
    free(cpts);
    mp_pretok_free(p);
}

static void expect(mp_pretok_kind kind, const char *s, const char *want)
{
    char got[1024];
    split_str(kind, s, strlen(s), got, sizeof(got));
    CHECKF(strcmp(got, want) == 0, "kind %d: '%s' split as '%s', expected '%s'", (int)kind, s, got, want);
}

static void check_hand_derived(void)
{
    /* GPT-2: case-sensitive contractions, unbounded digit runs, a space
     * joins the following run, \s+(?!\S) leaves one space for the word. */
    expect(MP_PRETOK_GPT2, "Hello world", "Hello| world");
    expect(MP_PRETOK_GPT2, "I'm", "I|'m");
    expect(MP_PRETOK_GPT2, "I'M", "I|'|M");
    expect(MP_PRETOK_GPT2, "12345", "12345");
    expect(MP_PRETOK_GPT2, "a  b", "a| | b");
    expect(MP_PRETOK_GPT2, "hi!!\n", "hi|!!|\n");
    expect(MP_PRETOK_GPT2, "x  ", "x|  ");
    /* Llama-3: case-insensitive contractions, digits in threes, an optional
     * non-letter/non-digit before letters, punctuation takes trailing
     * newlines, \s*[\r\n]+ before \s+(?!\S). */
    expect(MP_PRETOK_LLAMA3, "Hello world", "Hello| world");
    expect(MP_PRETOK_LLAMA3, "HE'LL", "HE|'LL");
    expect(MP_PRETOK_LLAMA3, "12345", "123|45");
    expect(MP_PRETOK_LLAMA3, "a  b", "a| | b");
    expect(MP_PRETOK_LLAMA3, "a\n\nb", "a|\n\n|b");
    expect(MP_PRETOK_LLAMA3, "hi!!\n", "hi|!!\n");
    expect(MP_PRETOK_LLAMA3, "(abc)", "(abc|)");
    expect(MP_PRETOK_LLAMA3, "x ...", "x| ...");
    expect(MP_PRETOK_LLAMA3, "  \n  x", "  \n| | x");
    expect(MP_PRETOK_LLAMA3, "\xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd", "\xc3\xa9t\xc3\xa9| \xe4\xbd\xa0\xe5\xa5\xbd");
    /* Qwen2: as Llama-3 but one digit per word. */
    expect(MP_PRETOK_QWEN2, "12345", "1|2|3|4|5");
    expect(MP_PRETOK_QWEN2, "HE'LL 7x", "HE|'LL| |7|x");
    expect(MP_PRETOK_QWEN2, "(abc)", "(abc|)");
    /* Default: punctuation/symbol runs first, then GPT-2, then digit runs,
     * then three ASCII digits at a time. */
    expect(MP_PRETOK_DEFAULT, "a+b=12345", "a|+|b|=|123|45");
    expect(MP_PRETOK_DEFAULT, "Hello, world!", "Hello|,| world|!");
    /* deepseek-llm: CR/LF alone, \s?letters, \s?ASCII/CJK punctuation,
     * trailing whitespace, CJK runs, digit runs. */
    expect(MP_PRETOK_DEEPSEEK_LLM, "Hello world\n123", "Hello| world|\n|123");
    expect(MP_PRETOK_DEEPSEEK_LLM, "\xe4\xbd\xa0\xe5\xa5\xbd ab", "\xe4\xbd\xa0\xe5\xa5\xbd| ab");
    expect(MP_PRETOK_DEEPSEEK_LLM, "end  ", "end|  ");
    expect(MP_PRETOK_DEEPSEEK_LLM, "a, b!", "a|,| b|!");
    /* DeepSeek-Coder: newlines, letter runs and punctuation runs (each with
     * one optional leading space), CJK runs, then one digit per word. */
    expect(MP_PRETOK_DEEPSEEK_CODER, "Hello world\n123", "Hello| world|\n|1|2|3");
    expect(MP_PRETOK_DEEPSEEK_CODER, "a+b", "a|+|b");
    expect(MP_PRETOK_DEEPSEEK_CODER, "x, y", "x|,| y");
    /* DeepSeek-V3: digits in threes first, then CJK / kana runs, then words
     * where letters keep their combining marks and one ASCII punctuation
     * mark may lead ASCII letters. */
    expect(MP_PRETOK_DEEPSEEK3, "12345", "123|45");
    expect(MP_PRETOK_DEEPSEEK3, "abc\xe4\xbd\xa0\xe5\xa5\xbd""def", "abc|\xe4\xbd\xa0\xe5\xa5\xbd|def");
    expect(MP_PRETOK_DEEPSEEK3, "Hello world", "Hello| world");
    expect(MP_PRETOK_DEEPSEEK3, "cafe\xcc\x81 ok", "cafe\xcc\x81| ok");
    expect(MP_PRETOK_DEEPSEEK3, "a, b!", "a|,| b|!");
    expect(MP_PRETOK_DEEPSEEK3, "x.Net", "x|.Net");
    /* Kimi-K2: Llama-3-like, but Han runs stand alone and end letter runs;
     * the contraction joins the word before it. */
    expect(MP_PRETOK_KIMI_K2, "Hello\xe4\xb8\x96\xe7\x95\x8c""abc", "Hello|\xe4\xb8\x96\xe7\x95\x8c|abc");
    expect(MP_PRETOK_KIMI_K2, " \xe4\xbd\xa0\xe5\xa5\xbd", " |\xe4\xbd\xa0\xe5\xa5\xbd");
    expect(MP_PRETOK_KIMI_K2, "12345", "123|45");
    expect(MP_PRETOK_KIMI_K2, "don'T HE'LL", "don'T| HE'LL");
    expect(MP_PRETOK_KIMI_K2, "(abc)", "(abc|)");
    /* Qwen3.5: combining marks stay in the letter run (Qwen2 cuts them off). */
    expect(MP_PRETOK_QWEN35, "cafe\xcc\x81 ok", "cafe\xcc\x81| ok");
    expect(MP_PRETOK_QWEN2, "cafe\xcc\x81 ok", "cafe|\xcc\x81| ok");
    expect(MP_PRETOK_QWEN35, "12 ab", "1|2| ab");
    /* AFMoE: digit runs cut as (length mod 3) then threes, the text before a
     * run glued to its first group (as llama.cpp does), then the DeepSeek-V3
     * word rule. */
    expect(MP_PRETOK_AFMOE, "ab1234 x", "ab|1|234| x");
    expect(MP_PRETOK_TINY_AYA, "1234567", "1|234|567");
    /* SuperBPE: digit runs, then empty lookahead matches cut them in threes
     * from the right. */
    expect(MP_PRETOK_SUPERBPE, "x1234567", "x|1|234|567");
    /* Falcon: punctuation/symbol runs, GPT-2, then three ASCII digits. */
    expect(MP_PRETOK_FALCON, "a+b=12345", "a|+|b|=|123|45");
    /* Bloom: runs of anything but whitespace and sentence punctuation. */
    expect(MP_PRETOK_BLOOM, "Hello, world.", "Hello|,| world|.");
    /* Gemma 4: lines and newline runs only. */
    expect(MP_PRETOK_GEMMA4, "a b\n\nc", "a b|\n\n|c");
}

static void check_names(void)
{
    mp_pretok_kind k;
    mp_err err = {0};
    CHECK(mp_pretok_kind_from_name("llama-bpe", &k, &err) == MP_OK && k == MP_PRETOK_LLAMA3);
    CHECK(mp_pretok_kind_from_name("qwen2", &k, &err) == MP_OK && k == MP_PRETOK_QWEN2);
    CHECK(mp_pretok_kind_from_name("gpt-2", &k, &err) == MP_OK && k == MP_PRETOK_GPT2);
    CHECK(mp_pretok_kind_from_name("deepseek-llm", &k, &err) == MP_OK && k == MP_PRETOK_DEEPSEEK_LLM);
    CHECK(mp_pretok_kind_from_name("deepseek-coder", &k, &err) == MP_OK && k == MP_PRETOK_DEEPSEEK_CODER);
    CHECK(mp_pretok_kind_from_name("deepseek-v3", &k, &err) == MP_OK && k == MP_PRETOK_DEEPSEEK3);
    CHECK(mp_pretok_kind_from_name("kimi-k2", &k, &err) == MP_OK && k == MP_PRETOK_KIMI_K2);
    CHECK(mp_pretok_kind_from_name("glm4", &k, &err) == MP_OK && k == MP_PRETOK_CHATGLM4);
    CHECK(mp_pretok_kind_from_name(NULL, &k, &err) == MP_OK && k == MP_PRETOK_DEFAULT);
    CHECK(mp_pretok_kind_from_name("bogus", &k, &err) == MP_E_UNSUPPORTED && strstr(err.msg, "'bogus'"));
    CHECK(mp_pretok_kind_from_name("minimax-m2", &k, &err) == MP_OK && k == MP_PRETOK_GPT4O);
    CHECK(mp_pretok_kind_from_name("qwen35", &k, &err) == MP_OK && k == MP_PRETOK_QWEN35);
    /* every name compiles, and the per-name flags are llama-vocab.cpp's */
    size_t n = 0;
    for (const char *nm; (nm = mp_pretok_name_at(n)); n++) {
        mp_pretok_info info;
        mp_pretok *p = NULL;
        CHECKF(mp_pretok_lookup(nm, &info, &err) == MP_OK, "%s", nm);
        CHECKF(mp_pretok_create(&p, info.kind, &err) == MP_OK, "%s: %s", nm, err.msg);
        mp_pretok_free(p);
    }
    CHECKF(n >= 90, "%zu names", n);
    mp_pretok_info in;
    CHECK(mp_pretok_lookup("tekken", &in, &err) == MP_OK && in.ignore_merges && in.add_bos && !in.clean_spaces);
    CHECK(mp_pretok_lookup("falcon", &in, &err) == MP_OK && !in.ignore_merges && !in.add_bos && in.clean_spaces);
    CHECK(mp_pretok_lookup("gemma4", &in, &err) == MP_OK && in.escape_whitespaces && !mp_pretok_byte_encode(in.kind));
    CHECK(mp_pretok_lookup("glm4", &in, &err) == MP_OK && in.no_bos);
}

/* Splits by the original regex with PCRE2 (UTF + UCP), joined by '|'. */
static void split_pcre(const char *rx, const char *s, size_t len, char *out, size_t cap)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    CHECK(re != NULL);
    out[0] = '\0';
    if (!re)
        return;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t off = 0, o = 0;
    while (off < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] > off) { /* unmatched gap: a word of its own */
            if (o && o + 1 < cap)
                out[o++] = '|';
            for (size_t j = off; j < ov[0] && o + 1 < cap; j++)
                out[o++] = s[j];
        }
        if (o && o + 1 < cap)
            out[o++] = '|';
        for (size_t j = ov[0]; j < ov[1] && o + 1 < cap; j++)
            out[o++] = s[j];
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    if (off < len) {
        if (o && o + 1 < cap)
            out[o++] = '|';
        for (size_t j = off; j < len && o + 1 < cap; j++)
            out[o++] = s[j];
    }
    out[o] = '\0';
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

static const char *const k_extra[] = {
    "Hello world", "I'm  fine,\tthanks!!\n\n", "  leading and trailing  ", "x\r\n\r\ny", "123456789 12",
    "\xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c 3.14", "WE'RE 'tis", "a\xc2\xa0" "b", "tab\t\tend",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x81 ok", "(x)=[y]{z};", "...\n", " \n ", "\xe2\x80\x83spaced\xe2\x80\x83",
};

static void cross_check(const char *kind_name, mp_pretok_kind kind, const char *rx, const char *inp, size_t inp_len)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char a[8192], b[8192];
    int n = 0, same = 0;
    size_t pos = 0;
    for (;;) {
        const char *s;
        size_t len;
        if (pos < inp_len) {
            const char *next = strstr(inp + pos, sep);
            s = inp + pos;
            len = next ? (size_t)(next - s) : inp_len - pos;
            pos = next ? (size_t)(next - inp) + sizeof(sep) - 1 : inp_len;
        } else if (pos - inp_len < sizeof(k_extra) / sizeof(k_extra[0])) {
            s = k_extra[pos - inp_len];
            len = strlen(s);
            pos++;
        } else {
            break;
        }
        split_str(kind, s, len, a, sizeof(a));
        split_pcre(rx, s, len, b, sizeof(b));
        n++;
        if (strcmp(a, b) == 0)
            same++;
        else
            fprintf(stderr, "%s: '%.*s'\n  ours: '%s'\n  pcre: '%s'\n", kind_name, (int)len, s, a, b);
    }
    fprintf(stderr, "%s: %d/%d strings split like the original regex\n", kind_name, same, n);
    CHECK(same == n);
}

/* Words per string <= tokens per string in llama.cpp's vectors. */
static void check_counts(const char *name, mp_pretok_kind kind, const char *inp, size_t inp_len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/vocab/%s.out", mp_test_src_dir(), name);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char line[8192];
    size_t pos = 0;
    int n = 0;
    mp_pretok *p = NULL;
    mp_err err = {0};
    CHECK(mp_pretok_create(&p, kind, &err) == MP_OK);
    while (pos < inp_len && fgets(line, sizeof(line), f)) {
        const char *s = inp + pos;
        const char *next = strstr(s, sep);
        size_t len = next ? (size_t)(next - s) : inp_len - pos;
        pos = next ? (size_t)(next - inp) + sizeof(sep) - 1 : inp_len;
        int ntok = 0;
        for (char *q = line; *q;) {
            char *end;
            strtol(q, &end, 10);
            if (end == q)
                break;
            ntok++;
            q = end;
        }
        uint32_t *cpts;
        int64_t nc = mp_utf8_to_cpts(s, len, &cpts);
        size_t *wl = NULL;
        int64_t nw = mp_pretok_split(p, cpts, (size_t)nc, &wl);
        CHECKF(nw <= ntok, "%s case %d: %lld words but %d tokens", name, n + 1, (long long)nw, ntok);
        free(wl);
        free(cpts);
        n++;
    }
    CHECK(n == 46);
    mp_pretok_free(p);
    fclose(f);
}

/* The WordPiece normalizer's Unicode data: simple lowercase, first code
 * point of NFD, and the control class (Cc/Cf/Co/Cs, not Cn). */
static void check_unicode_tables(void)
{
    CHECK(mp_cpt_init() == MP_OK);
    CHECK(mp_cpt_tolower('A') == 'a' && mp_cpt_tolower('a') == 'a' && mp_cpt_tolower('1') == '1');
    CHECK(mp_cpt_tolower(0x00C9) == 0x00E9);  /* É -> é */
    CHECK(mp_cpt_tolower(0x0410) == 0x0430);  /* Cyrillic A */
    CHECK(mp_cpt_tolower(0x0130) == 0x0069);  /* İ -> i (simple mapping) */
    CHECK(mp_cpt_nfd_first(0x00E9) == 'e' && mp_cpt_nfd_first(0x00C5) == 'A' && mp_cpt_nfd_first('x') == 'x');
    CHECK(mp_cpt_nfd_first(0xAC00) == 0x1100); /* Hangul syllable -> its leading jamo */
    CHECK(mp_cpt_flags(0x200B) & MP_CPT_CONTROL); /* ZWSP: Cf */
    CHECK(mp_cpt_flags(0x0007) & MP_CPT_CONTROL);
    CHECK(mp_cpt_flags(0xE000) & MP_CPT_CONTROL); /* private use */
    CHECK(mp_cpt_flags(0xD800) & MP_CPT_CONTROL); /* surrogate */
    CHECK(!(mp_cpt_flags(0x0378) & MP_CPT_CONTROL)); /* unassigned */
    CHECK(!(mp_cpt_flags('a') & MP_CPT_CONTROL));
}

int main(void)
{
    check_unicode_tables();
    check_names();
    check_hand_derived();

    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/vocab/ggml-vocab-llama-bpe.gguf.inp", mp_test_src_dir());
    FILE *f = fopen(path, "rb");
    CHECKF(f != NULL, "cannot open %s", path);
    if (f) {
        static char inp[65536];
        size_t inp_len = fread(inp, 1, sizeof(inp) - 1, f);
        inp[inp_len] = '\0';
        fclose(f);
        cross_check("gpt2", MP_PRETOK_GPT2,
                    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", inp, inp_len);
        cross_check("llama3", MP_PRETOK_LLAMA3,
                    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                    inp, inp_len);
        cross_check("qwen2", MP_PRETOK_QWEN2,
                    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                    inp, inp_len);
        check_counts("ggml-vocab-llama-bpe.gguf", MP_PRETOK_LLAMA3, inp, inp_len);
        check_counts("ggml-vocab-qwen2.gguf", MP_PRETOK_QWEN2, inp, inp_len);
    }
    MP_TEST_DONE();
}

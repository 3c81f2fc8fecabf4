/* mp-tokenize-lines: the engine's side of the tokenizer differential run
 * against libllama (tests/test_tokenizer_peer.sh).
 *
 *   mp-tokenize-lines VOCAB.gguf STRINGS
 *       tokenizes each string of STRINGS (records of a 4-byte little-endian
 *       length and the bytes) twice, add_special = parse_special = false and
 *       then both true; one line of space-separated ids per string and mode
 *       (tests/helpers/peer/peer_tokenize.c prints the same for llama.cpp)
 *   mp-tokenize-lines --gen N SEED OUT
 *       writes N varied strings: invalid UTF-8, long digit runs, whitespace
 *       runs (ASCII and Unicode), emoji and ZWJ sequences, CJK / kana /
 *       Hangul, Latin with combining marks, Cyrillic, Greek, Arabic,
 *       Devanagari, contractions in both cases, punctuation and symbols
 *       (ASCII and fullwidth), special-token texts, and random bytes; never
 *       a 4-byte form above U+10FFFF, on which llama.cpp aborts
 *   mp-tokenize-lines --set-pre IN.gguf NAME OUT.gguf [--no-merges] [--model=M]
 *       copies IN's metadata (a vocab-only GGUF) with tokenizer.ggml.pre =
 *       NAME (and without tokenizer.ggml.merges, and with
 *       tokenizer.ggml.model = M): pre-tokenizers whose own
 *       vocab the peer lacks run on another byte-level BPE vocabulary (the
 *       split rules are what differ)
 *   mp-tokenize-lines --info VOCAB.gguf
 *       prints "MODEL PRE" (tokenizer.ggml.model and .pre, "-" if absent)
 *       and exits 0 if the engine loads the vocabulary, else prints the
 *       refusal to stderr and exits 3
 *   mp-tokenize-lines --names
 *       prints every tokenizer.ggml.pre name the engine knows, one a line
 *   mp-tokenize-lines --make-rwkv IN.gguf OUT.gguf
 *       an RWKV vocabulary (tokenizer.ggml.model = rwkv, escaped token
 *       texts) from IN's metadata: the 256 single bytes, then IN's tokens
 *       decoded from the GPT-2 byte alphabet (the peer has no RWKV vocab)
 *   mp-tokenize-lines --vectors VOCAB.gguf
 *       llama.cpp's test vectors VOCAB.gguf.inp / .out (strings separated by
 *       "\n__ggml_vocab_test__\n", one line of ids each, no special tokens
 *       added or parsed): prints "matched/total" and every mismatch; exit 1
 *       on any */
#include "gguf/gguf.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_unicode.h"
#include "tokenizer/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static uint32_t rn(uint32_t n) { return rnd() % n; }

/* pieces the generator strings together */
static const char *const k_pieces[] = {
    "Hello", "hello", "HELLO", " world", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "  \t\n",
    "'s", "'S", "'re", "'RE", "'ve", "'ll", "'LL", "'d", "'m", "'t", "don't", "I'M", "we'Re",
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "٣٤٥", "௧௨௩", "²³", "Ⅻ",
    "!", "?!", "...", "--", "->", "==", "#include", "<s>", "</s>", "<|endoftext|>", "<|im_start|>", "[gMASK]",
    "<｜begin▁of▁sentence｜>", "$", "+", "<=>", "^", "`", "|", "~", "@", "{}", "[]", "()", "\\", "/", "*", "%", "&",
    "！", "，", "。", "、", "「」", "（）", "：", "～", "‘quoted’", "“double”", "—", "…", "　",
    "你好", "世界", "一二三", "〇", "中文字符", "龥", "㐀", "𠀀", "豈", "日本語", "ひらがな", "カタカナ", "ｶﾀｶﾅ", "한국어", "가나다",
    "Привет", "мир", "Ελληνικά", "العربية", "हिन्दी", "ไทย", "עברית", "Ωmega", "µ", "ß", "ǅ", "ʼn",
    "e\xcc\x81", "n\xcc\x83o", "a\xcc\x8a\xcc\x81", "\xcc\x81", "Café", "naïve", "Ångström", "ﬁ", "Ｆｕｌｌ", "ｗｉｄｔｈ",
    "😀", "🤖", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "✓", "∑", "€", "£", "¥", "©", "™", "°C",
    "\xc2\xa0", "\xe2\x80\x83", "\xe2\x80\xa8", "\xe3\x80\x80", "\xc2\x85", "\x0b", "\x0c",
    "\xff", "\xfe\xfe", "\xc3", "\xe4\xbd", "\xf0\x9f\x98", "\x80\x80", "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\x80",
    "def f(x):\n    return x + 1\n", "int main() { return 0; }", "SELECT * FROM t;", "http://x.io/a?b=c",
    "CamelCaseWord", "snake_case_word", "ALLCAPS123abc", "a1b2c3", "x=1;y=2", "Mr.Smith", "U.S.A.",
};
#define N_PIECES (sizeof k_pieces / sizeof k_pieces[0])

static size_t gen_one(char *s, size_t cap)
{
    size_t n = 0;
    const uint32_t kind = rn(10);
    const uint32_t parts = 1 + rn(kind == 0 ? 40 : 12);
    for (uint32_t p = 0; p < parts && n + 64 < cap; p++) {
        const uint32_t r = rn(20);
        if (r == 0) { /* random bytes */
            const uint32_t k = 1 + rn(8);
            for (uint32_t i = 0; i < k; i++) s[n++] = (char)(1 + rn(255));
        } else if (r == 1) { /* a random code point, any plane */
            uint32_t c = rn(4) ? 0x80 + rn(0x3000) : 0x3000 + rn(0x10C000);
            if (c >= 0xD800 && c <= 0xDFFF) c = 0x2603;
            if (c < 0x800) { s[n++] = (char)(0xC0 | c >> 6); s[n++] = (char)(0x80 | (c & 63)); }
            else if (c < 0x10000) { s[n++] = (char)(0xE0 | c >> 12); s[n++] = (char)(0x80 | (c >> 6 & 63)); s[n++] = (char)(0x80 | (c & 63)); }
            else { s[n++] = (char)(0xF0 | c >> 18); s[n++] = (char)(0x80 | (c >> 12 & 63)); s[n++] = (char)(0x80 | (c >> 6 & 63)); s[n++] = (char)(0x80 | (c & 63)); }
        } else if (r == 2) { /* a digit run */
            const uint32_t k = 1 + rn(30);
            for (uint32_t i = 0; i < k; i++) s[n++] = (char)('0' + rn(10));
        } else if (r == 3) { /* a whitespace run */
            const uint32_t k = 1 + rn(12);
            for (uint32_t i = 0; i < k; i++) s[n++] = " \t\n\r "[rn(5)];
        } else {
            const char *pc = k_pieces[rn(N_PIECES)];
            size_t l = strlen(pc);
            if (n + l + 1 >= cap) break;
            memcpy(s + n, pc, l);
            n += l;
            if (rn(3) == 0) s[n++] = ' ';
        }
    }
    /* llama.cpp decodes a 4-byte form up to 0x1FFFFF and then aborts
     * (an uncaught "invalid codepoint" from unicode_cpt_to_utf8) on one above
     * U+10FFFF: no such input, its lead byte becomes '?' */
    for (size_t i = 0; i + 3 < n; i++) {
        const uint8_t *u = (const uint8_t *)s + i;
        if ((u[0] & 0xF8) == 0xF0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 && (u[3] & 0xC0) == 0x80 &&
            (((uint32_t)(u[0] & 7) << 18) | ((uint32_t)(u[1] & 63) << 12)) > 0x10FFFF)
            s[i] = '?';
    }
    return n;
}

static int gen(long count, uint64_t seed, const char *out)
{
    FILE *f = fopen(out, "wb");
    if (!f) return 2;
    rng_state = seed * 2654435761u + 1;
    char s[4096];
    for (long i = 0; i < count; i++) {
        size_t n = gen_one(s, sizeof s);
        uint8_t lb[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
        if (fwrite(lb, 1, 4, f) != 4 || fwrite(s, 1, n, f) != n) return 2;
    }
    return fclose(f) ? 2 : 0;
}

static int set_pre(const char *in, const char *name, const char *out, bool no_merges, const char *model)
{
    mp_gguf *g = NULL;
    mp_err err = {0};
    if (mp_gguf_open(&g, in, NULL, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        return 1;
    }
    mp_gguf_writer *w = mp_gguf_writer_create();
    int rc = w ? 0 : 1;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g) && !rc; i++) {
        const char *key = mp_gguf_kv_at(g, i)->key.ptr;
        if (!strcmp(key, "tokenizer.ggml.pre")) rc |= mp_gguf_writer_set_str(w, key, name);
        else if (model && !strcmp(key, "tokenizer.ggml.model")) rc |= mp_gguf_writer_set_str(w, key, model);
        else if (no_merges && !strcmp(key, "tokenizer.ggml.merges")) continue;
        else rc |= mp_gguf_writer_set_value(w, key, &mp_gguf_kv_at(g, i)->value);
    }
    if (!rc && !mp_gguf_get_str(g, "tokenizer.ggml.pre")) rc |= mp_gguf_writer_set_str(w, "tokenizer.ggml.pre", name);
    if (!rc && mp_gguf_writer_write(w, out, NULL, NULL, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        rc = 1;
    }
    mp_gguf_writer_free(w);
    mp_gguf_free(g);
    return rc ? 1 : 0;
}

/* RWKV escaping of raw bytes: \\xhh for controls, DEL, bytes >= 0x80 and
 * the backslash itself. */
static size_t rwkv_escape(const unsigned char *b, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 || b[i] >= 0x7F || b[i] == '\\')
            o += (size_t)sprintf(out + o, "\\x%02x", b[i]);
        else
            out[o++] = (char)b[i];
    }
    out[o] = '\0';
    return o;
}

static int make_rwkv(const char *in, const char *out)
{
    mp_gguf *g = NULL;
    mp_err err = {0};
    if (mp_gguf_open(&g, in, NULL, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        return 1;
    }
    uint32_t et;
    uint64_t nt;
    const void *data;
    if (mp_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nt, &data, &err) != MP_OK || et != MP_GGUF_STRING) {
        fprintf(stderr, "mp-tokenize-lines: %s: no token list\n", in);
        mp_gguf_free(g);
        return 1;
    }
    const mp_gguf_str *toks = data;
    char **strs = calloc(nt + 256, sizeof(*strs));
    int32_t *types = calloc(nt + 256, sizeof(*types));
    uint64_t n = 0;
    int rc = strs && types ? 0 : 1;
    for (int b = 0; b < 256 && !rc; b++) {
        unsigned char c = (unsigned char)b;
        strs[n] = malloc(8);
        rwkv_escape(&c, 1, strs[n]);
        types[n++] = 1;
    }
    for (uint64_t i = 0; i < nt && !rc; i++) {
        unsigned char raw[1024];
        size_t rl = 0;
        bool ok = toks[i].len > 0 && toks[i].len < 512;
        for (size_t k = 0; ok && k < toks[i].len;) {
            size_t adv;
            int byte = mp_cpt_to_byte(mp_utf8_decode((const uint8_t *)toks[i].ptr + k, toks[i].len - k, &adv));
            ok = byte >= 0;
            raw[rl++] = (unsigned char)byte;
            k += adv;
        }
        if (!ok || rl < 2)
            continue;
        strs[n] = malloc(rl * 4 + 1);
        rwkv_escape(raw, rl, strs[n]);
        types[n++] = 1;
    }
    mp_gguf_writer *w = mp_gguf_writer_create();
    rc |= w ? 0 : 1;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g) && !rc; i++) {
        const char *key = mp_gguf_kv_at(g, i)->key.ptr;
        if (!strncmp(key, "tokenizer.", 10))
            continue;
        rc |= mp_gguf_writer_set_value(w, key, &mp_gguf_kv_at(g, i)->value);
    }
    if (!rc)
        rc |= mp_gguf_writer_set_str(w, "tokenizer.ggml.model", "rwkv") |
              mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", n, (const char *const *)strs, NULL) |
              mp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MP_GGUF_INT32, n, types);
    if (!rc && mp_gguf_writer_write(w, out, NULL, NULL, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        rc = 1;
    }
    for (uint64_t i = 0; strs && i < n; i++)
        free(strs[i]);
    free(strs);
    free(types);
    mp_gguf_writer_free(w);
    mp_gguf_free(g);
    return rc ? 1 : 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    size_t n = 0, cap = 0, r;
    do {
        if (n + 65536 > cap) {
            cap = 2 * cap + 65536;
            char *nb = realloc(b, cap + 1);
            if (!nb) { free(b); fclose(f); return NULL; }
            b = nb;
        }
        r = fread(b + n, 1, 65536, f);
        n += r;
    } while (r > 0);
    fclose(f);
    b[n] = '\0';
    *len = n;
    return b;
}

static int vectors(const char *vocab)
{
    char ip[1100], op[1100];
    snprintf(ip, sizeof ip, "%s.inp", vocab);
    snprintf(op, sizeof op, "%s.out", vocab);
    size_t il, ol;
    char *inp = read_all(ip, &il), *out = read_all(op, &ol);
    mp_gguf *g = NULL;
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    if (!inp || !out || mp_gguf_open(&g, vocab, NULL, &err) != MP_OK || mp_tokenizer_load(&tok, g, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s: %s\n", vocab, err.msg[0] ? err.msg : "cannot read .inp/.out");
        return 1;
    }
    mp_gguf_free(g);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t ipos = 0;
    char *oline = out;
    int total = 0, ok = 0;
    int32_t ids[8192];
    while (ipos < il) {
        const char *next = strstr(inp + ipos, sep);
        const char *s = inp + ipos;
        const size_t sl = next ? (size_t)(next - s) : il - ipos;
        ipos = next ? (size_t)(next - inp) + sizeof sep - 1 : il;
        char *eol = strchr(oline, '\n');
        if (!eol) break;
        *eol = '\0';
        int32_t want[8192];
        int64_t nw = 0;
        for (char *p = oline, *e; nw < 8192; p = e) {
            long v = strtol(p, &e, 10);
            if (e == p) break;
            want[nw++] = (int32_t)v;
        }
        oline = eol + 1;
        total++;
        int64_t n = mp_tokenize(tok, s, sl, false, false, ids, 8192);
        if (n == nw && (n == 0 || !memcmp(ids, want, (size_t)n * sizeof *ids))) {
            ok++;
        } else {
            printf("MISMATCH case %d '%.*s': got", total, (int)sl, s);
            for (int64_t i = 0; i < n && i < 8192; i++) printf(" %d", ids[i]);
            printf("; want");
            for (int64_t i = 0; i < nw; i++) printf(" %d", want[i]);
            putchar('\n');
        }
    }
    printf("%d/%d\n", ok, total);
    mp_tokenizer_free(tok);
    free(inp);
    free(out);
    return ok == total && total > 0 ? 0 : 1;
}

static int info(const char *vocab)
{
    mp_gguf *g = NULL;
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    if (mp_gguf_open(&g, vocab, NULL, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        return 1;
    }
    const char *model = mp_gguf_get_str(g, "tokenizer.ggml.model");
    const char *pre = mp_gguf_get_str(g, "tokenizer.ggml.pre");
    printf("%s %s\n", model && *model ? model : "-", pre && *pre ? pre : "-");
    int rc = 0;
    if (mp_tokenizer_load(&tok, g, &err) != MP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 3;
    }
    mp_tokenizer_free(tok);
    mp_gguf_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--info")) return info(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "--make-rwkv")) return make_rwkv(argv[2], argv[3]);
    if (argc == 2 && !strcmp(argv[1], "--names")) {
        for (size_t i = 0; mp_pretok_name_at(i); i++) puts(mp_pretok_name_at(i));
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--vectors")) return vectors(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "--gen")) return gen(atol(argv[2]), strtoull(argv[3], NULL, 10), argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "--set-pre")) {
        bool no_merges = false;
        const char *model = NULL;
        for (int i = 5; i < argc; i++) {
            if (!strcmp(argv[i], "--no-merges")) no_merges = true;
            else if (!strncmp(argv[i], "--model=", 8)) model = argv[i] + 8;
            else return 2;
        }
        return set_pre(argv[2], argv[3], argv[4], no_merges, model);
    }
    if (argc != 3) {
        fprintf(stderr, "usage: mp-tokenize-lines VOCAB.gguf STRINGS | --gen N SEED OUT | --set-pre IN NAME OUT [--no-merges] "
                        "[--model=M] | --vectors VOCAB.gguf | --info VOCAB.gguf | --names\n");
        return 2;
    }
    mp_gguf *g = NULL;
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    if (mp_gguf_open(&g, argv[1], NULL, &err) != MP_OK || mp_tokenizer_load(&tok, g, &err) != MP_OK) {
        fprintf(stderr, "mp-tokenize-lines: %s\n", err.msg);
        mp_gguf_free(g);
        return 1;
    }
    mp_gguf_free(g);
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "mp-tokenize-lines: cannot open %s\n", argv[2]);
        return 1;
    }
    int64_t cap = 1 << 16;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char *buf = NULL;
    uint8_t lb[4];
    while (fread(lb, 1, 4, f) == 4) {
        const uint32_t len = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
        buf = realloc(buf, len + 1);
        if (!buf || fread(buf, 1, len, f) != len) {
            fprintf(stderr, "mp-tokenize-lines: truncated %s\n", argv[2]);
            return 1;
        }
        for (int mode = 0; mode < 2; mode++) {
            int64_t n = mp_tokenize(tok, buf, len, mode == 1, mode == 1, ids, cap);
            if (n < 0 || n > cap) {
                printf("ERR %lld\n", (long long)n);
                continue;
            }
            for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
        }
    }
    fclose(f);
    free(buf);
    free(ids);
    mp_tokenizer_free(tok);
    return 0;
}

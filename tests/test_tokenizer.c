/* Tokenizers against llama.cpp's vectors (tests/data/vocab: the llama SPM
 * and GPT-2 vocabularies with 46 strings each, tokenized by llama.cpp with
 * add_special = false, parse_special = false), the round trip through
 * mp_token_to_piece, special tokens and flags, refusals of unknown
 * tokenizers, a tiny synthetic SPM vocabulary, and a 100 KB text. */
#include "mp_test.h"

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static mp_tokenizer *load_path(const char *path)
{
    mp_gguf *g = NULL;
    mp_err err = {0};
    mp_tokenizer *tok = NULL;
    int st = mp_gguf_open(&g, path, NULL, &err);
    CHECKF(st == MP_OK, "open %s: %s", path, err.msg);
    if (st != MP_OK)
        return NULL;
    st = mp_tokenizer_load(&tok, g, &err);
    CHECKF(st == MP_OK, "load %s: %s", path, err.msg);
    mp_gguf_free(g); /* the tokenizer must not depend on g */
    return tok;
}

/* Concatenated pieces of ids[0..n) (special = false). Caller frees. */
static char *detok(const mp_tokenizer *tok, const int32_t *ids, int64_t n, size_t *len)
{
    size_t cap = 64, l = 0;
    char *s = malloc(cap);
    for (int64_t i = 0; i < n; i++) {
        int need = mp_token_to_piece(tok, ids[i], NULL, 0, false);
        CHECK(need >= 0);
        if (need < 0)
            continue;
        while (l + (size_t)need + 1 > cap)
            s = realloc(s, cap *= 2);
        int got = mp_token_to_piece(tok, ids[i], s + l, need, false);
        CHECK(got == need);
        l += (size_t)need;
    }
    s[l] = '\0';
    *len = l;
    return s;
}

static int64_t tokenize_all(const mp_tokenizer *tok, const char *s, size_t len, bool add_special,
                            bool parse_special, int32_t **ids)
{
    int64_t n = mp_tokenize(tok, s, len, add_special, parse_special, NULL, 0);
    CHECK(n >= 0);
    if (n < 0)
        return n;
    *ids = malloc(((size_t)n + 1) * sizeof(int32_t));
    int64_t n2 = mp_tokenize(tok, s, len, add_special, parse_special, *ids, n);
    CHECK(n2 == n);
    return n;
}

/* Runs llama.cpp's vector file pair for one vocabulary. */
/* para repeated to len bytes, less a UTF-8 sequence cut at the end; the
 * length kept is in *out_len. */
static char *repeat_text(const char *para, size_t len, size_t *out_len)
{
    char *big = malloc(len);
    if (!big) abort();
    const size_t pl = strlen(para);
    for (size_t i = 0; i < len; i++) big[i] = para[i % pl];
    while (len > 0 && ((unsigned char)big[len - 1] & 0x80)) len--;
    *out_len = len;
    return big;
}

/* tokenize_all, timed and reported on stderr under name. */
static int64_t timed_tokenize(const char *name, const mp_tokenizer *tok, const char *s, size_t len, int32_t **ids)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t n = tokenize_all(tok, s, len, false, false, ids);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "%s: %zu bytes -> %lld tokens in %.1f ms\n", name, len, (long long)n,
            (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    return n;
}

static void check_vectors(const char *name)
{
    char path[1024], inp_path[1100], out_path[1100];
    snprintf(path, sizeof(path), "%s/tests/data/vocab/%s", mp_test_src_dir(), name);
    snprintf(inp_path, sizeof(inp_path), "%s.inp", path);
    snprintf(out_path, sizeof(out_path), "%s.out", path);
    mp_tokenizer *tok = load_path(path);
    if (!tok)
        return;
    size_t inp_len, out_len;
    char *inp = read_file(inp_path, &inp_len);
    char *out = read_file(out_path, &out_len);
    CHECKF(inp && out, "cannot read %s(.inp|.out)", path);
    if (!inp || !out)
        goto done;

    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof(sep) - 1;
    size_t ipos = 0;
    char *oline = out;
    int n_cases = 0, n_ok = 0, n_rt = 0;
    while (ipos < inp_len) {
        const char *next = strstr(inp + ipos, sep); /* .inp holds no NUL bytes */
        size_t slen = next ? (size_t)(next - (inp + ipos)) : inp_len - ipos;
        const char *s = inp + ipos;
        ipos = next ? (size_t)(next - inp) + sep_len : inp_len;

        char *eol = strchr(oline, '\n');
        CHECKF(eol != NULL, "%s: fewer .out lines than test strings", name);
        if (!eol)
            break;
        *eol = '\0';
        int32_t want[4096];
        int64_t n_want = 0;
        for (char *p = oline; *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            want[n_want++] = (int32_t)v;
            p = end;
        }
        oline = eol + 1;
        n_cases++;

        int32_t *ids = NULL;
        int64_t n = tokenize_all(tok, s, slen, false, false, &ids);
        bool same = n == n_want && (n == 0 || memcmp(ids, want, (size_t)n * sizeof(int32_t)) == 0);
        if (same) {
            n_ok++;
        } else {
            fprintf(stderr, "%s case %d '%.*s': got", name, n_cases, (int)slen, s);
            for (int64_t i = 0; i < n; i++)
                fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  want");
            for (int64_t i = 0; i < n_want; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        CHECK(same);

        /* Round trip: SPM adds one leading space (add_space_prefix), which
         * llama.cpp's detokenizer strips again. */
        size_t dl;
        char *d = detok(tok, ids, n, &dl);
        const char *dp = d;
        if (mp_tokenizer_add_space_prefix(tok) && dl > 0 && d[0] == ' ') {
            dp++;
            dl--;
        }
        bool rt = dl == slen && memcmp(dp, s, slen) == 0;
        n_rt += rt;
        CHECKF(rt, "%s case %d: round trip gave '%.*s' for '%.*s'", name, n_cases, (int)dl, dp, (int)slen, s);
        free(d);
        free(ids);
    }
    CHECKF(n_cases == 46, "%s: %d cases", name, n_cases);
    fprintf(stderr, "%s: %d/%d cases match llama.cpp, %d round-trip\n", name, n_ok, n_cases, n_rt);
done:
    free(inp);
    free(out);
    mp_tokenizer_free(tok);
}

static void check_spm_specials(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/vocab/ggml-vocab-llama-spm.gguf", mp_test_src_dir());
    mp_tokenizer *tok = load_path(path);
    if (!tok)
        return;
    CHECK(mp_tokenizer_n_vocab(tok) == 32000);
    CHECK(mp_tokenizer_bos(tok) == 1);
    CHECK(mp_tokenizer_eos(tok) == 2);
    CHECK(mp_tokenizer_unk(tok) == 0);
    CHECK(mp_tokenizer_add_bos(tok));
    CHECK(!mp_tokenizer_add_eos(tok));
    CHECK(mp_tokenizer_is_eog(tok, 2));
    CHECK(!mp_tokenizer_is_eog(tok, 1));
    CHECK(!mp_tokenizer_is_eog(tok, -1) && !mp_tokenizer_is_eog(tok, 32000));
    CHECK(mp_tokenizer_is_control(tok, 1));

    int32_t *ids = NULL;
    /* " Hello" -> BOS + "▁Hello" with add_special. */
    int64_t n = tokenize_all(tok, "Hello", 5, true, false, &ids);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 15043);
    free(ids);
    /* "<s>" is text without parse_special, the BOS token with it; the text
     * after a special token gets the prefix space again. */
    n = tokenize_all(tok, "<s>Hello", 8, false, true, &ids);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 15043);
    free(ids);
    n = tokenize_all(tok, "<s>Hello", 8, false, false, &ids);
    CHECK(n > 2 && ids[0] != 1);
    free(ids);

    char buf[16];
    CHECK(mp_token_to_piece(tok, 1, buf, sizeof(buf), false) == 0);
    CHECK(mp_token_to_piece(tok, 1, buf, sizeof(buf), true) == 3 && memcmp(buf, "<s>", 3) == 0);
    CHECK(mp_token_to_piece(tok, 13, buf, sizeof(buf), false) == 1 && buf[0] == '\n'); /* <0x0A> */
    CHECK(mp_token_to_piece(tok, 15043, buf, 2, false) == 6 && memcmp(buf, " H", 2) == 0); /* truncated */
    CHECK(mp_token_to_piece(tok, 32000, buf, sizeof(buf), false) == MP_E_INVAL);
    CHECK(mp_token_to_piece(tok, -1, buf, sizeof(buf), false) == MP_E_INVAL);

    /* Bytes outside the vocabulary fall back to <0xXX> tokens: id = byte + 3. */
    n = tokenize_all(tok, "\xff", 1, false, false, &ids);
    CHECK(n == 2 && ids[1] == 0xff + 3);
    free(ids);
    CHECK(mp_tokenize(tok, "", 0, false, false, NULL, 0) == 0);
    /* A too-small buffer gets a prefix; the count is still the total. */
    int32_t two[2] = {-7, -7};
    n = mp_tokenize(tok, "Hello world, hello moon", 23, true, false, two, 1);
    CHECK(n > 2 && two[0] == 1 && two[1] == -7);

    /* A 100 KB text: linear-ish time and the round trip. */
    size_t big_len;
    char *big = repeat_text("The quick brown fox jumps over the lazy dog; 1234 \xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd!\n",
                            100 * 1024, &big_len);
    n = timed_tokenize("spm", tok, big, big_len, &ids);
    size_t dl;
    char *d = detok(tok, ids, n, &dl);
    CHECK(dl == big_len + 1 && memcmp(d + 1, big, big_len) == 0);
    free(d);
    free(ids);
    free(big);
    mp_tokenizer_free(tok);
}

static void check_gpt2_specials(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/data/vocab/ggml-vocab-gpt-2.gguf", mp_test_src_dir());
    mp_tokenizer *tok = load_path(path);
    if (!tok)
        return;
    CHECK(mp_tokenizer_n_vocab(tok) == 50257);
    CHECK(mp_tokenizer_bos(tok) == 50256 && mp_tokenizer_eos(tok) == 50256);
    CHECK(!mp_tokenizer_add_bos(tok));
    CHECK(!mp_tokenizer_add_space_prefix(tok));
    CHECK(mp_tokenizer_is_eog(tok, 50256));

    int32_t *ids = NULL;
    const char *s = "Hello<|endoftext|> world";
    int64_t n = tokenize_all(tok, s, strlen(s), false, true, &ids);
    /* "Hello" = 15496, " world" = 995 */
    CHECK(n == 3 && ids[0] == 15496 && ids[1] == 50256 && ids[2] == 995);
    free(ids);
    n = tokenize_all(tok, s, strlen(s), false, false, &ids);
    CHECK(n > 3);
    for (int64_t i = 0; i < n; i++)
        CHECK(ids[i] != 50256);
    free(ids);
    char buf[32];
    CHECK(mp_token_to_piece(tok, 50256, buf, sizeof(buf), false) == 0);
    CHECK(mp_token_to_piece(tok, 50256, buf, sizeof(buf), true) == 13);
    CHECK(mp_token_to_piece(tok, 995, buf, sizeof(buf), false) == 6 && memcmp(buf, " world", 6) == 0);

    /* Invalid UTF-8 becomes U+FFFD before byte-level BPE, as in llama.cpp. */
    n = tokenize_all(tok, "a\xff", 2, false, false, &ids);
    size_t dl;
    char *d = detok(tok, ids, n, &dl);
    CHECK(dl == 4 && memcmp(d, "a\xef\xbf\xbd", 4) == 0);
    free(d);
    free(ids);

    size_t big_len;
    char *big = repeat_text("The quick brown fox jumps over the lazy dog; 1234   \xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd!\n",
                            100 * 1024, &big_len);
    n = timed_tokenize("gpt2", tok, big, big_len, &ids);
    d = detok(tok, ids, n, &dl);
    CHECK(dl == big_len && memcmp(d, big, big_len) == 0);
    free(d);
    free(ids);
    free(big);
    mp_tokenizer_free(tok);
}

/* Builds an in-memory GGUF with the given tokenizer keys and loads it. */
static int load_synthetic(const char *model, const char *pre, uint32_t n, const char *const *toks,
                          const float *scores, const int32_t *types, const char *const *merges, uint32_t n_merges,
                          mp_tokenizer **tok, mp_err *err)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    CHECK(w != NULL);
    if (!w)
        return MP_E_NOMEM;
    CHECK(mp_gguf_writer_set_str(w, "general.architecture", "llama") == MP_OK);
    CHECK(mp_gguf_writer_set_str(w, "tokenizer.ggml.model", model) == MP_OK);
    if (pre)
        CHECK(mp_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre) == MP_OK);
    CHECK(mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", n, toks, NULL) == MP_OK);
    if (scores)
        CHECK(mp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", MP_GGUF_FLOAT32, n, scores) == MP_OK);
    if (types)
        CHECK(mp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MP_GGUF_INT32, n, types) == MP_OK);
    if (merges)
        CHECK(mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", n_merges, merges, NULL) == MP_OK);
    void *img = NULL;
    size_t img_len = 0;
    int st = mp_gguf_writer_write_mem(w, NULL, NULL, &img, &img_len, err);
    mp_gguf_writer_free(w);
    CHECKF(st == MP_OK, "write_mem: %s", err->msg);
    if (st != MP_OK)
        return st;
    mp_gguf *g = NULL;
    st = mp_gguf_open_mem(&g, img, img_len, "synthetic.gguf", err);
    CHECKF(st == MP_OK, "open_mem: %s", err->msg);
    if (st == MP_OK)
        st = mp_tokenizer_load(tok, g, err);
    mp_gguf_free(g);
    free(img);
    return st;
}

/* The layout make_tiny_gguf.py writes: <unk> <s> </s>, 256 byte tokens,
 * then pieces with decreasing scores. */
static void check_tiny_spm(void)
{
    enum { N = 3 + 256 + 8 };
    static char bytes[256][8];
    const char *toks[N];
    float scores[N];
    int32_t types[N];
    toks[0] = "<unk>";
    toks[1] = "<s>";
    toks[2] = "</s>";
    types[0] = 2;
    types[1] = types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = 6;
    }
    const char *pieces[8] = {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab", "c",
                             "\xe2\x96\x81" "abc"};
    for (int i = 0; i < 8; i++) {
        toks[259 + i] = pieces[i];
        types[259 + i] = 1;
    }
    for (int i = 0; i < N; i++)
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    int st = load_synthetic("llama", NULL, N, toks, scores, types, NULL, 0, &tok, &err);
    CHECKF(st == MP_OK, "tiny spm: %s", err.msg);
    if (st != MP_OK)
        return;
    int32_t *ids = NULL;
    /* "ab c" -> "▁ab▁c": "▁a"(-3) merges before "ab"(-4), then "▁ab"(-5);
     * "▁c" is no token: "▁" + "c". */
    int64_t n = tokenize_all(tok, "ab c", 4, false, false, &ids);
    CHECK(n == 3 && ids[0] == 259 + 5 && ids[1] == 259 + 0 && ids[2] == 259 + 6);
    free(ids);
    /* "abc": "▁ab" then "▁abc" exists but only as a merge of "▁ab"+"c". */
    n = tokenize_all(tok, "abc", 3, true, false, &ids);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 259 + 7);
    free(ids);
    /* 'z' is unknown: byte fallback <0x7A>. */
    n = tokenize_all(tok, "z", 1, false, false, &ids);
    CHECK(n == 2 && ids[0] == 259 && ids[1] == 3 + 'z');
    free(ids);
    mp_tokenizer_free(tok);
}

static void check_refusals(void)
{
    const char *toks[] = {"a", "b", "ab"};
    const char *merges[] = {"a b"};
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    int st = load_synthetic("plamo2", NULL, 3, toks, NULL, NULL, NULL, 0, &tok, &err);
    CHECK(st == MP_E_UNSUPPORTED && tok == NULL && strstr(err.msg, "'plamo2'"));
    mp_err_clear(&err);
    st = load_synthetic("gpt2", "no-such-pre", 3, toks, NULL, NULL, merges, 1, &tok, &err);
    CHECK(st == MP_E_UNSUPPORTED && tok == NULL && strstr(err.msg, "'no-such-pre'"));
    mp_err_clear(&err);
    st = load_synthetic("gpt2", "gpt-2", 3, toks, NULL, NULL, NULL, 0, &tok, &err); /* no merges */
    CHECK(st == MP_E_CORRUPT && strstr(err.msg, "tokenizer.ggml.merges"));
    mp_err_clear(&err);
    /* A minimal BPE vocabulary works and merges "a b". */
    st = load_synthetic("gpt2", "qwen2", 3, toks, NULL, NULL, merges, 1, &tok, &err);
    CHECKF(st == MP_OK, "%s", err.msg);
    if (st == MP_OK) {
        int32_t ids[4];
        CHECK(mp_tokenize(tok, "abab", 4, true, false, ids, 4) == 2 && ids[0] == 2 && ids[1] == 2);
        mp_tokenizer_free(tok);
    }
}

/* WordPiece: lowercased and accent-stripped words, each with a U+2581
 * prefix, covered by the longest entries left to right; punctuation is a
 * word alone; a word with an uncovered position is UNK as a whole. */
static void check_tiny_wpm(void)
{
    const char *toks[] = {"[UNK]", "\xE2\x96\x81" "hello", "\xE2\x96\x81" "he", "llo", "\xE2\x96\x81,", "\xE2\x96\x81" "cafe"};
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    int st = load_synthetic("bert", NULL, 6, toks, NULL, NULL, NULL, 0, &tok, &err);
    CHECKF(st == MP_OK, "%s", err.msg);
    if (st != MP_OK)
        return;
    int32_t ids[8];
    CHECK(mp_tokenize(tok, "Hello,", 6, false, false, ids, 8) == 2 && ids[0] == 1 && ids[1] == 4);
    CHECK(mp_tokenize(tok, "HEllo CAF\xC3\x89", 11, false, false, ids, 8) == 2 && ids[0] == 1 && ids[1] == 5);
    CHECK(mp_tokenize(tok, "hex", 3, false, false, ids, 8) == 0); /* UNK id 100 is out of range */
    mp_tokenizer_free(tok);
}

/* Unigram (T5): the best-scoring cover by vocabulary entries; a code point
 * no entry covers is UNK at (lowest score - 10), and UNK runs merge. */
static void check_tiny_ugm(void)
{
    const char *toks[] = {"<pad>", "</s>", "<unk>", "hel", "lo", "hello", "l", "o"};
    const float scores[] = {0, 0, 0, -1, -1, -3, -5, -5};
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    int st = load_synthetic("t5", NULL, 8, toks, scores, NULL, NULL, 0, &tok, &err);
    CHECKF(st == MP_OK, "%s", err.msg);
    if (st != MP_OK)
        return;
    int32_t ids[8];
    CHECK(mp_tokenize(tok, "hello", 5, false, false, ids, 8) == 2 && ids[0] == 3 && ids[1] == 4);
    CHECK(mp_tokenize(tok, "hellz", 5, false, false, ids, 8) == 3 && ids[0] == 3 && ids[1] == 6 && ids[2] == 2);
    CHECK(mp_tokenize(tok, "zz", 2, false, false, ids, 8) == 1 && ids[0] == 2);
    /* add_special appends EOS (id 1 by default), no BOS */
    CHECK(mp_tokenize(tok, "lo", 2, true, false, ids, 8) == 2 && ids[0] == 4 && ids[1] == 1);
    mp_tokenizer_free(tok);
}

/* RWKV: escaped texts (\\n, \\xhh), greedy longest match, no BOS/EOS. */
static void check_tiny_rwkv(void)
{
    const char *toks[] = {"a", "b", "ab", "abb", "\\n", "\\xff", "\\\\"};
    mp_tokenizer *tok = NULL;
    mp_err err = {0};
    int st = load_synthetic("rwkv", NULL, 7, toks, NULL, NULL, NULL, 0, &tok, &err);
    CHECKF(st == MP_OK, "%s", err.msg);
    if (st != MP_OK)
        return;
    int32_t ids[8];
    CHECK(mp_tokenize(tok, "abab\n", 5, true, false, ids, 8) == 3 && ids[0] == 2 && ids[1] == 2 && ids[2] == 4);
    CHECK(mp_tokenize(tok, "abbb\xff\\", 6, false, false, ids, 8) == 4 && ids[0] == 3 && ids[1] == 1 && ids[2] == 5 &&
          ids[3] == 6);
    char piece[8];
    CHECK(mp_token_to_piece(tok, 5, piece, 8, false) == 1 && (uint8_t)piece[0] == 0xFF);
    mp_tokenizer_free(tok);
}

int main(void)
{
    check_tiny_rwkv();
    check_tiny_ugm();
    check_tiny_wpm();
    check_vectors("ggml-vocab-llama-spm.gguf");
    check_vectors("ggml-vocab-gpt-2.gguf");
    check_spm_specials();
    check_gpt2_specials();
    check_tiny_spm();
    check_refusals();
    MP_TEST_DONE();
}

/* Seeded mutation fuzzing of the GGUF reader: byte flips, interesting
 * values over counts/lengths/type ids, truncations, inserted and deleted
 * ranges, splices, applied to valid images (built here, plus the committed
 * seed corpus). Every mutant is opened from an exactly-sized allocation and
 * must either be rejected cleanly or satisfy gguf_check_image's invariants
 * (including a rewrite round trip). Also replays tests/fuzz/regress_gguf/
 * (crash reproducers from libFuzzer runs).
 *
 *   test_gguf_fuzz [iterations] [seed]     (default 20000, 1; env
 *                                            MP_FUZZ_ITERS/MP_FUZZ_SEED too)
 *   test_gguf_fuzz --write-corpus DIR      writes the seed corpus */
#include "gguf/gguf.h"
#include "helpers/test_util.h"
#include "mp_test.h"
#include "test_gguf_image.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct seed {
    uint8_t *p;
    size_t n;
    size_t header; /* bytes before the data section: where mutations matter */
} seed;

static seed seeds[64];
static int n_seeds;

static uint64_t rng_state;
static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static void add_seed(void *p, size_t n)
{
    if (!p || n_seeds == (int)(sizeof seeds / sizeof seeds[0])) {
        free(p);
        return;
    }
    mp_gguf *g = NULL;
    size_t header = n;
    if (mp_gguf_open_mem(&g, p, n, "seed", NULL) == MP_OK) {
        if (mp_gguf_n_tensors(g)) header = (size_t)mp_gguf_data_offset(g);
        mp_gguf_free(g);
    }
    seeds[n_seeds++] = (seed){p, n, header ? header : n};
}

/* A small vocabulary like the tokenizer keys of a real model. */
static void *vocab_image(size_t *size)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    const char *toks[40];
    char buf[40][8];
    float scores[40];
    int32_t types[40];
    for (int i = 0; i < 40; i++) {
        snprintf(buf[i], sizeof buf[i], i < 3 ? "<%d>" : "\xe2\x96\x81%c", i < 3 ? i : 'a' + i % 26);
        toks[i] = buf[i];
        scores[i] = -(float)i;
        types[i] = i < 3 ? 3 : 1;
    }
    static const char *const merges[] = {"a b", "ab c", "\xe2\x96\x81 t"};
    mp_gguf_writer_set_str(w, "general.architecture", "qwen3moe");
    mp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", 40, toks, NULL);
    mp_gguf_writer_set_arr(w, "tokenizer.ggml.scores", MP_GGUF_FLOAT32, 40, scores);
    mp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MP_GGUF_INT32, 40, types);
    mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", 3, merges, NULL);
    mp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    mp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    mp_gguf_writer_set_u32(w, "qwen3moe.expert_count", 8);
    mp_gguf_writer_set_f32(w, "qwen3moe.rope.freq_base", 1e6f);
    static const int64_t exps[3] = {32, 16, 4}, emb[2] = {32, 40}, nrm[1] = {32};
    mp_gguf_writer_add_tensor(w, "token_embd.weight", MP_TYPE_Q8_0, 2, emb, NULL);
    mp_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", MP_TYPE_F32, 1, nrm, NULL);
    mp_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight", MP_TYPE_Q4_0, 3, exps, NULL);
    void *img = NULL;
    mp_gguf_writer_write_mem(w, sample_fill, NULL, &img, size, NULL);
    mp_gguf_writer_free(w);
    return img;
}

/* A hand-built v2 image (the writer only writes v3). */
static void *v2_image(size_t *size)
{
    gb b = {0};
    static const int64_t ne[2] = {8, 2};
    gb_header(&b, 2, 2, 2);
    gb_kv_str(&b, "general.architecture", "olmoe");
    gb_kv_u32(&b, "general.alignment", 16);
    gb_tinfo(&b, "a", 2, ne, MP_TYPE_F32, 0);
    gb_tinfo(&b, "b", 1, ne, MP_TYPE_F16, 64);
    gb_pad(&b, 16);
    for (int i = 0; i < 80; i++) gb_u8(&b, (uint8_t)i);
    *size = b.n;
    return b.p;
}

static void build_seeds(void)
{
    size_t n;
    void *p;
    p = sample_image(0, 0, 1, 0, &n);
    add_seed(p, n);
    p = sample_image(1, 0, 1, 0, &n);
    add_seed(p, n);
    p = sample_image(1, 0, 1, 64, &n);
    add_seed(p, n);
    p = sample_image(0, 1, 1, 0, &n);
    add_seed(p, n);
    p = sample_image(0, 0, 1, 1, &n);
    add_seed(p, n);
    p = vocab_image(&n);
    add_seed(p, n);
    p = v2_image(&n);
    add_seed(p, n);
    mp_gguf_writer *w = mp_gguf_writer_create(); /* metadata only */
    sample_metadata(w);
    mp_gguf_writer_write_mem(w, NULL, NULL, &p, &n, NULL);
    mp_gguf_writer_free(w);
    add_seed(p, n);
}

static int write_corpus(const char *dir)
{
    build_seeds();
    for (int i = 0; i < n_seeds; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/seed_%02d", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seeds[i].p, 1, seeds[i].n, f) != seeds[i].n) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(f);
        printf("%s: %zu bytes\n", path, seeds[i].n);
    }
    return 0;
}

/* Calls fn on every regular file in dir (sorted order is not needed). */
static int for_each_file(const char *dir, void (*fn)(const char *path, void *p, size_t n))
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = 0;
        void *p = mp_test_read_file(path, &n);
        if (!p) continue;
        fn(path, p, n);
        count++;
    }
    closedir(d);
    return count;
}

static void corpus_file(const char *path, void *p, size_t n)
{
    (void)path;
    add_seed(p, n);
}

static void regress_file(const char *path, void *p, size_t n)
{
    CHECKF(gguf_check_image(p, n) == 0, "regression case %s", path);
    free(p);
}

/* Values that break counts, lengths, type ids and offsets. */
static uint64_t interesting(size_t n, size_t pos)
{
    static const uint64_t v[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 31, 32, 33, 63, 64, 255, 256,
                                 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000u, 0xffffffffu, 1ull << 32,
                                 (1ull << 32) + 1, 1ull << 40, 1ull << 62, 1ull << 63, UINT64_MAX - 31,
                                 UINT64_MAX - 1, UINT64_MAX};
    switch (rnd_below(4)) {
    case 0: return n - pos + rnd_below(3) - 1; /* about the bytes left */
    case 1: return n + rnd_below(64);
    default: return v[rnd_below(sizeof v / sizeof v[0])];
    }
}

/* Mutates a copy of s into a fresh exactly-sized buffer. */
static uint8_t *mutate(const seed *s, size_t *out_n)
{
    size_t cap = s->n + 256;
    uint8_t *b = malloc(cap);
    memcpy(b, s->p, s->n);
    size_t n = s->n;
    int rounds = 1 + (int)rnd_below(3);
    for (int r = 0; r < rounds; r++) {
        /* Mostly inside the header, where the parser looks. */
        size_t span = (rnd_below(8) && s->header < n) ? s->header : n;
        size_t pos = (size_t)rnd_below(span ? span : 1);
        switch (rnd_below(9)) {
        case 0: /* bit flips */
            for (int k = 1 + (int)rnd_below(4); k-- && n;) b[rnd_below(n)] ^= (uint8_t)(1u << rnd_below(8));
            break;
        case 1: /* random byte */
            if (pos < n) b[pos] = (uint8_t)rnd();
            break;
        case 2: /* truncation */
            n = (size_t)rnd_below(n + 1);
            break;
        case 3:
        case 4: { /* u64 count/length/offset inflation (unaligned positions too) */
            uint64_t v = interesting(n, pos);
            if (pos + 8 <= n) memcpy(b + pos, &v, 8);
            break;
        }
        case 5: { /* u32 type id / n_dims / version */
            uint32_t v = rnd_below(2) ? (uint32_t)rnd_below(48) : (uint32_t)interesting(n, pos);
            if (pos + 4 <= n) memcpy(b + pos, &v, 4);
            break;
        }
        case 6: { /* delete a range */
            size_t len = (size_t)rnd_below(32) + 1;
            if (pos + len <= n) {
                memmove(b + pos, b + pos + len, n - pos - len);
                n -= len;
            }
            break;
        }
        case 7: { /* insert bytes */
            size_t len = (size_t)rnd_below(16) + 1;
            if (n + len <= cap && pos <= n) {
                memmove(b + pos + len, b + pos, n - pos);
                for (size_t i = 0; i < len; i++) b[pos + i] = (uint8_t)(rnd_below(2) ? 0 : rnd());
                n += len;
            }
            break;
        }
        default: { /* splice a piece of another seed */
            const seed *o = &seeds[rnd_below((uint64_t)n_seeds)];
            size_t from = (size_t)rnd_below(o->header ? o->header : 1), len = (size_t)rnd_below(64) + 1;
            if (from + len <= o->n && pos + len <= n) memcpy(b + pos, o->p + from, len);
            break;
        }
        }
    }
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, b, n);
    free(b);
    *out_n = n;
    return exact;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--write-corpus") == 0) return write_corpus(argv[2]);
    uint64_t iters = 20000, seed0 = 1;
    if (getenv("MP_FUZZ_ITERS")) iters = strtoull(getenv("MP_FUZZ_ITERS"), NULL, 10);
    if (getenv("MP_FUZZ_SEED")) seed0 = strtoull(getenv("MP_FUZZ_SEED"), NULL, 10);
    if (argc > 1) iters = strtoull(argv[1], NULL, 10);
    if (argc > 2) seed0 = strtoull(argv[2], NULL, 10);
    rng_state = seed0 * 0x9e3779b97f4a7c15ull + 1;

    build_seeds();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus_gguf", mp_test_src_dir());
    int n_corpus = for_each_file(dir, corpus_file);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress_gguf", mp_test_src_dir());
    int n_regress = for_each_file(dir, regress_file);
    for (int i = 0; i < n_seeds; i++) CHECKF(gguf_check_image(seeds[i].p, seeds[i].n) == 0, "seed %d", i);

    uint64_t accepted = 0, failures = 0;
    int status_seen[16] = {0};
    for (uint64_t it = 0; it < iters; it++) {
        const seed *s = &seeds[rnd_below((uint64_t)n_seeds)];
        size_t n = 0;
        uint8_t *m = mutate(s, &n);
        mp_gguf *g = NULL;
        int rc = mp_gguf_open_mem(&g, m, n, "fuzz.gguf", NULL);
        mp_gguf_free(g);
        if (rc == MP_OK) accepted++;
        if (rc <= 0 && rc > -16) status_seen[-rc]++;
        if (gguf_check_image(m, n) != 0) {
            if (failures++ < 5) {
                char path[64];
                snprintf(path, sizeof path, "gguf_fuzz_fail_%" PRIu64 ".gguf", it);
                FILE *f = fopen(path, "wb");
                if (f) {
                    fwrite(m, 1, n, f);
                    fclose(f);
                }
                fprintf(stderr, "iteration %" PRIu64 ": invariant broken, input saved to %s\n", it, path);
            }
        }
        free(m);
    }
    printf("%" PRIu64 " mutants of %d seeds (%d from the corpus), %d regression cases: %" PRIu64
           " accepted; rejected: corrupt %d, unsupported %d, nomem %d\n",
           iters, n_seeds, n_corpus, n_regress, accepted, status_seen[-MP_E_CORRUPT], status_seen[-MP_E_UNSUPPORTED],
           status_seen[-MP_E_NOMEM]);
    CHECKF(failures == 0, "%" PRIu64 " mutants broke an invariant", failures);
    CHECK(status_seen[-MP_E_NOMEM] == 0); /* hostile counts never reach malloc */
    for (int i = 0; i < n_seeds; i++) free(seeds[i].p);
    MP_TEST_DONE();
}

/* The packed expert file: a pack gives bit-identical logits to its GGUF
 * (three architectures, raw and lz4 blocks); through the expert cache (real
 * io, the pack's verify hook) every expert comes out as its decoded block,
 * 64-byte aligned, and a corrupted expert block, found by a demand or by a
 * prefetch, fails with MP_E_CHECKSUM naming layer, expert and offset (an lz4
 * block that does not decode: MP_E_CORRUPT), as does a whole run; truncated and
 * corrupted packs are rejected at open with a clear line; a seeded mutation
 * fuzz of mp_pack_open_mem (hashes fixed up after mutating, so the
 * structural checks behind them are reached) neither crashes nor leaks
 * (run the ASan build for the latter).
 *
 * Needs mp-gen in $MP_BUILD (exit 77 without it). */
#include "helpers/pack_fixture.h"
#include "helpers/test_util.h"
#include "mp_test.h"

#include "cache/cache.h"
#include "io/io.h"
#include "pack/pack.h"
#include "pack/pack_cache.h"
#include "runtime/model_open.h"
#include "runtime/pack_write.h"
#include "runtime/session.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static char dir[1024];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static int gen(const char *name, const char *opts)
{
    char cmd[2048], out[1100];
    path_of(out, sizeof out, name);
    snprintf(cmd, sizeof cmd, "'%s/mp-gen' %s --seed 7 -q -o '%s'", mp_test_build_dir(), opts, out);
    return system(cmd);
}

static int write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Logits of every prompt position, then of 3 greedy decode steps. */
static float *run_logits(const char *path, int *n_out, int *rc_out, mp_err *err)
{
    static const int32_t ids[] = {1, 17, 42, 99, 7, 250, 3, 64, 128, 5, 77, 200};
    const int n = (int)(sizeof ids / sizeof ids[0]);
    mp_session_params sp = {.model_path = path, .n_ctx = 64, .n_batch = 8, .n_threads = 2};
    mp_session *s = NULL;
    float *out = NULL;
    *rc_out = mp_session_open(&s, &sp, err);
    if (*rc_out) return NULL;
    const int V = (int)s->model->hp.n_vocab;
    out = calloc((size_t)V * (n + 3), sizeof *out);
    if (!out) goto done;
    if ((*rc_out = mp_ctx_eval(s->ctx, ids, n, out, true, err))) goto fail;
    for (int g = 0; g < 3; g++) {
        const float *last = out + (size_t)(n - 1 + g) * V;
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (last[i] > last[best]) best = i;
        if ((*rc_out = mp_ctx_eval(s->ctx, &best, 1, out + (size_t)(n + g) * V, false, err))) goto fail;
    }
    *n_out = V * (n + 3);
    goto done;
fail:
    free(out);
    out = NULL;
done:
    mp_session_free(s);
    return out;
}

static void check_same_logits(const char *gguf, const char *pack)
{
    mp_err e1 = {0}, e2 = {0};
    int n1 = 0, n2 = 0, rc1, rc2;
    float *a = run_logits(gguf, &n1, &rc1, &e1);
    float *b = run_logits(pack, &n2, &rc2, &e2);
    CHECKF(a && rc1 == 0, "%s: %s", gguf, e1.msg);
    CHECKF(b && rc2 == 0, "%s: %s", pack, e2.msg);
    if (a && b) {
        CHECK(n1 == n2);
        CHECKF(n1 == n2 && memcmp(a, b, sizeof *a * (size_t)n1) == 0, "%s: logits differ from %s", pack, gguf);
    }
    free(a);
    free(b);
}

static int pack_file(const char *src, const char *dst, bool no_compress, mp_pack_write_stats *st)
{
    mp_err err = {0};
    mp_pack_write_opts o = {.no_compress = no_compress, .n_threads = 2};
    int rc = mp_pack_write(src, dst, &o, st, &err);
    CHECKF(rc == MP_OK, "pack %s: %s", src, err.msg);
    return rc;
}

/* Opens path expecting failure with `status`, and a message holding want
 * (NULL: any). */
static void expect_open_fails(const char *path, int status, const char *want, const char *what)
{
    mp_pack *p = NULL;
    mp_err err = {0};
    int rc = mp_pack_open(&p, path, &err);
    CHECKF(rc == status, "%s: status %s, expected %s (%s)", what, mp_status_name(rc), mp_status_name(status), err.msg);
    CHECKF(p == NULL, "%s", what);
    CHECKF(!want || strstr(err.msg, want), "%s: message '%s' lacks '%s'", what, err.msg, want);
    CHECKF(rc == 0 || strstr(err.msg, path), "%s: message '%s' does not name the file", what, err.msg);
    mp_pack_close(p);
    /* and the model loader refuses it too */
    mp_model *m = NULL;
    mp_pack *mp = NULL;
    mp_err e2 = {0};
    CHECKF(mp_model_open(path, false, &m, &mp, &e2) != MP_OK, "%s: the model loaded", what);
    mp_model_close(m, mp);
}

static void fix_hashes(uint8_t *img, size_t n);

/* The expert cache over a pack, opened by hand as the session does: the
 * pack's block locations, the real io (io_uring where it works, O_DIRECT)
 * and the pack's verify hook. */
static mp_cache *pack_cache_open(const mp_pack *p, const char *path, uint32_t n_slots, mp_err *e)
{
    mp_expert_loc *locs = NULL;
    if (mp_pack_expert_locs(p, &locs, e)) return NULL;
    const mp_pack_header *h = mp_pack_get_header(p);
    mp_io *io = NULL;
    mp_io_opts o = {.depth = 8};
    char note[512];
    mp_cache *c = NULL;
    if (mp_io_open(MP_IO_AUTO, path, &o, &io, note, sizeof note, e) == MP_OK) {
        mp_cache_config cc = {.n_layers = h->n_layer, .n_experts = h->n_expert, .locs = locs, .n_slots = n_slots,
                              .io = io, .verify = mp_pack_verify_block, .verify_ctx = (void *)p};
        if (mp_cache_create(&cc, &c, note, sizeof note, e)) {
            mp_io_free(io);
            c = NULL;
        } else if (mp_io_align(mp_cache_io(c)) == MP_PACK_ALIGNMENT) {
            /* the planner sizes slots the same way: room for every decode */
            CHECK(mp_cache_slot_size(c) == mp_cache_slot_bytes(locs, (uint64_t)h->n_layer * h->n_expert, 4096));
        }
        for (uint32_t l = 0; c && l < h->n_layer; l++)
            for (uint32_t x = 0; x < h->n_expert; x++) {
                const mp_pack_block *b = mp_pack_block_get(p, l, x);
                if (b) CHECK(mp_cache_slot_size(c) >= mp_pack_block_in_place_bytes(b));
            }
    }
    free(locs);
    return c;
}

/* Acquires (layer, expert) and checks that gate/up/down are the block's
 * decoded matrices (from the pristine image img), 64-byte aligned. */
static void expect_expert(mp_cache *c, const mp_pack *p, const uint8_t *img, size_t n, uint32_t layer, uint32_t expert)
{
    mp_expert_ptrs w;
    mp_err e = {0};
    int rc = mp_cache_acquire(c, layer, expert, &w, &e);
    CHECKF(rc == MP_OK, "acquire %u/%u: %s", layer, expert, e.msg);
    if (rc) return;
    mp_pack *q = NULL;
    CHECK(mp_pack_open_mem(&q, img, n, "img", NULL) == MP_OK);
    const mp_pack_block *b = q ? mp_pack_block_get(q, layer, expert) : NULL;
    const mp_pack_layer_desc *L = mp_pack_layer(p, layer);
    uint8_t *raw = b ? malloc((size_t)b->raw_size) : NULL;
    if (raw && mp_pack_block_decode(q, b, img + b->offset, raw, (size_t)b->raw_size, NULL) == MP_OK) {
        const uint64_t off[3] = {L->gate_off, L->up_off, L->down_off};
        CHECK(w.n_parts == 3);
        for (int i = 0; i < 3 && w.n_parts == 3; i++) {
            CHECKF(w.len[i] > 0 && memcmp(w.part[i], raw + off[i], (size_t)w.len[i]) == 0,
                   "layer %u expert %u part %d: wrong bytes", layer, expert, i);
            CHECKF((uintptr_t)w.part[i] % MP_PACK_MATRIX_ALIGN == 0, "part %d at %p", i, w.part[i]);
        }
    } else {
        CHECK(!"decoding the pristine block");
    }
    free(raw);
    mp_pack_close(q);
    mp_cache_release(c, layer, expert);
}

/* path is img with block (layer, expert) spoiled: a demand for it fails
 * with status and a message holding where and what; so does a demand after
 * a prefetch found it bad (the prefetch neither crashes nor leaves it in
 * the cache); every other expert, lz4 or raw, is served intact. */
static void test_cache_corrupt(const char *path, const uint8_t *img, size_t n, uint32_t layer, uint32_t expert,
                               int status, const char *where, const char *what)
{
    mp_pack *p = NULL;
    mp_err e = {0};
    CHECKF(mp_pack_open(&p, path, &e) == MP_OK, "%s", e.msg);
    if (!p) return;
    const mp_pack_header *h = mp_pack_get_header(p);
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        mp_cache *c = pack_cache_open(p, path, 4, &e);
        CHECKF(c != NULL, "cache over %s: %s", path, e.msg);
        if (!c) break;
        if (prefetch) {
            CHECK(mp_cache_request(c, layer, expert, MP_CACHE_PREFETCH, NULL) == MP_OK);
            mp_cache_stats st = {0};
            for (int t = 0; t < 10000 && st.errors == 0; t++) { /* up to 10 s */
                mp_cache_reap(c);
                mp_cache_get_stats(c, &st, NULL, false);
                if (!st.errors) usleep(1000);
            }
            CHECKF(st.errors == 1 && st.prefetches == 1, "the prefetch of a bad block: %" PRIu64 " errors",
                   st.errors);
            CHECK(!mp_cache_contains(c, layer, expert));
        }
        for (uint32_t x = 0; x < h->n_expert; x++)
            if (x != expert) expect_expert(c, p, img, n, layer, x);
        for (int again = 0; again < 2; again++) { /* every read is verified */
            mp_expert_ptrs w;
            mp_err_clear(&e);
            int rc = mp_cache_acquire(c, layer, expert, &w, &e);
            CHECKF(rc == status, "acquire of a bad block: %s (%s)", mp_status_name(rc), e.msg);
            CHECKF(strstr(e.msg, where) && strstr(e.msg, what) && strstr(e.msg, path) && !strchr(e.msg, '\n'),
                   "message '%s' lacks '%s' or '%s'", e.msg, where, what);
            CHECK(!mp_cache_contains(c, layer, expert));
        }
        /* the async door reports it too, naming the expert */
        mp_err_clear(&e);
        CHECK(mp_cache_request(c, layer, expert, MP_CACHE_DEMAND, &e) == MP_OK);
        mp_cache_ready r;
        int rc = mp_cache_wait_any(c, &r, &e);
        CHECKF(rc == status && r.layer == layer && r.expert == expert && strstr(e.msg, where), "wait_any: %d %s", rc,
               e.msg);
        CHECK(mp_cache_wait_any(c, &r, &e) == 0);
        mp_cache_free(c);
    }
    mp_pack_close(p);
}

static void test_corruption(const char *pack_path)
{
    size_t n = 0;
    uint8_t *img = (uint8_t *)mp_test_read_file(pack_path, &n);
    CHECK(img != NULL);
    if (!img) return;
    mp_pack *p = NULL;
    mp_err err = {0};
    CHECKF(mp_pack_open(&p, pack_path, &err) == MP_OK, "%s", err.msg);
    if (!p) {
        free(img);
        return;
    }
    const mp_pack_header h = *mp_pack_get_header(p);
    const mp_pack_block b12 = *mp_pack_block_get(p, 1, 2);
    const mp_pack_block b11 = *mp_pack_block_get(p, 1, 1);
    const mp_pack_block blast = *mp_pack_block_get(p, h.n_layer - 1, h.n_expert - 1);
    mp_pack_close(p);
    CHECK(h.file_size == n && n % MP_PACK_ALIGNMENT == 0);
    char bad[1200], want[1600];
    path_of(bad, sizeof bad, "bad.moepack");

    /* a flipped byte in block (1, 2): open succeeds; through the expert
     * cache (real io, the pack's verify hook) (1, 1) is served and (1, 2)
     * fails with MP_E_CHECKSUM naming layer, expert and offset, whether a
     * demand or a prefetch reads it first */
    /* the hook refuses a slot without room to decode in place (the
     * planner and the cache size slots so that this never happens) */
    {
        mp_pack *q = NULL;
        CHECK(mp_pack_open_mem(&q, img, n, "img", NULL) == MP_OK);
        for (uint32_t x = 0; q && x < 2; x++) {
            const mp_pack_block *b = mp_pack_block_get(q, 1, x);
            uint64_t cap = mp_pack_block_in_place_bytes(b) - (b->compression == MP_PACK_COMP_LZ4 ? 1 : 0);
            uint8_t *slot = malloc((size_t)cap);
            memcpy(slot, img + b->offset, (size_t)b->stored_size);
            mp_expert_ptrs w = {.part = {slot}, .len = {b->stored_size}, .n_parts = 1};
            mp_err e = {0};
            int rc = mp_pack_verify_block(q, 1, x, slot, cap, &w, &e);
            if (b->compression == MP_PACK_COMP_LZ4)
                CHECKF(rc == MP_E_RANGE && strstr(e.msg, "decode in place"), "%s (%s)", mp_status_name(rc), e.msg);
            else
                CHECKF(rc == MP_OK && w.n_parts == 3, "%s (%s)", mp_status_name(rc), e.msg);
            free(slot);
        }
        mp_pack_close(q);
    }

    uint8_t *c = malloc(n);
    memcpy(c, img, n);
    c[b12.offset + b12.stored_size / 2] ^= 0x10;
    CHECK(write_all(bad, c, n) == 0);
    snprintf(want, sizeof want, "layer 1 expert 2 at offset %" PRIu64, b12.offset);
    test_cache_corrupt(bad, img, n, 1, 2, MP_E_CHECKSUM, want, "checksum mismatch");

    /* an lz4 block whose bytes are garbage but whose index hash matches
     * them (a pack written wrong, not damaged on disk): MP_E_CORRUPT */
    if (b11.compression == MP_PACK_COMP_LZ4) {
        memcpy(c, img, n);
        memset(c + b11.offset + b11.stored_size / 4, 0xff, (size_t)(b11.stored_size / 2));
        uint64_t hh = XXH3_64bits(c + b11.offset, (size_t)b11.stored_size);
        uint64_t ent = h.index_offset + (uint64_t)h.n_layer * sizeof(mp_pack_layer_desc) +
                       ((uint64_t)1 * h.n_expert + 1) * sizeof(mp_pack_entry);
        memcpy(c + ent + offsetof(mp_pack_entry, hash), &hh, sizeof hh);
        fix_hashes(c, n);
        CHECK(write_all(bad, c, n) == 0);
        snprintf(want, sizeof want, "layer 1 expert 1 at offset %" PRIu64, b11.offset);
        test_cache_corrupt(bad, img, n, 1, 1, MP_E_CORRUPT, want, "does not decompress");
    }

    /* a flipped byte in every block of layer 0: the forward pass stops with
     * MP_E_CHECKSUM, never with logits */
    memcpy(c, img, n);
    for (uint32_t e = 0; e < h.n_expert; e++) {
        p = NULL;
        mp_pack_open_mem(&p, img, n, "img", NULL);
        const mp_pack_block *b = p ? mp_pack_block_get(p, 0, e) : NULL;
        if (b) c[b->offset + (e * 7919u) % b->stored_size] ^= 0x01;
        mp_pack_close(p);
    }
    CHECK(write_all(bad, c, n) == 0);
    {
        mp_err e = {0};
        int cnt = 0, rc = 0;
        float *l = run_logits(bad, &cnt, &rc, &e);
        CHECKF(l == NULL && rc == MP_E_CHECKSUM, "run over a corrupt pack: %s (%s)", mp_status_name(rc), e.msg);
        CHECKF(strstr(e.msg, "layer 0 expert "), "message '%s'", e.msg);
        free(l);
    }

    /* truncations: every cut is refused at open */
    const uint64_t cuts[] = {0,
                             7,
                             100,
                             MP_PACK_HEADER_SIZE - 1,
                             MP_PACK_HEADER_SIZE,
                             h.gguf_offset + h.gguf_size / 2,
                             h.index_offset,
                             h.index_offset + h.index_size / 2,
                             h.data_offset,
                             h.data_offset + 1,
                             b12.offset + b12.stored_size / 2,
                             blast.offset,
                             blast.offset + blast.stored_size - 1,
                             blast.offset + blast.stored_size,
                             n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(write_all(bad, img, (size_t)cuts[i]) == 0);
        char what[64];
        snprintf(what, sizeof what, "truncated at %" PRIu64, cuts[i]);
        const char *msg = NULL;
        if (cuts[i] < MP_PACK_HEADER_SIZE) msg = "too small for a pack header";
        else if (cuts[i] < h.data_offset) msg = "truncated";
        else if (cuts[i] < blast.offset + blast.stored_size) msg = "runs past the end of the file";
        else msg = "(truncated)";
        expect_open_fails(bad, MP_E_CORRUPT, msg, what);
    }
    /* the example message of the spec, exactly */
    CHECK(write_all(bad, img, (size_t)(b12.offset + 100)) == 0);
    snprintf(want, sizeof want,
             "%s: expert block layer 1 expert 2 at offset %" PRIu64 " (%" PRIu64
             " bytes) runs past the end of the file (%" PRIu64 " bytes)",
             bad, b12.offset, b12.stored_size, b12.offset + 100);
    expect_open_fails(bad, MP_E_CORRUPT, want, "cut inside block (1, 2)");
    /* trailing data */
    {
        uint8_t *big = calloc(1, n + 4096);
        memcpy(big, img, n);
        CHECK(write_all(bad, big, n + 4096) == 0);
        expect_open_fails(bad, MP_E_CORRUPT, "(trailing data)", "appended page");
        free(big);
    }

    /* corrupted header, embedded GGUF, index */
    struct {
        uint64_t off;
        int status;
        const char *msg;
    } flips[] = {
        {0, MP_E_CORRUPT, "bad magic"},
        {8, MP_E_CORRUPT, "header checksum"}, /* version: checked after the magic, before the hash */
        {offsetof(mp_pack_header, n_layer), MP_E_CORRUPT, "header checksum"},
        {offsetof(mp_pack_header, data_offset) + 1, MP_E_CORRUPT, "header checksum"},
        {offsetof(mp_pack_header, header_hash), MP_E_CORRUPT, "header checksum"},
        {2000, MP_E_CORRUPT, "header checksum"}, /* the zero tail is covered too */
        {h.gguf_offset + 3, MP_E_CORRUPT, "embedded GGUF checksum"},
        {h.gguf_offset + h.gguf_size - 1, MP_E_CORRUPT, "embedded GGUF checksum"},
        {h.index_offset + 5, MP_E_CORRUPT, "index checksum"},
        {h.index_offset + h.index_size - 1, MP_E_CORRUPT, "index checksum"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(c, img, n);
        c[flips[i].off] ^= 0x04;
        CHECK(write_all(bad, c, n) == 0);
        char what[64];
        snprintf(what, sizeof what, "flip at %" PRIu64, flips[i].off);
        if (i == 0) CHECK(!mp_is_pack(bad));
        if (i == 1) { /* a version change is "unsupported", not "corrupt" */
            expect_open_fails(bad, MP_E_UNSUPPORTED, "version", what);
            continue;
        }
        expect_open_fails(bad, flips[i].status, flips[i].msg, what);
    }
    free(c);
    free(img);
}

/* ---- fuzz ---------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Recomputes the three hashes where the (mutated) header still locates the
 * sections, so the checks behind the hashes get exercised. */
static void fix_hashes(uint8_t *img, size_t n)
{
    if (n < MP_PACK_HEADER_SIZE) return;
    mp_pack_header h;
    memcpy(&h, img, sizeof h);
    if (h.gguf_offset <= n && h.gguf_size <= n - h.gguf_offset)
        h.gguf_hash = XXH3_64bits(img + h.gguf_offset, (size_t)h.gguf_size);
    if (h.index_offset <= n && h.index_size <= n - h.index_offset)
        h.index_hash = XXH3_64bits(img + h.index_offset, (size_t)h.index_size);
    memcpy(img, &h, sizeof h);
    h.header_hash = mp_pack_header_hash(img);
    memcpy(img, &h, sizeof h);
}

static const uint64_t interesting[] = {0, 1, 2, 3, 64, 4095, 4096, 4097, 8192, 0x7fffffff, 0x80000000,
                                       0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, 0xffffffffffffffffull};

static void fuzz(const char *pack_path, int iters)
{
    size_t n = 0;
    uint8_t *img = (uint8_t *)mp_test_read_file(pack_path, &n);
    CHECK(img != NULL);
    if (!img) return;
    mp_pack *p = NULL;
    CHECK(mp_pack_open_mem(&p, img, n, "fuzz", NULL) == MP_OK);
    const uint64_t meta_end = p ? mp_pack_get_header(p)->data_offset : n;
    const uint64_t max_raw = p ? mp_pack_max_raw_size(p) : 0;
    mp_pack_close(p);
    uint8_t *c = malloc(n);
    uint8_t *dst = malloc(max_raw + 1);
    int opened = 0, bad_blocks = 0;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < iters; it++) {
        memcpy(c, img, n);
        size_t len = n;
        int kind = (int)(rnd() % 4);
        int count = 1 + (int)(rnd() % 4);
        for (int k = 0; k < count; k++) {
            /* most mutations land in the header and index, where the
             * structure is */
            uint64_t span = rnd() % 3 ? (rnd() % 2 ? MP_PACK_HEADER_SIZE : meta_end) : n;
            uint64_t at = rnd() % span;
            if (kind == 0) {
                c[at] ^= (uint8_t)(1u << (rnd() % 8));
            } else if (kind == 1 || kind == 2) {
                /* an aligned 4- or 8-byte field set to an interesting value */
                uint64_t v = interesting[rnd() % (sizeof interesting / sizeof interesting[0])];
                if (rnd() % 3 == 0) v += (uint64_t)n; /* near the end of the file */
                size_t w = kind == 1 ? 4 : 8;
                at &= ~(uint64_t)(w - 1);
                if (at + w <= n) memcpy(c + at, &v, w);
            } else {
                len = (size_t)(rnd() % (n + 1));
            }
        }
        if (rnd() % 4 != 0) fix_hashes(c, len);
        mp_err err = {0};
        p = NULL;
        int rc = mp_pack_open_mem(&p, c, len, "fuzz", &err);
        if (rc == MP_OK) {
            opened++;
            const mp_pack_header *h = mp_pack_get_header(p);
            CHECK(h->file_size == len);
            /* every block is inside the image; verify and decode it */
            for (uint32_t l = 0; l < h->n_layer; l++)
                for (uint32_t e = 0; e < h->n_expert; e++) {
                    const mp_pack_block *b = mp_pack_block_get(p, l, e);
                    if (!b) continue;
                    CHECK(b->offset + b->stored_size <= len);
                    mp_err e2 = {0};
                    if (mp_pack_block_verify(p, b, c + b->offset, &e2) != MP_OK) {
                        bad_blocks++;
                        continue;
                    }
                    CHECK(b->raw_size <= mp_pack_max_raw_size(p));
                    if (b->raw_size <= max_raw) (void)mp_pack_block_decode(p, b, c + b->offset, dst, max_raw, &e2);
                }
            size_t ni = 0;
            const mp_gguf_tensor *infos = mp_pack_expert_infos(p, &ni);
            for (size_t i = 0; i < ni; i++) CHECK(infos[i].name && infos[i].size > 0);
        } else {
            CHECKF(err.status == rc && err.msg[0] && !strchr(err.msg, '\n'), "iteration %d: status %d, message '%s'", it,
                   rc, err.msg);
        }
        mp_pack_close(p);
    }
    printf("fuzz: %d mutated images, %d opened, %d blocks failed their checksum\n", iters, opened, bad_blocks);
    free(dst);
    free(c);
    free(img);
}

int main(void)
{
    char gen_path[1100];
    snprintf(gen_path, sizeof gen_path, "%s/mp-gen", mp_test_build_dir());
    if (access(gen_path, X_OK) != 0) MP_TEST_SKIP("%s not built", gen_path);
    snprintf(dir, sizeof dir, "%s/pack-test", mp_test_build_dir());
    mkdir(dir, 0755);

    static const struct {
        const char *name, *opts;
    } models[] = {
        {"llama-moe", "--arch llama-moe --type q8_0 --n-embd 64 --n-ff 64 --n-layer 2 --n-expert 4"},
        {"qwen3moe", "--arch qwen3moe --type q4_K --n-embd 256 --n-ff 256 --n-ff-exp 256 --n-head 4 --n-expert 6 "
                     "--n-expert-used 2"},
        {"olmoe", "--arch olmoe --type f16 --n-embd 64 --n-ff 64 --n-head 4 --n-head-kv 4 --n-expert 8 "
                  "--expert-type q8_0"},
    };
    char src[1200], dst[1200];
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.gguf", models[i].name);
        CHECKF(gen(name, models[i].opts) == 0, "mp-gen %s", models[i].opts);
        path_of(src, sizeof src, name);
        snprintf(name, sizeof name, "%s.moepack", models[i].name);
        path_of(dst, sizeof dst, name);
        mp_pack_write_stats st = {0};
        if (pack_file(src, dst, false, &st)) continue;
        CHECK(mp_is_pack(dst) && !mp_is_pack(src));
        CHECK(st.n_blocks > 0 && st.raw_bytes >= st.stored_bytes && st.file_bytes % MP_PACK_ALIGNMENT == 0);
        check_same_logits(src, dst);
    }

    /* lz4: a model whose odd experts compress; mixed raw and lz4 blocks */
    path_of(src, sizeof src, "llama-moe.gguf");
    char comp[1200];
    path_of(comp, sizeof comp, "compressible.gguf");
    CHECK(mp_test_make_compressible(src, comp) == 0);
    path_of(dst, sizeof dst, "compressible.moepack");
    mp_pack_write_stats st = {0};
    if (!pack_file(comp, dst, false, &st)) {
        printf("compressible: %" PRIu64 " of %" PRIu64 " blocks lz4, %" PRIu64 " -> %" PRIu64 " bytes\n", st.n_compressed,
               st.n_blocks, st.raw_bytes, st.stored_bytes);
        CHECK(st.n_compressed == st.n_blocks / 2);
        CHECK(st.stored_bytes < st.raw_bytes);
        check_same_logits(comp, dst);
        test_corruption(dst);
        fuzz(dst, 3000);
    }
    char raw[1200];
    path_of(raw, sizeof raw, "compressible-raw.moepack");
    if (!pack_file(comp, raw, true, &st)) {
        CHECK(st.n_compressed == 0 && st.stored_bytes == st.raw_bytes);
        check_same_logits(comp, raw);
        test_corruption(raw);
    }

    /* refusals: a dense model, a pack as input, output == input */
    {
        mp_err err = {0};
        CHECK(gen("dense.gguf", "--arch llama --type f32") == 0);
        path_of(src, sizeof src, "dense.gguf");
        path_of(dst, sizeof dst, "dense.moepack");
        CHECK(mp_pack_write(src, dst, NULL, NULL, &err) == MP_E_INVAL && strstr(err.msg, "dense"));
        CHECK(access(dst, F_OK) != 0);
        mp_err_clear(&err);
        path_of(src, sizeof src, "compressible.moepack");
        CHECK(mp_pack_write(src, dst, NULL, NULL, &err) == MP_E_INVAL && strstr(err.msg, "already a pack"));
        mp_err_clear(&err);
        path_of(src, sizeof src, "llama-moe.gguf");
        CHECK(mp_pack_write(src, src, NULL, NULL, &err) == MP_E_INVAL);
        mp_err_clear(&err);
        path_of(dst, sizeof dst, "no-such-dir/x.moepack");
        CHECK(mp_pack_write(src, dst, NULL, NULL, &err) == MP_E_IO);
    }
    MP_TEST_DONE();
}

/* The writer against llama.cpp itself: the peer's tiny models (written by
 * gguf-py-compatible code and loaded by llama.cpp) must come back byte for
 * byte through reader + writer, and a copy rewritten with a different
 * alignment (256) must give llama.cpp bit-identical logits. Skips (77) when
 * the peer build is absent; the logits part is skipped without llama_logits.
 * The peer is the first of $MP_PEER, $MP_BUILD/peer/llamacpp, $MP_SRC/build/peer/llamacpp
 * (where tools/test.sh builds it) and $MP_SRC/../shared/peers/llamacpp that has the models;
 * models and binaries are looked for in <peer>/build and <peer>. */
#include "gguf/gguf.h"
#include "mp_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const mp_gguf *src_g;

static int copy_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)ctx;
    (void)err;
    memcpy(buf, mp_gguf_tensor_data(src_g, mp_gguf_tensor_at(src_g, idx)), size);
    return MP_OK;
}

static mp_gguf_writer *copy_writer(const mp_gguf *g, uint32_t alignment)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    int rc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++)
        rc |= mp_gguf_writer_set_value(w, mp_gguf_kv_at(g, i)->key.ptr, &mp_gguf_kv_at(g, i)->value);
    if (alignment) rc |= mp_gguf_writer_set_u32(w, "general.alignment", alignment);
    for (uint64_t i = 0; i < mp_gguf_n_tensors(g); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        rc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL); /* data via fill */
    }
    CHECK(rc == 0);
    return w;
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

int main(void)
{
    char cand[3][256];
    snprintf(cand[0], sizeof cand[0], "%.200s/peer/llamacpp", mp_test_build_dir());
    snprintf(cand[1], sizeof cand[1], "%.200s/build/peer/llamacpp", mp_test_src_dir());
    snprintf(cand[2], sizeof cand[2], "%.200s/../shared/peers/llamacpp", mp_test_src_dir());
    const char *peers[] = {getenv("MP_PEER"), cand[0], cand[1], cand[2]};
    static const char *const models[] = {"tiny-llama.gguf", "tiny-llama-moe.gguf", "tiny-qwen3moe.gguf",
                                         "tiny-olmoe.gguf"};
    char dir[512] = "", path[600], logits[600], cmd[8192];
    for (size_t i = 0; i < sizeof peers / sizeof peers[0] && !dir[0]; i++) {
        if (!peers[i]) continue;
        static const char *const sub[] = {"/build", ""};
        for (size_t j = 0; j < 2 && !dir[0]; j++) {
            snprintf(path, sizeof path, "%.500s%s/%s", peers[i], sub[j], models[0]);
            if (access(path, R_OK) == 0) snprintf(dir, sizeof dir, "%.500s%s", peers[i], sub[j]);
        }
    }
    if (!dir[0]) MP_TEST_SKIP("no peer models (set MP_PEER, or run tools/test.sh, which builds the peer)");
    snprintf(logits, sizeof logits, "%s/llama_logits", dir);
    int have_logits = access(logits, X_OK) == 0;
    int found = 0;

    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        snprintf(path, sizeof path, "%s/%s", dir, models[m]);
        if (access(path, R_OK) != 0) continue;
        found++;
        mp_gguf *g = NULL;
        mp_err err = {0};
        CHECKF(mp_gguf_open(&g, path, NULL, &err) == MP_OK, "%s", err.msg);
        if (!g) continue;
        src_g = g;

        /* Byte for byte. */
        mp_gguf_writer *w = copy_writer(g, 0);
        void *img = NULL;
        size_t size = 0;
        CHECKF(mp_gguf_writer_write_mem(w, copy_fill, NULL, &img, &size, &err) == MP_OK, "%s", err.msg);
        FILE *f = fopen(path, "rb");
        uint8_t *orig = malloc(size + 1);
        size_t got = f && orig ? fread(orig, 1, size + 1, f) : 0;
        CHECKF(got == size && img && memcmp(orig, img, size) == 0, "%s: rewrite is not byte-identical", models[m]);
        if (f) fclose(f);
        free(orig);
        free(img);
        mp_gguf_writer_free(w);

        /* Realigned to 256: llama.cpp must load it and compute the same logits. */
        if (have_logits) {
            char out[700], d1[720], d2[720];
            snprintf(out, sizeof out, "%s/test_gguf_rewrite_%ld.gguf", mp_test_build_dir(), (long)getpid());
            snprintf(d1, sizeof d1, "%s.a.bin", out);
            snprintf(d2, sizeof d2, "%s.b.bin", out);
            w = copy_writer(g, 256);
            CHECKF(mp_gguf_writer_write(w, out, copy_fill, NULL, &err) == MP_OK, "%s", err.msg);
            mp_gguf_writer_free(w);
            mp_gguf *g2 = NULL;
            CHECK(mp_gguf_open(&g2, out, NULL, &err) == MP_OK && mp_gguf_alignment(g2) == 256 &&
                  mp_gguf_data_offset(g2) % 256 == 0);
            mp_gguf_free(g2);
            snprintf(cmd, sizeof cmd, "'%s' -m '%s' -t 1 --top 1 --dump '%s' >/dev/null 2>&1 && "
                     "'%s' -m '%s' -t 1 --top 1 --dump '%s' >/dev/null 2>&1",
                     logits, path, d1, logits, out, d2);
            int rc = system(cmd);
            CHECKF(rc == 0, "%s: llama_logits failed (%d): %s", models[m], rc, cmd);
            CHECKF(rc != 0 || files_equal(d1, d2), "%s: logits differ after realigning", models[m]);
            if (rc == 0) printf("%s: rewrite identical; realigned copy gives identical logits\n", models[m]);
            unlink(out);
            unlink(d1);
            unlink(d2);
        }
        mp_gguf_free(g);
    }
    CHECK(found > 0);
    if (!have_logits) printf("llama_logits not found: checked byte-identical rewrites only\n");
    MP_TEST_DONE();
}

#include "resident.h"

#include "kernels/kernels.h"
#include "moepager/status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RES_ALIGN 64

int mp_model_for_each_resident(mp_model *m, int (*fn)(void *ctx, mp_tensor *t), void *ctx)
{
    int rc;
    /* views (a fused attn_qkv's q/k/v) come with their tensor */
#define VISIT(t)                                                    \
    do {                                                            \
        if ((t)->info && !(t)->view && (rc = fn(ctx, (t)))) return rc; \
    } while (0)
    VISIT(&m->tok_embd);
    VISIT(&m->output_norm);
    if (!m->tied_output) VISIT(&m->output);
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        mp_layer *l = &m->layers[il];
        VISIT(&l->attn_norm);
        VISIT(&l->wq);
        VISIT(&l->wk);
        VISIT(&l->wv);
        VISIT(&l->wo);
        VISIT(&l->q_norm);
        VISIT(&l->k_norm);
        VISIT(&l->ffn_norm);
        VISIT(&l->ffn_gate);
        VISIT(&l->ffn_up);
        VISIT(&l->ffn_down);
        VISIT(&l->ffn_gate_inp);
        /* glm4moe's attention biases; deepseek2: MLA attention; both: selection bias, shared experts */
        VISIT(&l->bq);
        VISIT(&l->bk);
        VISIT(&l->bv);
        VISIT(&l->wq_a);
        VISIT(&l->q_a_norm);
        VISIT(&l->wq_b);
        VISIT(&l->wkv_a_mqa);
        VISIT(&l->kv_a_norm);
        VISIT(&l->wk_b);
        VISIT(&l->wv_b);
        VISIT(&l->wkv_b);
        VISIT(&l->exp_probs_b);
        VISIT(&l->ffn_gate_shexp);
        VISIT(&l->ffn_up_shexp);
        VISIT(&l->ffn_down_shexp);
        VISIT(&l->ffn_gate_inp_shexp);
        VISIT(&l->ssm_qkv); /* Gated DeltaNet layers: all resident */
        VISIT(&l->ssm_z);
        VISIT(&l->ssm_in);
        VISIT(&l->ssm_ba);
        VISIT(&l->ssm_beta);
        VISIT(&l->ssm_alpha);
        VISIT(&l->ssm_conv1d);
        VISIT(&l->ssm_dt);
        VISIT(&l->ssm_a);
        VISIT(&l->ssm_norm);
        VISIT(&l->ssm_out);
        /* gpt-oss: output bias, sinks, router and per-expert biases (small, resident) */
        VISIT(&l->bo);
        VISIT(&l->attn_sinks);
        VISIT(&l->ffn_gate_inp_b);
        VISIT(&l->wqkv);
        VISIT(&l->bqkv);
        VISIT(&l->ffn_gate_exps_b);
        VISIT(&l->ffn_up_exps_b);
        VISIT(&l->ffn_down_exps_b);
    }
#undef VISIT
    return 0;
}

static int add_size(void *ctx, mp_tensor *t)
{
    *(uint64_t *)ctx += (t->info->size + RES_ALIGN - 1) & ~(uint64_t)(RES_ALIGN - 1);
    return 0;
}

uint64_t mp_resident_bytes(const mp_model *m)
{
    uint64_t n = 0;
    mp_model_for_each_resident((mp_model *)m, add_size, &n);
    return n;
}

typedef struct load_ctx {
    int fd;
    const char *path;
    uint8_t *buf;
    uint64_t off;
    uint64_t base; /* the GGUF image's offset in the file (a pack's embedded GGUF) */
    mp_err *err;
} load_ctx;

static int load_one(void *arg, mp_tensor *t)
{
    load_ctx *lc = arg;
    uint8_t *dst = lc->buf + lc->off;
    uint64_t done = 0, size = t->info->size;
    while (done < size) {
        ssize_t r = pread(lc->fd, dst + done, size - done > (1u << 30) ? (1u << 30) : size - done,
                          (off_t)(lc->base + t->info->offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return mp_err_set(lc->err, MP_E_IO, "%s: tensor '%s': read of %" PRIu64 " bytes at offset %" PRIu64 " failed: %s",
                              lc->path, t->info->name, size - done, lc->base + t->info->offset + done,
                              r < 0 ? strerror(errno) : "unexpected end of file");
        done += (uint64_t)r;
    }
    t->data = dst;
    lc->off += (size + RES_ALIGN - 1) & ~(uint64_t)(RES_ALIGN - 1);
    return 0;
}

/* The resident matrices that reach the kernels only whole, through the
 * forward pass's matmul queue (not the embedding table, read by rows; not
 * routers or deepseek2's per-head wk_b / wv_b, sliced per head). */
static int repack_one(mp_tensor *t, bool all, mp_err *err, const char *path)
{
    /* only types whose one-token kernel gains too, since decode reads every resident
     * matrix each token (mp_repack_pays_decode); all (MP_REPACK=1): every type with kernels */
    if (!t->info || !t->data || t->ne[2] > 1 || t->ne[3] > 1 ||
        !(all ? mp_repack_supported(t->type) : mp_repack_pays_decode(t->type)))
        return MP_OK;
    const int rc = mp_repack_rows(t->type, (void *)t->data, t->ne[1], t->ne[0]);
    if (rc == MP_E_UNSUPPORTED) return MP_OK; /* a row that is not whole blocks: stays plain */
    if (rc) return mp_err_set(err, rc, "%s: tensor '%s': no memory to repack it", path, t->info->name);
    t->repacked = true;
    return MP_OK;
}

int mp_resident_repack(mp_model *m, mp_err *err)
{
    const char *env = getenv("MP_REPACK");
    if (env && !strcmp(env, "0")) return MP_OK;
    const bool all = env && !strcmp(env, "1");
    int rc = MP_OK;
    if (!m->tied_output && (rc = repack_one(&m->output, all, err, m->path))) return rc;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        mp_layer *l = &m->layers[il];
        mp_tensor *ts[] = {&l->wq,        &l->wk,          &l->wv,           &l->wo,
                           &l->ffn_gate,  &l->ffn_up,      &l->ffn_down,     &l->ffn_gate_shexp,
                           &l->ffn_up_shexp, &l->ffn_down_shexp, &l->wq_a,   &l->wq_b,
                           &l->wkv_a_mqa, &l->wkv_b};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            if ((rc = repack_one(ts[i], all, err, m->path))) return rc;
    }
    return MP_OK;
}

int mp_resident_load(mp_model *m, void **buf, mp_err *err)
{
    *buf = NULL;
    uint64_t bytes = mp_resident_bytes(m);
    void *b = NULL;
    /* 2 MiB aligned and marked for transparent huge pages: the matmuls
     * stream these weights every token, and 4 KiB pages cost TLB misses
     * (the cache slab measured 2x faster decode with huge pages) */
    const size_t huge = 2u << 20;
    const size_t alloc = bytes > huge ? (size_t)((bytes + huge - 1) & ~(uint64_t)(huge - 1)) : (size_t)(bytes ? bytes : RES_ALIGN);
    if (posix_memalign(&b, bytes > huge ? huge : RES_ALIGN, alloc))
        return mp_err_set(err, MP_E_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the resident weights", m->path, bytes);
    if (bytes > huge) (void)madvise(b, alloc, MADV_HUGEPAGE);
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(b);
        return mp_err_set(err, MP_E_IO, "%s: %s", m->path, strerror(errno));
    }
    load_ctx lc = {fd, m->path, b, 0, m->gguf_base, err};
    int rc = mp_model_for_each_resident(m, load_one, &lc);
    /* The bytes now live in our buffer; do not keep a second copy in the page cache. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (rc) {
        free(b);
        return rc;
    }
    if (m->tied_output) m->output.data = m->tok_embd.data;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) mp_layer_bind_qkv_views(&m->layers[il]);
    if ((rc = mp_resident_repack(m, err))) {
        free(b);
        return rc;
    }
    *buf = b;
    return MP_OK;
}

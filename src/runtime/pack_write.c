/* Pack writer: GGUF model -> .moepack (format in include/moepager/pack_format.h).
 *
 * Order of work: bind the source as a model (so only runnable models are
 * packed and expert tensors are found by the same rules the loader uses),
 * write the resident part as a GGUF to a temporary file and copy it in,
 * then build the expert blocks in batches (workers copy, compress and hash
 * in parallel; this thread writes them in index order, because a block's
 * offset depends on the stored sizes before it), then the index, then the
 * header, fsync, rename. */
#include "runtime/pack_write.h"

#include "pack/pack.h"

#include "common/threadpool.h"
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off, const char *path, mp_err *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            return mp_err_set(err, MP_E_IO, "%s: write of %zu bytes at offset %" PRIu64 " failed: %s", path, n - done,
                              off + done, strerror(errno));
        }
        done += (size_t)w;
    }
    return MP_OK;
}

/* Reads exactly n bytes at off of the source. */
static int pread_full(int fd, void *dst, size_t n, uint64_t off, const char *path, mp_err *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)dst + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return mp_err_set(err, MP_E_IO, "%s: read of %zu bytes at offset %" PRIu64 " failed: %s", path, n - done,
                              off + done, r < 0 ? strerror(errno) : "the file ended early");
        done += (size_t)r;
    }
    return MP_OK;
}

/* Copies the whole file src_fd (size bytes) to dst_fd at dst_off; *hash =
 * xxh3-64 of the bytes. */
static int copy_into(int src_fd, uint64_t size, int dst_fd, uint64_t dst_off, uint64_t *hash, const char *path,
                     mp_err *err)
{
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    XXH3_state_t *xs = XXH3_createState();
    if (!buf || !xs || XXH3_64bits_reset(xs) != XXH_OK) {
        free(buf);
        XXH3_freeState(xs);
        return mp_err_set(err, MP_E_NOMEM, "%s: out of memory", path);
    }
    int rc = MP_OK;
    for (uint64_t off = 0; off < size && !rc;) {
        size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t r = pread(src_fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = mp_err_set(err, MP_E_IO, "%s: reading the temporary GGUF at %" PRIu64 " failed: %s", path, off,
                            r < 0 ? strerror(errno) : "unexpected end of file");
            break;
        }
        XXH3_64bits_update(xs, buf, (size_t)r);
        rc = pwrite_full(dst_fd, buf, (size_t)r, dst_off + off, path, err);
        off += (uint64_t)r;
    }
    *hash = XXH3_64bits_digest(xs);
    XXH3_freeState(xs);
    free(buf);
    return rc;
}

typedef struct fill_ctx {
    int fd;
    const char *path;
    const mp_gguf_tensor *const *tensors;
} fill_ctx;

/* Writer callback: the bytes of resident tensor idx, read from the source. */
static int fill_resident(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    const fill_ctx *f = ctx;
    const mp_gguf_tensor *t = f->tensors[idx];
    int rc = pread_full(f->fd, buf, size, t->offset, f->path, err);
    return rc ? mp_err_set(err, rc, "(tensor '%s')", t->name) : MP_OK;
}

static bool is_expert_tensor(const mp_model *m, const mp_gguf_tensor *t)
{
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const mp_layer *l = &m->layers[il];
        if (t == l->ffn_gate_exps.info || t == l->ffn_up_exps.info || t == l->ffn_down_exps.info) return true;
    }
    return false;
}

static void desc_of(const mp_tensor *t, mp_pack_matrix_desc *d)
{
    d->type = t->type;
    d->n_dims = 3;
    for (int i = 0; i < 3; i++) d->ne[i] = t->ne[i];
}

/* One block in flight. */
typedef struct job {
    uint32_t layer, expert;
    uint8_t *raw;    /* raw block, layer raw_size bytes */
    uint8_t *comp;   /* lz4 output, LZ4_compressBound(max raw) bytes */
    const uint8_t *stored; /* raw or comp */
    uint64_t stored_size;
    uint32_t compression;
    uint64_t hash;
    int rc;          /* MP_OK or the read error in err */
    mp_err err;
} job;

typedef struct batch {
    const mp_model *m;
    int fd;          /* the source GGUF */
    const mp_pack_layer_desc *layers;
    job *jobs;
    int n_jobs;
    bool no_compress;
    int comp_cap;
} batch;

static void build_block(void *ctx, int ith, int nth)
{
    batch *b = ctx;
    for (int j = ith; j < b->n_jobs; j += nth) {
        job *J = &b->jobs[j];
        const mp_layer *l = &b->m->layers[J->layer];
        const mp_pack_layer_desc *L = &b->layers[J->layer];
        const mp_tensor *src[3] = {&l->ffn_gate_exps, &l->ffn_up_exps, &l->ffn_down_exps};
        const uint64_t off[3] = {L->gate_off, L->up_off, L->down_off};
        memset(J->raw, 0, (size_t)L->raw_size);
        mp_err_clear(&J->err);
        J->rc = MP_OK;
        for (int k = 0; k < 3 && !J->rc; k++)
            J->rc = pread_full(b->fd, J->raw + off[k], mp_tensor_expert_bytes(src[k]),
                               mp_tensor_expert_offset(src[k], J->expert), b->m->path, &J->err);
        if (J->rc) continue;
        J->stored = J->raw;
        J->stored_size = L->raw_size;
        J->compression = MP_PACK_COMP_NONE;
        if (!b->no_compress && L->raw_size <= LZ4_MAX_INPUT_SIZE) {
            int c = LZ4_compress_default((const char *)J->raw, (char *)J->comp, (int)L->raw_size, b->comp_cap);
            /* keep it only when it saves at least MP_PACK_MIN_SAVING_PCT */
            if (c > 0 && (uint64_t)c * 100 <= L->raw_size * (100 - MP_PACK_MIN_SAVING_PCT)) {
                J->stored = J->comp;
                J->stored_size = (uint64_t)c;
                J->compression = MP_PACK_COMP_LZ4;
            }
        }
        J->hash = XXH3_64bits(J->stored, (size_t)J->stored_size);
    }
}

int mp_pack_write(const char *src_path, const char *dst_path, const mp_pack_write_opts *opts,
                  mp_pack_write_stats *stats, mp_err *err)
{
    static const mp_pack_write_opts defaults = {0};
    if (!opts) opts = &defaults;
    mp_model *m = NULL;
    mp_gguf_writer *w = NULL;
    mp_pool *pool = NULL;
    mp_pack_layer_desc *layers = NULL;
    mp_pack_entry *entries = NULL;
    job *jobs = NULL;
    char *tmp = NULL, *gtmp = NULL;
    int fd = -1, gfd = -1;
    bool tmp_made = false, gtmp_made = false;
    mp_pack_write_stats st = {0};
    int n_jobs = 0;
    const mp_gguf_tensor **res = NULL; /* resident tensors, in writer order */
    size_t n_res = 0, cap_res = 0;
    int rc;

    struct stat s1, s2;
    if (stat(src_path, &s1) == 0 && stat(dst_path, &s2) == 0 && s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino)
        return mp_err_set(err, MP_E_INVAL, "%s: the output would overwrite the input", dst_path);
    /* not mapped: the source is read with pread, so packing a model larger
     * than RAM does not fill this process's RSS with its pages */
    if (mp_is_pack(src_path)) return mp_err_set(err, MP_E_INVAL, "%s: is already a pack", src_path);
    mp_model_load_opts lo = {.no_mmap = true};
    if ((rc = mp_model_load_ex(&m, src_path, &lo, err))) return rc;
    const mp_hparams *hp = &m->hp;
    if (hp->n_expert == 0) {
        rc = mp_err_set(err, MP_E_INVAL, "%s: a dense model has no routed experts to pack", src_path);
        goto done;
    }
    const uint32_t NL = hp->n_layer, NE = hp->n_expert;

    /* expert index: layer descriptors */
    layers = calloc(NL, sizeof *layers);
    entries = calloc((size_t)NL * NE, sizeof *entries);
    if (!layers || !entries) goto nomem;
    uint64_t max_raw = 0, total_raw = 0;
    for (uint32_t il = 0; il < NL; il++) {
        const mp_layer *l = &m->layers[il];
        if (!mp_layer_is_moe(l)) continue;
        mp_pack_layer_desc *L = &layers[il];
        L->has_experts = 1;
        desc_of(&l->ffn_gate_exps, &L->gate);
        desc_of(&l->ffn_up_exps, &L->up);
        desc_of(&l->ffn_down_exps, &L->down);
        L->gate_off = 0;
        /* a fused gate_up tensor is stored as its gate and up halves */
        L->up_off = align_up(L->gate_off + mp_tensor_expert_bytes(&l->ffn_gate_exps), MP_PACK_MATRIX_ALIGN);
        L->down_off = align_up(L->up_off + mp_tensor_expert_bytes(&l->ffn_up_exps), MP_PACK_MATRIX_ALIGN);
        L->raw_size = L->down_off + mp_tensor_expert_bytes(&l->ffn_down_exps);
        if (L->raw_size > max_raw) max_raw = L->raw_size;
        total_raw += L->raw_size * NE;
    }

    /* resident part as a GGUF: every key, every tensor but the routed experts */
    w = mp_gguf_writer_create();
    if (!w) goto nomem;
    for (uint64_t i = 0; i < mp_gguf_n_kv(m->gguf); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(m->gguf, i);
        if ((rc = mp_gguf_writer_set_value(w, kv->key.ptr, &kv->value))) {
            rc = mp_err_set(err, rc, "%s: cannot copy key '%s'", src_path, kv->key.ptr);
            goto done;
        }
    }
    for (uint64_t i = 0; i < mp_gguf_n_tensors(m->gguf); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(m->gguf, i);
        if (is_expert_tensor(m, t) || mp_model_tensor_skipped(m, t->name)) continue; /* + NextN/MTP blocks */
        if (n_res == cap_res) {
            size_t nc = cap_res ? cap_res * 2 : 64;
            const mp_gguf_tensor **nr = realloc(res, nc * sizeof *nr);
            if (!nr) goto nomem;
            res = nr;
            cap_res = nc;
        }
        res[n_res++] = t;
        if ((rc = mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL))) {
            rc = mp_err_set(err, rc, "%s: cannot copy tensor '%s'", src_path, t->name);
            goto done;
        }
    }
    size_t plen = strlen(dst_path) + 64;
    tmp = malloc(plen);
    gtmp = malloc(plen);
    if (!tmp || !gtmp) goto nomem;
    snprintf(tmp, plen, "%s.tmp.%ld", dst_path, (long)getpid());
    snprintf(gtmp, plen, "%s.resident.%ld.gguf", dst_path, (long)getpid());
    fill_ctx fc = {mp_gguf_fd(m->gguf), m->path, res};
    if ((rc = mp_gguf_writer_write(w, gtmp, fill_resident, &fc, err))) goto done;
    gtmp_made = true;
    mp_gguf_writer_free(w);
    w = NULL;
    gfd = open(gtmp, O_RDONLY | O_CLOEXEC);
    struct stat gst;
    if (gfd < 0 || fstat(gfd, &gst) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot reopen: %s", gtmp, strerror(errno));
        goto done;
    }

    mp_pack_header h = {0};
    memcpy(h.magic, MP_PACK_MAGIC, sizeof h.magic);
    h.version = MP_PACK_VERSION;
    h.alignment = MP_PACK_ALIGNMENT;
    h.n_layer = NL;
    h.n_expert = NE;
    h.gguf_offset = MP_PACK_HEADER_SIZE;
    h.gguf_size = (uint64_t)gst.st_size;
    h.index_offset = align_up(h.gguf_offset + h.gguf_size, MP_PACK_ALIGNMENT);
    h.index_size = (uint64_t)NL * sizeof(mp_pack_layer_desc) + (uint64_t)NL * NE * sizeof(mp_pack_entry);
    h.data_offset = align_up(h.index_offset + h.index_size, MP_PACK_ALIGNMENT);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    tmp_made = true;
    if ((rc = copy_into(gfd, h.gguf_size, fd, h.gguf_offset, &h.gguf_hash, tmp, err))) goto done;
    close(gfd);
    gfd = -1;
    unlink(gtmp);
    gtmp_made = false;
    st.resident_bytes = h.gguf_size;

    /* expert blocks, in batches */
    int nt = opts->n_threads > 0 ? opts->n_threads : 1;
    pool = mp_pool_create(nt);
    if (!pool) goto nomem;
    n_jobs = nt * 4;
    const int comp_cap = LZ4_compressBound(max_raw <= LZ4_MAX_INPUT_SIZE ? (int)max_raw : 0);
    jobs = calloc((size_t)n_jobs, sizeof *jobs);
    if (!jobs) goto nomem;
    for (int j = 0; j < n_jobs; j++) {
        jobs[j].raw = malloc((size_t)max_raw);
        jobs[j].comp = opts->no_compress ? NULL : malloc((size_t)comp_cap + 1);
        if (!jobs[j].raw || (!opts->no_compress && !jobs[j].comp)) goto nomem;
    }
    batch B = {m, mp_gguf_fd(m->gguf), layers, jobs, 0, opts->no_compress, comp_cap};
    uint64_t cur = h.data_offset, done_raw = 0;
    uint32_t il = 0, ie = 0;
    for (;;) {
        B.n_jobs = 0;
        while (il < NL && B.n_jobs < n_jobs) {
            if (layers[il].has_experts) {
                jobs[B.n_jobs].layer = il;
                jobs[B.n_jobs].expert = ie;
                B.n_jobs++;
            }
            if (!layers[il].has_experts || ++ie == NE) {
                ie = 0;
                il++;
            }
        }
        if (B.n_jobs == 0) break;
        mp_pool_run(pool, build_block, &B);
        for (int j = 0; j < B.n_jobs; j++) {
            const job *J = &jobs[j];
            if (J->rc) {
                rc = mp_err_set(err, J->rc, "%s (layer %u expert %u)", J->err.msg, J->layer, J->expert);
                goto done;
            }
            if ((rc = pwrite_full(fd, J->stored, (size_t)J->stored_size, cur, tmp, err))) goto done;
            entries[(size_t)J->layer * NE + J->expert] = (mp_pack_entry){
                .offset = cur,
                .stored_size = J->stored_size,
                .raw_size = layers[J->layer].raw_size,
                .hash = J->hash,
                .layer = J->layer,
                .expert = J->expert,
                .compression = J->compression,
            };
            cur = align_up(cur + J->stored_size, MP_PACK_ALIGNMENT);
            st.n_blocks++;
            st.n_compressed += J->compression == MP_PACK_COMP_LZ4;
            st.raw_bytes += layers[J->layer].raw_size;
            st.stored_bytes += J->stored_size;
            done_raw += layers[J->layer].raw_size;
        }
        if (opts->progress) opts->progress(opts->progress_ud, done_raw, total_raw);
    }
    h.file_size = cur;
    h.data_size = cur - h.data_offset;
    if (st.n_compressed) h.flags |= MP_PACK_FLAG_COMPRESSED;

    /* index */
    {
        size_t lsz = (size_t)NL * sizeof *layers, esz = (size_t)NL * NE * sizeof *entries;
        uint8_t *idx = malloc(lsz + esz);
        if (!idx) goto nomem;
        memcpy(idx, layers, lsz);
        memcpy(idx + lsz, entries, esz);
        h.index_hash = XXH3_64bits(idx, lsz + esz);
        rc = pwrite_full(fd, idx, lsz + esz, h.index_offset, tmp, err);
        free(idx);
        if (rc) goto done;
    }
    /* header last: a crash before this leaves a file without a valid header */
    {
        uint8_t hdr[MP_PACK_HEADER_SIZE] = {0};
        memcpy(hdr, &h, sizeof h);
        h.header_hash = mp_pack_header_hash(hdr);
        memcpy(hdr, &h, sizeof h);
        if ((rc = pwrite_full(fd, hdr, sizeof hdr, 0, tmp, err))) goto done;
    }
    /* zero padding after the last block (and in every gap: holes read as 0) */
    if (ftruncate(fd, (off_t)h.file_size) != 0 || fsync(fd) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot finish the file: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = mp_err_set(err, MP_E_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, dst_path) != 0) {
        rc = mp_err_set(err, MP_E_IO, "%s: cannot rename to %s: %s", tmp, dst_path, strerror(errno));
        goto done;
    }
    tmp_made = false;
    st.file_bytes = h.file_size;
    if (stats) *stats = st;
    rc = MP_OK;
    goto done;
nomem:
    rc = mp_err_set(err, MP_E_NOMEM, "%s: out of memory while packing", dst_path);
done:
    if (fd >= 0) close(fd);
    if (gfd >= 0) close(gfd);
    if (tmp_made) unlink(tmp);
    if (gtmp_made) unlink(gtmp);
    for (int j = 0; jobs && j < n_jobs; j++) {
        free(jobs[j].raw);
        free(jobs[j].comp);
    }
    free(jobs);
    mp_pool_free(pool);
    free(tmp);
    free(gtmp);
    free(layers);
    free(entries);
    free(res);
    mp_gguf_writer_free(w);
    mp_model_free(m);
    return rc;
}

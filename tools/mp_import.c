/* mp-import: writes a GGUF from weights trained elsewhere (tools/train_demo.py).
 *
 *   mp-import --weights DIR [--type q8_0] [--name NAME] -o FILE
 *
 * DIR holds manifest.txt and weights.bin as train_demo.py writes them:
 * manifest.txt has one "key value" line per hyperparameter (n_vocab, bos, eos,
 * n_layer, n_embd, n_head, n_head_kv, n_expert, n_expert_used, n_ff, n_ctx,
 * rope_base, eps) and one "tensor NAME OFFSET N_DIMS NE0 [NE1 [NE2]]" line per
 * tensor, in file order; weights.bin holds each tensor as little-endian f32 at
 * OFFSET, ggml's ne order (ne0 fastest, i.e. a torch [out, in] weight is
 * ne = {in, out}).
 *
 * The file is llama.cpp's `llama` architecture with experts (Mixtral style:
 * ffn_gate_inp, ffn_{gate,up,down}_exps). Matrices are quantised with the
 * project's reference quantisers (mp_quantize_row_ref: ggml's *_ref
 * algorithms); norms and the router stay F32, as llama.cpp's converters keep
 * them.
 *
 * The tokenizer is byte level: ids 0..255 are the bytes 0..255, written as
 * GPT-2's byte-level alphabet (tokenizer.ggml.model "gpt2", pre "default",
 * no merges), then BOS and EOS as control tokens. With no merges every byte
 * of a word is its own token in both llama.cpp and moepager, so token id ==
 * byte value on valid UTF-8, which is what the model was trained on. */
#include "common/err.h"
#include "common/types.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TENSORS 4096

typedef struct imp_tensor {
    char name[96];
    uint64_t offset; /* bytes into weights.bin */
    uint32_t n_dims;
    int64_t ne[3];
    uint32_t type;
} imp_tensor;

typedef struct imp {
    int64_t n_vocab, bos, eos, n_layer, n_embd, n_head, n_head_kv, n_expert, n_expert_used, n_ff, n_ctx;
    float rope_base, eps;
    imp_tensor t[MAX_TENSORS];
    size_t n;
    FILE *wf;          /* weights.bin */
    const char *wpath; /* for messages */
    float *row;        /* scratch: one tensor in f32 */
    size_t row_cap;
} imp;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mp-import: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void read_manifest(imp *m, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("%s: %s", path, strerror(errno));
    char line[512];
    int lineno = 0;
    m->n_vocab = m->bos = m->eos = m->n_layer = m->n_embd = m->n_head = m->n_head_kv = -1;
    m->n_expert = m->n_expert_used = m->n_ff = m->n_ctx = -1;
    m->rope_base = m->eps = -1.0f;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char key[64];
        if (sscanf(line, "%63s", key) != 1) continue;
        if (!strcmp(key, "tensor")) {
            if (m->n == MAX_TENSORS) die("%s:%d: more than %d tensors", path, lineno, MAX_TENSORS);
            imp_tensor *t = &m->t[m->n];
            long long ne[3] = {1, 1, 1};
            unsigned long long off;
            unsigned nd;
            int got = sscanf(line, "tensor %95s %llu %u %lld %lld %lld", t->name, &off, &nd, &ne[0], &ne[1], &ne[2]);
            if (got < 4 || nd < 1 || nd > 3 || got != 3 + (int)nd)
                die("%s:%d: expected 'tensor NAME OFFSET N_DIMS NE...'", path, lineno);
            t->offset = off;
            t->n_dims = nd;
            for (int i = 0; i < 3; i++) {
                if (ne[i] < 1 || ne[i] > (1ll << 32)) die("%s:%d: %s: bad dimension %lld", path, lineno, t->name, ne[i]);
                t->ne[i] = ne[i];
            }
            m->n++;
            continue;
        }
        double v;
        if (sscanf(line, "%*s %lf", &v) != 1) die("%s:%d: expected 'key value'", path, lineno);
#define KEY(k, field)                          \
    if (!strcmp(key, k)) {                     \
        m->field = (int64_t)v;                 \
        continue;                              \
    }
        KEY("n_vocab", n_vocab) KEY("bos", bos) KEY("eos", eos) KEY("n_layer", n_layer) KEY("n_embd", n_embd)
        KEY("n_head", n_head) KEY("n_head_kv", n_head_kv) KEY("n_expert", n_expert)
        KEY("n_expert_used", n_expert_used) KEY("n_ff", n_ff) KEY("n_ctx", n_ctx)
#undef KEY
        if (!strcmp(key, "rope_base")) m->rope_base = (float)v;
        else if (!strcmp(key, "eps")) m->eps = (float)v;
        else die("%s:%d: unknown key '%s'", path, lineno, key);
    }
    fclose(f);
    if (m->n_vocab != 258 || m->bos != 256 || m->eos != 257)
        die("%s: the byte-level tokenizer needs n_vocab 258, bos 256, eos 257", path);
    if (m->n_layer < 1 || m->n_embd < 1 || m->n_head < 1 || m->n_head_kv < 1 || m->n_expert < 1 ||
        m->n_expert_used < 1 || m->n_expert_used > m->n_expert || m->n_ff < 1 || m->n_ctx < 1 ||
        m->rope_base <= 0 || m->eps <= 0 || m->n_embd % m->n_head)
        die("%s: missing or inconsistent hyperparameters", path);
    if (m->n != (size_t)(3 + 10 * m->n_layer))
        die("%s: %zu tensors, a llama MoE of %" PRId64 " layers has %" PRId64, path, m->n, m->n_layer,
            3 + 10 * m->n_layer);
}

/* Tensor type: norms (1-D) and the router stay F32; the rest gets `type`. */
static uint32_t tensor_type(const imp_tensor *t, uint32_t type)
{
    if (t->n_dims == 1 || strstr(t->name, "ffn_gate_inp")) return MP_TYPE_F32;
    return type;
}

static int fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    imp *m = ctx;
    const imp_tensor *t = &m->t[idx];
    const int64_t n = t->ne[0] * t->ne[1] * t->ne[2];
    if ((size_t)n > m->row_cap) {
        float *r = realloc(m->row, (size_t)n * sizeof(float));
        if (!r) return mp_err_set(err, MP_E_NOMEM, "out of memory for tensor %s", t->name);
        m->row = r;
        m->row_cap = (size_t)n;
    }
    if (fseeko(m->wf, (off_t)t->offset, SEEK_SET) != 0 || fread(m->row, sizeof(float), (size_t)n, m->wf) != (size_t)n)
        return mp_err_set(err, MP_E_IO, "%s: tensor %s: short read of %" PRId64 " floats at offset %" PRIu64,
                          m->wpath, t->name, n, t->offset);
    for (int64_t i = 0; i < n; i++)
        if (!(m->row[i] == m->row[i]) || m->row[i] > 3.0e38f || m->row[i] < -3.0e38f)
            return mp_err_set(err, MP_E_CORRUPT, "%s: tensor %s: value %" PRId64 " (byte offset %" PRIu64 ") is not finite",
                              m->wpath, t->name, i, t->offset + 4 * (uint64_t)i);
    const int64_t rows = t->ne[1] * t->ne[2];
    const size_t rs = mp_row_size(t->type, t->ne[0]);
    if (rs * (size_t)rows != size)
        return mp_err_set(err, MP_E_INVAL, "tensor %s: %zu bytes expected, %zu given", t->name, rs * (size_t)rows, size);
    for (int64_t r = 0; r < rows; r++) {
        int st = mp_quantize_row_ref(t->type, m->row + r * t->ne[0], (uint8_t *)buf + (size_t)r * rs, t->ne[0]);
        if (st != MP_OK) return mp_err_set(err, st, "tensor %s: cannot quantise to %s", t->name, mp_type_name(t->type));
    }
    return MP_OK;
}

/* GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes map in order to U+0100 and up. Writes the UTF-8 of byte
 * b's code point into out (3 bytes at most) and NUL-terminates it. */
static void byte_to_piece(int b, char out[4])
{
    int cp;
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
        cp = b;
    } else {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static uint32_t llama_ftype_of(uint32_t type)
{
    switch (type) {
    case MP_TYPE_F32: return 0;
    case MP_TYPE_F16: return 1;
    case MP_TYPE_Q8_0: return 7;
    case MP_TYPE_Q4_K: return 15; /* Q4_K_M */
    case MP_TYPE_Q6_K: return 18;
    default: return 0;
    }
}

#define W(call)                                                                                   \
    do {                                                                                          \
        int st_ = (call);                                                                         \
        if (st_ != MP_OK) die("%s: %s", #call, mp_strerror(st_));                                 \
    } while (0)

int main(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *name = "moepager-demo-stdlib-moe";
    uint32_t type = MP_TYPE_Q8_0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: mp-import --weights DIR [--type q8_0|f32|f16|q4_K|q6_K] [--name NAME] -o FILE\n");
            return 0;
        }
        if (!v) die("%s needs a value", a);
        if (!strcmp(a, "--weights")) dir = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--type")) {
            if (!strcasecmp(v, "q8_0")) type = MP_TYPE_Q8_0;
            else if (!strcasecmp(v, "f32")) type = MP_TYPE_F32;
            else if (!strcasecmp(v, "f16")) type = MP_TYPE_F16;
            else if (!strcasecmp(v, "q4_k")) type = MP_TYPE_Q4_K;
            else if (!strcasecmp(v, "q6_k")) type = MP_TYPE_Q6_K;
            else die("--type: '%s' is not one of q8_0, f32, f16, q4_K, q6_K", v);
        } else die("unknown option '%s' (try --help)", a);
        i++;
    }
    if (!dir || !out) die("usage: mp-import --weights DIR [--type T] [--name NAME] -o FILE");

    static imp m;
    char path[4096];
    snprintf(path, sizeof(path), "%s/manifest.txt", dir);
    read_manifest(&m, path);
    static char wpath[4096];
    snprintf(wpath, sizeof(wpath), "%s/weights.bin", dir);
    m.wpath = wpath;
    m.wf = fopen(wpath, "rb");
    if (!m.wf) die("%s: %s", wpath, strerror(errno));

    mp_gguf_writer *w = mp_gguf_writer_create();
    if (!w) die("out of memory");
    W(mp_gguf_writer_set_str(w, "general.architecture", "llama"));
    W(mp_gguf_writer_set_str(w, "general.name", name));
    W(mp_gguf_writer_set_str(w, "general.license", "PSF-2.0"));
    W(mp_gguf_writer_set_u32(w, "general.alignment", MP_GGUF_DEFAULT_ALIGNMENT));
    W(mp_gguf_writer_set_u32(w, "general.file_type", llama_ftype_of(type)));
    W(mp_gguf_writer_set_u32(w, "general.quantization_version", 2));
    W(mp_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)m.n_vocab));
    W(mp_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)m.n_ctx));
    W(mp_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)m.n_embd));
    W(mp_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)m.n_layer));
    W(mp_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)m.n_ff));
    W(mp_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)m.n_head));
    W(mp_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)m.n_head_kv));
    W(mp_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", m.eps));
    W(mp_gguf_writer_set_f32(w, "llama.rope.freq_base", m.rope_base));
    W(mp_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(m.n_embd / m.n_head)));
    W(mp_gguf_writer_set_u32(w, "llama.expert_count", (uint32_t)m.n_expert));
    W(mp_gguf_writer_set_u32(w, "llama.expert_used_count", (uint32_t)m.n_expert_used));

    /* Byte-level vocabulary: 256 bytes, then BOS and EOS (control). */
    char pieces[256][4];
    const char *toks[258];
    int32_t types[258];
    for (int b = 0; b < 256; b++) {
        byte_to_piece(b, pieces[b]);
        toks[b] = pieces[b];
        types[b] = 1; /* normal */
    }
    toks[256] = "<s>";
    toks[257] = "</s>";
    types[256] = types[257] = 3; /* control */
    W(mp_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
    W(mp_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default"));
    W(mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", 258, toks, NULL));
    W(mp_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", MP_GGUF_INT32, 258, types));
    W(mp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", 0, NULL, NULL));
    W(mp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m.bos));
    W(mp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)m.eos));
    W(mp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true));
    W(mp_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false));

    uint64_t total = 0, expert = 0;
    for (size_t i = 0; i < m.n; i++) {
        imp_tensor *t = &m.t[i];
        t->type = tensor_type(t, type);
        if (t->ne[0] % mp_type_get(t->type)->blck_size)
            die("%s: row length %" PRId64 " is not a multiple of %s's block", t->name, t->ne[0], mp_type_name(t->type));
        W(mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL));
        uint64_t bytes = mp_row_size(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2]);
        total += bytes;
        if (strstr(t->name, "_exps")) expert += bytes;
    }
    mp_err err = {0};
    int st = mp_gguf_writer_write(w, out, fill, &m, &err);
    if (st != MP_OK) die("%s: %s", out, err.msg[0] ? err.msg : mp_strerror(st));
    printf("mp-import: wrote %s: %zu tensors, %.2f MiB of tensor data, %.2f MiB in experts (%.1f%%)\n", out, m.n,
           (double)total / 1048576.0, (double)expert / 1048576.0, 100.0 * (double)expert / (double)total);
    mp_gguf_writer_free(w);
    fclose(m.wf);
    free(m.row);
    return 0;
}

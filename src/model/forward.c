/* The forward pass. Read top to bottom: mp_ctx_eval -> eval_chunk -> per
 * layer: attention_block, then moe_block or dense_block, then the output
 * head. Shapes in comments: T = tokens in the chunk, E = n_embd,
 * K = n_expert_used. */
#include "forward.h"

#include "common/defaults.h"
#include "common/threadpool.h"
#include "gpu/backend.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "model/deltanet.h"
#include "model/route.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Matmuls queued for one parallel job: compute_experts queues gate and up of
 * at most MP_EXPERTS_BATCH_MAX experts (the most one mp_experts_next hands
 * out), the other blocks at most three. queue_matmul never flushes on its
 * own: every job runs where run_matmuls is written, in reading order. */
#define MP_MAX_TASKS (2 * MP_EXPERTS_BATCH_MAX)
/* llama.cpp's CPU flash attention accumulates in f16 for batches of fewer
 * than 64 queries and in f32 (tiled) from 64 on, the tiled path only when
 * the value head size is a whole number of SIMD vectors (16 floats in its
 * AVX-512 build); we follow it for parity. */
#define MP_FA_TILE_Q 64
#define MP_FA_TILE_DV 16

typedef struct mm_task {
    uint32_t type;
    const void *W;   /* nrows rows of ncols */
    int64_t ncols, nrows;
    const void *X;   /* T activation rows */
    int64_t T;
    float *Y;        /* Y[t * ldy + r] */
    int64_t ldy;
    int mode;        /* (| MP_MM_REPACKED: W interleaved) MP_MM_GEMM (dense, llama.cpp MUL_MAT), MP_MM_ID (experts, MUL_MAT_ID) or
                      * MP_MM_VEC_DOT (the last layer's FFN for one output token) */
    const void *dW;  /* W's device copy: the backend runs this one (NULL: the CPU) */
} mm_task;

struct mp_ctx {
    const mp_model *m;
    mp_experts *x;
    mp_backend *be;  /* NULL: every op on the CPU (gpu/backend.h) */
    mp_pool *pool;
    int n_ctx, n_batch, n_threads, n_past;
    mp_route_fn route_cb;
    void *route_ud;
    mp_route_override_fn route_override;
    void *override_ud;

    /* KV cache, f16 like llama.cpp's default: [seq][layer][cell][n_head_kv * head_dim(_v)];
     * vc is NULL when the value is a view of the key (MLA latent cache, kv_in_k).
     * Layer il's cells are rows kv_row0[il] .. of a sequence's cache; a full layer has
     * n_ctx cells (cell = position), a sliding-window layer swa_cells (mp_ctx_kv_cells)
     * holding positions swa_base.. (cell = position - swa_base; swa_slide).
     * kc/vc point at the current sequence's cache inside kc_all/vc_all (kv_cells rows
     * per sequence); seq_n_past and seq_swa_base keep the other sequences' state. */
    uint16_t *kc, *vc;
    uint16_t *kc_all, *vc_all;
    size_t kv_cells;   /* rows of one sequence's cache, all layers */
    int n_seq, seq;
    int *seq_n_past, *seq_swa_base;
    int64_t *kv_row0;  /* (n_layer); recurrent layers have no cells */
    int swa_cells;     /* cells of each sliding-window layer (n_ctx: they never slide) */
    int swa_base;      /* first position those cells hold, a multiple of MP_SWA_ALIGN */
    /* Gated DeltaNet layers' recurrent state (f32 as llama.cpp's), per
     * recurrent layer (cache_idx): conv (mp_hp_conv_state floats) and
     * delta-rule state (mp_hp_ssm_state floats); one per sequence in
     * conv_all/ssm_all, conv_state/ssm_state the current one's. Cannot be
     * rolled back: mp_ctx_truncate to an earlier position is refused, to 0
     * clears it. */
    float *conv_state, *ssm_state;
    float *conv_all, *ssm_all;
    /* Checkpoints of that state, n_ckpt per sequence: ckpt_pos[seq * n_ckpt +
     * i] the position it was taken at (-1: empty), ckpt_all the copies (conv
     * of every recurrent layer, then ssm), same index, state_floats each. */
    int n_ckpt;
    int *ckpt_pos;
    float *ckpt_all;

    /* Scratch, sized for n_batch tokens, carved from one block (scratch_layout). */
    uint8_t *scratch;
    float *h;        /* residual stream (T, E) */
    float *xn;       /* normed input (T, E) */
    float *q;        /* (T, n_head * head_dim) */
    float *k;        /* (T, n_head_kv * head_dim) */
    float *v;        /* (T, n_head_kv * head_dim_v) */
    float *att;      /* attention output (T, n_head * head_dim_v) */
    float *tmp;      /* (T, E) */
    float *shx;      /* (T, E) shared-expert output (deepseek2, glm4moe, qwen2moe) */
    float *shg;      /* (T) qwen2moe: the shared expert's gate logit, then its sigmoid */
    float *mq;       /* MLA: (T, max(n_head * mla_dk, q_lora)) q before absorption / q LoRA */
    float *mkv;      /* MLA: (T, kv_lora + n_rot) [latent | k_pe] */
    float *mkvb;     /* MLA attn_kv_b layout: (T, n_head * (nope + mla_dv)) */
    float *mo;       /* MLA absorbed: (T, n_head * mla_dv) value heads after attn_v_b */
    float *qgate;    /* attn_gate: (T, n_head * head_dim) the gate half of wq's output */
    float *gqkv, *gx; /* DeltaNet: (T, conv_dim) projections, conv output */
    float *gz, *gout; /* DeltaNet: (T, n_v d_state) gate z, core output */
    float *gba, *ggb; /* DeltaNet: (T, 2 n_v) beta/alpha logits, then g and beta */
    float *gones;     /* DeltaNet: conv_dim ones */
    float *gin;       /* DeltaNet legacy ssm_in: (T, conv_dim + n_v d_state) before the split */
    float *router;   /* (T, n_expert) */
    int32_t *sel;    /* (T, K) selected experts, best first */
    float *selw;     /* (T, K) their weights */
    int32_t *ex_count, *ex_off; /* (n_expert) tokens routed to each expert, prefix offsets */
    int32_t *entry_tok;         /* (T*K) entry -> t * K + slot, grouped by expert */
    int32_t *slot_entry;        /* (T*K) t * K + slot -> entry */
    float *hg, *hu;  /* FFN hidden (rows, F): rows = T*K (MoE) or T (dense) */
    float *dout;     /* expert outputs (T*K, E) */
    uint8_t *xq;     /* activation rows, quantised (T, act row of max width) */
    uint8_t *xg;     /* gathered / FFN-hidden activation rows (T*K, act row) */
    size_t act_stride; /* bytes of the widest activation row (capacity of xq / xg rows) */
    float *scores;   /* per thread (scores_stride >= n_ctx) */
    int64_t scores_stride;
    float *kbuf;     /* per thread (max head dim) */
    int kbuf_stride;

    /* last layer's FFN of a chunk whose other rows' outputs are not wanted:
     * llama.cpp keeps only the output rows there (one row: MUL_MAT over one
     * token, vec_dot order), so the dense matmuls use that order */
    bool ffn_vec_dot;

    /* job descriptions shared with the workers */
    mm_task tasks[MP_MAX_TASKS];
    int n_tasks;
    long task_piece0[MP_MAX_TASKS + 1]; /* pieces of task i: [task_piece0[i], task_piece0[i + 1]) (run_matmuls) */
    int polled_task;                    /* the task after whose piece the caller last polled; caller only */
};

/* ---- parallel jobs ------------------------------------------------------ */

/* A job of queued matmuls is cut into pieces: whole 16-row blocks (SIMD
 * tiles stay whole, so a row's result does not depend on which thread or
 * piece computes it), about MP_MM_PIECE_BYTES of weights times tokens each
 * so taking a piece costs little next to computing it. Threads take pieces
 * from one counter (mp_pool_for), so a descheduled thread holds back at most
 * the piece it is in. */
#define MP_MM_PIECE_BYTES (256 * 1024)

/* The counter hands out units 0, 1, 2, ...; unit u is piece q(u), where
 * residue class u % nth maps onto the class's own contiguous run of pieces.
 * With threads taking turns, each streams through one contiguous share of
 * the job's weights, as a static split would (two threads interleaving
 * 256 KiB pieces of one matrix decoded 5-14% slower in RAM at -t 2); one
 * that is faster or not descheduled simply takes more. A bijection on
 * [0, n), so every piece runs once. */
static long piece_of_unit(long u, long n, int nth)
{
    const long k = u % nth, j = u / nth;
    const long start = k * (n / nth) + (k < n % nth ? k : n % nth); /* pieces of residues < k */
    return start + j;
}

static void mm_worker(void *arg, int ith, long lo, long hi)
{
    mp_ctx *c = arg;
    for (long u = lo; u < hi; u++) {
        const long p = piece_of_unit(u, c->task_piece0[c->n_tasks], c->n_threads);
        int i = 0;
        while (p >= c->task_piece0[i + 1]) i++;
        const mm_task *t = &c->tasks[i];
        const long p0 = c->task_piece0[i], np = c->task_piece0[i + 1] - p0;
        long b0, b1; /* blocks of 16 rows */
        mp_split_range((long)((t->nrows + 15) / 16), (int)(p - p0), (int)np, &b0, &b1);
        const int64_t r0 = b0 * 16, r1 = b1 * 16 < t->nrows ? b1 * 16 : t->nrows;
        mp_matmul_rows_ex(t->type, t->W, t->ncols, t->nrows, r0, r1, t->X, t->T, t->Y, t->ldy, t->mode);
        /* The calling thread (ith 0) owns the expert provider: between its
         * matrices it reaps finished reads and starts queued ones, so the
         * disk does not sit idle until the compute returns. */
        if (ith == 0 && i != c->polled_task) {
            mp_experts_poll(c->x);
            c->polled_task = i;
        }
    }
}

/* Runs the queued matmuls as one parallel job and empties the queue. */
static void run_matmuls(mp_ctx *c)
{
    long n = 0;
    bool dev = false; /* the device's share is queued first, then runs beside the pool's */
    for (int i = 0; i < c->n_tasks; i++)
        if (c->tasks[i].dW) {
            mp_backend_matmul_start(c->be, c->tasks[i].type, c->tasks[i].dW, c->tasks[i].ncols, c->tasks[i].nrows,
                                    c->tasks[i].X, c->tasks[i].T, c->tasks[i].Y, c->tasks[i].ldy);
            dev = true;
        }
    for (int i = 0; i < c->n_tasks; i++) {
        const mm_task *t = &c->tasks[i];
        const int64_t nb = t->T && !t->dW ? (t->nrows + 15) / 16 : 0;
        const int64_t block_cost = 16 * (int64_t)mp_row_size(t->type, t->ncols) * t->T;
        int64_t per_piece = MP_MM_PIECE_BYTES / (block_cost ? block_cost : 1);
        if (per_piece < 1) per_piece = 1;
        c->task_piece0[i] = n;
        n += (long)((nb + per_piece - 1) / per_piece);
    }
    c->task_piece0[c->n_tasks] = n;
    c->polled_task = -1;
    mp_pool_for(c->pool, n, 1, mm_worker, c);
    if (dev) mp_backend_wait(c->be);
    c->n_tasks = 0;
}

/* Queues Y = W * X (T rows) for the next run_matmuls; repacked: data is in
 * the interleaved row layout (kernels.h). */
static void queue_matmul_rp(mp_ctx *c, const mp_tensor *w, const void *data, bool repacked, const void *X, int64_t T,
                            float *Y, int64_t ldy)
{
    assert(c->n_tasks < MP_MAX_TASKS); /* see MP_MAX_TASKS */
    /* expert stacks (3-D) are llama.cpp MUL_MAT_ID; the last layer's FFN over
     * the one output token (ffn_vec_dot) is vec_dot order for all T */
    const int mode = c->ffn_vec_dot ? MP_MM_VEC_DOT : w->ne[2] > 1 ? MP_MM_ID : MP_MM_GEMM;
    const void *dW = c->be ? mp_backend_weight(c->be, data) : NULL;
    c->tasks[c->n_tasks++] =
        (mm_task){w->type, data, w->ne[0], w->ne[1], X, T, Y, ldy, mode | (repacked ? MP_MM_REPACKED : 0), dW};
}

/* Queues a resident matrix, whole: a repacked one (runtime/resident.c) is
 * never passed as a row slice, which would not be in the plain layout. */
static void queue_matmul(mp_ctx *c, const mp_tensor *w, const void *data, const void *X, int64_t T, float *Y,
                         int64_t ldy)
{
    assert(!w->repacked || data == w->data);
    queue_matmul_rp(c, w, data, w->repacked, X, T, Y, ldy);
}

typedef struct quant_job {
    uint32_t wtype;
    const float *x;
    int64_t ldx, ncols, T;
    uint8_t *dst;
    size_t stride; /* packed: mp_act_row_size(wtype, ncols) */
} quant_job;

/* Row-wise jobs (quantisation, SwiGLU) are taken in pieces of about
 * MP_ROWS_PIECE_ELEMS elements, and run inline when they are one piece. */
#define MP_ROWS_PIECE_ELEMS 16384

static long rows_per_piece(int64_t ncols) { return (long)((MP_ROWS_PIECE_ELEMS + ncols - 1) / ncols); }

static void quant_worker(void *arg, int ith, long lo, long hi)
{
    (void)ith;
    const quant_job *j = arg;
    for (long t = lo; t < hi; t++) mp_quantize_act(j->wtype, j->x + t * j->ldx, j->dst + t * j->stride, j->ncols);
}

/* Converts T float rows (ldx apart) to wtype's activation type in dst. */
static void quantize_rows(mp_ctx *c, uint32_t wtype, const float *x, int64_t ldx, int64_t ncols, int64_t T,
                          uint8_t *dst)
{
    quant_job j = {wtype, x, ldx, ncols, T, dst, mp_act_row_size(wtype, ncols)};
    mp_pool_for(c->pool, (long)T, rows_per_piece(ncols), quant_worker, &j);
}

/* Makes c->xq hold the T rows of c->xn in wtype's activation type. *held is
 * the activation type it holds now (-1: nothing yet). When it must change,
 * this runs the queued matmuls first (they read xq): so q, k and v (or gate
 * and up) whose weights share an activation type share one quantisation and
 * one parallel job, and otherwise run one job each. */
static void quantize_xn_as(mp_ctx *c, uint32_t wtype, int64_t E, int T, int *held)
{
    const int act = (int)mp_act_type(wtype);
    if (act == *held) return;
    run_matmuls(c);
    quantize_rows(c, wtype, c->xn, E, E, T, c->xq);
    *held = act;
}

/* ---- attention ---------------------------------------------------------- */

/* Row of layer il's KV cache that holds position pos. */
static inline int64_t kv_row(const mp_ctx *c, int il, int pos)
{
    return c->kv_row0[il] + pos - (mp_layer_is_swa(&c->m->hp, (uint32_t)il) ? c->swa_base : 0);
}

/* Before a chunk at pos0 that would run past the sliding-window layers'
 * cells: keeps only the keys/values its first query can see (positions
 * from pos0 - n_swa + 1, rounded down to MP_SWA_ALIGN so attention tiles
 * stay where they were) and moves them to cell 0. mp_ctx_kv_cells leaves
 * room for them plus the chunk. */
static void swa_slide(mp_ctx *c, int pos0)
{
    const mp_hparams *hp = &c->m->hp;
    int keep0 = pos0 - (int)hp->n_swa + 1;
    keep0 = keep0 > 0 ? keep0 / MP_SWA_ALIGN * MP_SWA_ALIGN : 0;
    if (keep0 <= c->swa_base) return;
    const int64_t Dk = (int64_t)hp->n_head_kv * hp->head_dim, Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t shift = keep0 - c->swa_base, n = pos0 - keep0; /* rows kept */
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        if (!mp_layer_is_swa(hp, il)) continue;
        uint16_t *k = c->kc + c->kv_row0[il] * Dk;
        memmove(k, k + shift * Dk, (size_t)(n * Dk) * sizeof *k);
        if (c->vc) {
            uint16_t *v = c->vc + c->kv_row0[il] * Dv;
            memmove(v, v + shift * Dv, (size_t)(n * Dv) * sizeof *v);
        }
    }
    c->swa_base = keep0;
}

typedef struct attn_job {
    mp_ctx *c;
    int il, T, pos0;
} attn_job;

static void attn_worker(void *arg, int ith, long lo, long hi)
{
    const attn_job *j = arg;
    mp_ctx *c = j->c;
    const mp_hparams *hp = &c->m->hp;
    const int H = hp->n_head, gqa = hp->n_head / hp->n_head_kv;
    const int dk = hp->head_dim, dv = hp->head_dim_v;
    const int64_t Dk = (int64_t)hp->n_head_kv * dk, Dv = (int64_t)hp->n_head_kv * dv;
    const uint16_t *kc = c->kc + c->kv_row0[j->il] * Dk;
    /* MLA's latent cache: the value is the first dv values of each key row */
    const uint16_t *vc = hp->kv_in_k ? kc : c->vc + c->kv_row0[j->il] * Dv;
    const int64_t Vs = hp->kv_in_k ? Dk : Dv;  /* value row stride */
    const int vh = hp->kv_in_k ? dk : dv;      /* value head stride */
    const float scale = hp->kq_scale != 0.0f ? hp->kq_scale : 1.0f / sqrtf((float)dk);
    const mp_layer *l = &c->m->layers[j->il];
    const bool swa = mp_layer_is_swa(hp, (uint32_t)j->il), masked = swa || l->attn_sinks.info;
    /* a sliding-window layer's cell 0 holds position swa_base; a full layer's, 0 */
    const int base = swa ? c->swa_base : 0, cells = swa ? c->swa_cells : c->n_ctx;
    /* (token, head) pairs [lo, hi), taken from a counter (attention_block):
     * with the causal mask later tokens cost more, and a thread that is
     * descheduled takes none */
    for (long i = lo; i < hi; i++) {
        const int t = (int)(i / H), h = (int)(i % H), hk = h / gqa;
        const int n_kv = j->pos0 + t + 1 - base; /* causal: positions base..pos */
        float *o = c->att + (int64_t)t * H * dv + (int64_t)h * dv;
        const float *q = c->q + (int64_t)t * H * dk + (int64_t)h * dk;
        float *kbuf = c->kbuf + (int64_t)ith * 2 * c->kbuf_stride;
        /* llama.cpp's key view: the used cells padded to 256, at most the
         * layer's cells; a single query over 512+ of them takes its split-KV
         * path, one key range per thread */
        int n_view = (n_kv + 255) / 256 * 256;
        if (n_view > cells) n_view = cells;
        const int p = j->pos0 + t, w0 = swa ? p - (int)hp->n_swa + 1 - base : 0;
        if (j->T >= MP_FA_TILE_Q && dv % MP_FA_TILE_DV == 0) {
            /* the tiled path, for this token's heads [h, h + nq) that share key
             * head hk (a GQA group) and lie in [i, hi): one call reads each
             * key and value row once for all of them, with the bits of one
             * call per head */
            const int nq = (int)(hi - i < gqa - h % gqa ? hi - i : gqa - h % gqa);
            mp_attend_f16_group(o, dv, q, dk, nq, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * vh, Vs, n_kv, dk, dv,
                                scale, w0 > 0 ? w0 : 0, l->attn_sinks.info ? (const float *)l->attn_sinks.data + h : NULL,
                                c->scores + (int64_t)ith * c->scores_stride, kbuf);
            i += nq - 1;
            continue;
        }
        if (masked) {
            /* gpt-oss: a sliding window (keys p - n_swa + 1 .. p) and the head's sink */
            const mp_attn_mask mk = {w0 > 0 ? w0 : 0, l->attn_sinks.info ? (const float *)l->attn_sinks.data + h : NULL};
            if (j->T == 1 && n_view >= 512)
                mp_attend_f16_split_masked(o, q, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * vh, Vs, n_kv, n_view,
                                           c->n_threads, dk, dv, scale, &mk, kbuf + c->kbuf_stride, kbuf,
                                           (uint16_t *)(c->scores + (int64_t)ith * c->scores_stride),
                                           c->scores + (int64_t)ith * c->scores_stride + dv);
            else
                mp_attend_f16_acc16_masked(o, q, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * vh, Vs, n_kv, dk, dv,
                                           scale, &mk, kbuf + c->kbuf_stride, kbuf,
                                           (uint16_t *)(c->scores + (int64_t)ith * c->scores_stride));
        } else if (j->T == 1 && n_view >= 512)
            mp_attend_f16_split(o, q, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * vh, Vs, n_kv, n_view, c->n_threads,
                                dk, dv, scale, kbuf + c->kbuf_stride, kbuf,
                                (uint16_t *)(c->scores + (int64_t)ith * c->scores_stride),
                                c->scores + (int64_t)ith * c->scores_stride + dv);
        else
            mp_attend_f16_acc16(o, q, kc + (int64_t)hk * dk, Dk, vc + (int64_t)hk * vh, Vs, n_kv, dk, dv, scale,
                                kbuf + c->kbuf_stride, kbuf, (uint16_t *)(c->scores + (int64_t)ith * c->scores_stride));
    }
}

static void mla_attention_block(mp_ctx *c, int il, int T, int pos0);
static void rope_cache_yarn(float *cs, const mp_hparams *hp, float base, int pos);
static void rope_apply_norm(float *x, const float *cs, int n_rot);

/* NEOX rotation (pairs k, k + n_rot/2) of n_rot dims of x by the cache cs. */
static void rope_apply_neox(float *x, const float *cs, int n_rot)
{
    const int half = n_rot / 2;
    for (int k = 0; k < half; k++) {
        const float cth = cs[2 * k], sth = cs[2 * k + 1];
        const float x0 = x[k], x1 = x[k + half];
        x[k] = fmaf(x0, cth, -(x1 * sth));
        x[k + half] = fmaf(x0, sth, x1 * cth);
    }
}

/* Runs the attention over the cache for T tokens at pos0 (q in c->q, the
 * new keys/values already stored): c->att. */
static void run_attention(mp_ctx *c, int il, int T, int pos0)
{
    const mp_hparams *hp = &c->m->hp;
    /* pieces of about 16K key/value elements (a pair reads pos + 1 keys) */
    attn_job aj = {c, il, T, pos0};
    const int64_t pair_cost = (int64_t)(pos0 + T / 2 + 1) * (hp->head_dim + hp->head_dim_v);
    long chunk = (long)(1 + 16384 / pair_cost);
    /* the tiled path takes a token's GQA group in one call: pieces of whole groups */
    const long gqa = (long)(hp->n_head / hp->n_head_kv);
    if (T >= MP_FA_TILE_Q) chunk = (chunk + gqa - 1) / gqa * gqa;
    mp_pool_for(c->pool, (long)T * hp->n_head, chunk, attn_worker, &aj);
}

/* h += Wo * attention(norm(h)) for T tokens at positions pos0.. */
static void attention_block(mp_ctx *c, int il, int T, int pos0)
{
    const mp_model *m = c->m;
    const mp_hparams *hp = &m->hp;
    if (hp->mla) {
        mla_attention_block(c, il, T, pos0);
        return;
    }
    const mp_layer *l = &m->layers[il];
    const int64_t E = hp->n_embd;
    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim, Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v, Do = (int64_t)hp->n_head * hp->head_dim_v;

    for (int t = 0; t < T; t++) mp_rmsnorm(c->xn + t * E, c->h + t * E, l->attn_norm.data, E, hp->rms_eps);

    /* q, k, v projections; the three weights may have different types */
    int held = -1;
    quantize_xn_as(c, l->wq.type, E, T, &held);
    queue_matmul(c, &l->wq, l->wq.data, c->xq, T, c->q, hp->attn_gate ? 2 * Dq : Dq);
    quantize_xn_as(c, l->wk.type, E, T, &held);
    queue_matmul(c, &l->wk, l->wk.data, c->xq, T, c->k, Dk);
    quantize_xn_as(c, l->wv.type, E, T, &held);
    queue_matmul(c, &l->wv, l->wv.data, c->xq, T, c->v, Dv);
    run_matmuls(c);
    if (hp->attn_gate) /* qwen3next: per head [query | gate]; queries packed to (T, Dq) in place, in order */
        for (int t = 0; t < T; t++)
            for (uint32_t h = 0; h < hp->n_head; h++) {
                const float *src = c->q + 2 * t * Dq + 2 * (int64_t)h * hp->head_dim;
                memcpy(c->qgate + t * Dq + (int64_t)h * hp->head_dim, src + hp->head_dim, hp->head_dim * sizeof(float));
                memmove(c->q + t * Dq + (int64_t)h * hp->head_dim, src, hp->head_dim * sizeof(float));
            }

    for (int t = 0; t < T; t++) {
        float *q = c->q + t * Dq, *k = c->k + t * Dk;
        if (l->bq.info) /* biases right after the projections (llama.cpp build_qkv) */
            for (int64_t i = 0; i < Dq; i++) q[i] += ((const float *)l->bq.data)[i];
        if (l->bk.info)
            for (int64_t i = 0; i < Dk; i++) k[i] += ((const float *)l->bk.data)[i];
        if (l->bv.info)
            for (int64_t i = 0; i < Dv; i++) c->v[t * Dv + i] += ((const float *)l->bv.data)[i];
        if (hp->qk_norm == MP_QK_NORM_HEAD) {
            for (uint32_t h = 0; h < hp->n_head; h++)
                mp_rmsnorm(q + h * hp->head_dim, q + h * hp->head_dim, l->q_norm.data, hp->head_dim, hp->rms_eps);
            for (uint32_t h = 0; h < hp->n_head_kv; h++)
                mp_rmsnorm(k + h * hp->head_dim, k + h * hp->head_dim, l->k_norm.data, hp->head_dim, hp->rms_eps);
        } else if (hp->qk_norm == MP_QK_NORM_FULL) {
            mp_rmsnorm(q, q, l->q_norm.data, Dq, hp->rms_eps);
            mp_rmsnorm(k, k, l->k_norm.data, Dk, hp->rms_eps);
        }
        const int neox = hp->rope_kind == MP_ROPE_NEOX;
        if (hp->arch == MP_ARCH_GPTOSS) {
            /* YaRN (when the file says so) and the sliding layers' own base */
            float cs[2 * 512];
            rope_cache_yarn(cs, hp, mp_layer_is_swa(hp, (uint32_t)il) ? hp->rope_base_swa : hp->rope_base, pos0 + t);
            for (uint32_t h = 0; h < hp->n_head; h++) rope_apply_neox(q + h * hp->head_dim, cs, (int)hp->n_rot);
            for (uint32_t h = 0; h < hp->n_head_kv; h++) rope_apply_neox(k + h * hp->head_dim, cs, (int)hp->n_rot);
        } else {
            mp_rope(q, hp->n_head, hp->head_dim, hp->n_rot, pos0 + t, hp->rope_base, hp->rope_scale, neox);
            mp_rope(k, hp->n_head_kv, hp->head_dim, hp->n_rot, pos0 + t, hp->rope_base, hp->rope_scale, neox);
        }
        const int64_t slot = kv_row(c, il, pos0 + t);
        mp_f32_to_f16_row(k, c->kc + slot * Dk, Dk);
        mp_f32_to_f16_row(c->v + t * Dv, c->vc + slot * Dv, Dv);
    }

    run_attention(c, il, T, pos0);
    if (hp->attn_gate) /* att *= sigmoid(gate) (ggml_sigmoid: 1 / (1 + expf(-x))) */
        for (int64_t i = 0; i < (int64_t)T * Do; i++) c->att[i] *= 1.0f / (1.0f + expf(-c->qgate[i]));

    quantize_rows(c, l->wo.type, c->att, Do, Do, T, c->xq);
    queue_matmul(c, &l->wo, l->wo.data, c->xq, T, c->tmp, E);
    run_matmuls(c);
    if (l->bo.info) /* (Wo a + bo) + h */
        for (int t = 0; t < T; t++)
            for (int64_t i = 0; i < E; i++) c->tmp[t * E + i] += ((const float *)l->bo.data)[i];
    for (int64_t i = 0; i < (int64_t)T * E; i++) c->h[i] += c->tmp[i];
}

/* ---- MLA attention (deepseek2) ------------------------------------------ */

/* ggml's rope cache (ggml-cpu ops.cpp rope_yarn / ggml_rope_cache_init) for
 * one position: cs[2k], cs[2k+1] = cos, sin of pair k times the magnitude,
 * with YaRN's ramp between interpolated and extrapolated angles when
 * yarn_ext_factor != 0 (corr dims from n_ctx_orig, beta_fast 32, beta_slow
 * 1). Angles by cumulative float multiplication; ggml's CPU build contracts
 * the ramp mix and the magnitude's 1 + 0.1 ln(.) into FMAs. */
static void rope_cache_yarn(float *cs, const mp_hparams *hp, float base, int pos)
{
    const int n_dims = (int)hp->n_rot;
    const float fs = hp->rope_scale, ext = hp->yarn_ext_factor;
    const float theta_scale = powf(base, -2.0f / (float)n_dims);
    float low = 0.0f, high = 0.0f;
    if (ext != 0.0f) {
        const float lo = floorf((float)n_dims * logf((float)hp->n_ctx_orig / (32.0f * 2 * (float)M_PI)) / (2 * logf(base)));
        const float hi = ceilf((float)n_dims * logf((float)hp->n_ctx_orig / (1.0f * 2 * (float)M_PI)) / (2 * logf(base)));
        low = lo > 0.0f ? lo : 0.0f;
        high = hi < (float)(n_dims - 1) ? hi : (float)(n_dims - 1);
    }
    float theta = (float)pos;
    for (int k = 0; k < n_dims / 2; k++) {
        const float interp = fs * theta;
        float th = interp, msc = hp->yarn_attn_factor;
        if (ext != 0.0f) {
            float y = ((float)k - low) / (0.001f > high - low ? 0.001f : high - low);
            y = y < 0.0f ? 0.0f : y;
            const float ramp = 1 - (y < 1.0f ? y : 1.0f);
            const float mix = ramp * ext;
            th = fmaf(interp, 1 - mix, theta * mix);
            msc *= fmaf(0.1f, logf(1.0f / fs), 1.0f);
        }
        cs[2 * k] = cosf(th) * msc;
        cs[2 * k + 1] = sinf(th) * msc;
        theta *= theta_scale;
    }
}

/* NORM (interleaved) rotation of n_rot dims of x by the cache cs. */
static void rope_apply_norm(float *x, const float *cs, int n_rot)
{
    for (int k = 0; k < n_rot / 2; k++) {
        const float cth = cs[2 * k], sth = cs[2 * k + 1];
        const float x0 = x[2 * k], x1 = x[2 * k + 1];
        x[2 * k] = fmaf(x0, cth, -(x1 * sth));
        x[2 * k + 1] = fmaf(x0, sth, x1 * cth);
    }
}

/* Y[t][r] (ldy apart) = W_h * X for each head h of a 3-D per-head weight
 * (ne = {cols, rows, n_head}) over T tokens whose head-h input is x + h *
 * hx_stride (rows ldx apart, cols floats): llama.cpp's batched ggml_mul_mat
 * over a permuted (non-contiguous) input: f32 weights take the vec_dot
 * path, other types convert the input and take the GEMM path. Heads are
 * batched into one job as far as c->xg holds their activation rows. */
static void per_head_matmul(mp_ctx *c, const mp_tensor *w, const float *x, int64_t ldx, int64_t hx_stride, int T,
                            float *y, int64_t ldy, int64_t hy_stride)
{
    const int64_t cols = w->ne[0], rows = w->ne[1], H = w->ne[2];
    /* ggml's MUL_MAT over a 3-D weight: F32 gets the vec_dot order (the permuted
     * activations are not contiguous, so tinyBLAS is not tried), the quantised types
     * tinyBLAS's over the q8 copy where it applies (MP_MM_GEMM), but never the IQ
     * panel GEMM, which takes 2-D weights only (iqp.cpp: src0->ne[2] == 1): IQ4_XS
     * attn_k_b / attn_v_b (llama-quantize's IQ4_XS mix) need the vec_dot order. */
    const int mode = w->type == MP_TYPE_F32 || w->type == MP_TYPE_IQ4_XS ? MP_MM_VEC_DOT : MP_MM_GEMM;
    const size_t arow = mp_act_row_size(w->type, cols);
    const int64_t cap_rows = (int64_t)c->n_batch * (c->m->hp.n_expert ? c->m->hp.n_expert_used : 1);
    int64_t per_job = cap_rows * (int64_t)c->act_stride / ((int64_t)arow * T);
    if (per_job < 1) per_job = 1;
    if (per_job > MP_MAX_TASKS) per_job = MP_MAX_TASKS;
    for (int64_t h0 = 0; h0 < H; h0 += per_job) {
        const int64_t nh = H - h0 < per_job ? H - h0 : per_job;
        for (int64_t j = 0; j < nh; j++) {
            uint8_t *xq = c->xg + j * T * (int64_t)arow;
            quantize_rows(c, w->type, x + (h0 + j) * hx_stride, ldx, cols, T, xq);
            assert(c->n_tasks < MP_MAX_TASKS);
            const void *wh = (const char *)w->data + (h0 + j) * w->expert_stride;
            c->tasks[c->n_tasks++] = (mm_task){w->type, wh, cols, rows, xq, T, y + (h0 + j) * hy_stride, ldy, mode,
                                               c->be ? mp_backend_weight(c->be, wh) : NULL};
        }
        run_matmuls(c);
    }
}

/* deepseek2's attention (llama.cpp src/models/deepseek2.cpp):
 *   q    = W_q h  or  W_q_b rmsnorm(W_q_a h)         (T, H, nope + R)
 *   ckv  = W_kv_a_mqa h = [latent (L) | k_pe (R)]    (T, L + R)
 *   k_pe, q_pe: NORM RoPE (YaRN); latent: rmsnorm(attn_kv_a_norm)
 * absorbed (attn_k_b / attn_v_b): Q_h = [W_k_b[h] q_nope_h (L) | q_pe_h],
 * K = V-prefix = [latent | k_pe] one head in the cache, the attention
 * output o_h (L) leaves through W_v_b[h] (mla_dv) into W_o. attn_kv_b:
 * [k_nope_h | v_h] = W_kv_b latent per head; plain MHA with K_h =
 * [k_nope_h | k_pe]. kq_scale carries YaRN's mscale^2 / sqrt(nope + R). */
static void mla_attention_block(mp_ctx *c, int il, int T, int pos0)
{
    const mp_model *m = c->m;
    const mp_hparams *hp = &m->hp;
    const mp_layer *l = &m->layers[il];
    const int64_t E = hp->n_embd, H = hp->n_head, R = hp->n_rot, L = hp->kv_lora;
    const int64_t dk = hp->mla_dk, dv = hp->mla_dv, nope = dk - R;
    const int64_t Dq = H * dk;
    /* q before absorption lives in mq (absorbed) or directly in c->q (attn_kv_b: head_dim == dk) */
    float *qr = hp->mla_absorbed ? c->mq : c->q;

    for (int t = 0; t < T; t++) mp_rmsnorm(c->xn + t * E, c->h + t * E, l->attn_norm.data, E, hp->rms_eps);

    int held = -1;
    if (hp->q_lora > 0) {
        const int64_t Q = hp->q_lora;
        quantize_xn_as(c, l->wq_a.type, E, T, &held);
        queue_matmul(c, &l->wq_a, l->wq_a.data, c->xq, T, c->mq, Q);
        quantize_xn_as(c, l->wkv_a_mqa.type, E, T, &held);
        queue_matmul(c, &l->wkv_a_mqa, l->wkv_a_mqa.data, c->xq, T, c->mkv, L + R);
        run_matmuls(c);
        for (int t = 0; t < T; t++) mp_rmsnorm(c->mq + t * Q, c->mq + t * Q, l->q_a_norm.data, Q, hp->rms_eps);
        quantize_rows(c, l->wq_b.type, c->mq, Q, Q, T, c->xq);
        queue_matmul(c, &l->wq_b, l->wq_b.data, c->xq, T, qr, Dq);
        run_matmuls(c);
    } else {
        quantize_xn_as(c, l->wq.type, E, T, &held);
        queue_matmul(c, &l->wq, l->wq.data, c->xq, T, qr, Dq);
        quantize_xn_as(c, l->wkv_a_mqa.type, E, T, &held);
        queue_matmul(c, &l->wkv_a_mqa, l->wkv_a_mqa.data, c->xq, T, c->mkv, L + R);
        run_matmuls(c);
    }

    float cs[2 * 512];
    for (int t = 0; t < T; t++) {
        rope_cache_yarn(cs, hp, hp->rope_base, pos0 + t);
        float *kv = c->mkv + t * (L + R);
        rope_apply_norm(kv + L, cs, (int)R);                          /* k_pe */
        mp_rmsnorm(kv, kv, l->kv_a_norm.data, L, hp->rms_eps);        /* latent */
        for (int64_t h = 0; h < H; h++) rope_apply_norm(qr + t * Dq + h * dk + nope, cs, (int)R); /* q_pe */
    }

    if (hp->mla_absorbed) {
        const int64_t Dk = L + R; /* one cached head: [latent | k_pe] */
        /* Q_h = [W_k_b[h] q_nope_h | q_pe_h] */
        per_head_matmul(c, &l->wk_b, qr, Dq, dk, T, c->q, H * Dk, Dk);
        for (int t = 0; t < T; t++) {
            for (int64_t h = 0; h < H; h++)
                memcpy(c->q + t * H * Dk + h * Dk + L, qr + t * Dq + h * dk + nope, (size_t)R * sizeof(float));
            mp_f32_to_f16_row(c->mkv + t * Dk, c->kc + kv_row(c, il, pos0 + t) * Dk, Dk);
        }
        run_attention(c, il, T, pos0);                                 /* att: (T, H, L) */
        per_head_matmul(c, &l->wv_b, c->att, H * L, L, T, c->mo, H * dv, dv);
        quantize_rows(c, l->wo.type, c->mo, H * dv, H * dv, T, c->xq);
    } else {
        const int64_t kvw = nope + dv;
        quantize_rows(c, l->wkv_b.type, c->mkv, L + R, L, T, c->xq);
        queue_matmul(c, &l->wkv_b, l->wkv_b.data, c->xq, T, c->mkvb, H * kvw);
        run_matmuls(c);
        for (int t = 0; t < T; t++) {
            const int64_t slot = kv_row(c, il, pos0 + t);
            float *k = c->k + t * H * dk, *v = c->v + t * H * dv;
            for (int64_t h = 0; h < H; h++) {
                memcpy(k + h * dk, c->mkvb + t * H * kvw + h * kvw, (size_t)nope * sizeof(float));
                memcpy(k + h * dk + nope, c->mkv + t * (L + R) + L, (size_t)R * sizeof(float));
                memcpy(v + h * dv, c->mkvb + t * H * kvw + h * kvw + nope, (size_t)dv * sizeof(float));
            }
            mp_f32_to_f16_row(k, c->kc + slot * H * dk, H * dk);
            mp_f32_to_f16_row(v, c->vc + slot * H * dv, H * dv);
        }
        run_attention(c, il, T, pos0);                                 /* att: (T, H, dv) */
        quantize_rows(c, l->wo.type, c->att, H * dv, H * dv, T, c->xq);
    }
    queue_matmul(c, &l->wo, l->wo.data, c->xq, T, c->tmp, E);
    run_matmuls(c);
    for (int64_t i = 0; i < (int64_t)T * E; i++) c->h[i] += c->tmp[i];
}

/* ---- Gated DeltaNet (qwen3next, qwen35moe) ------------------------------ */

/* h += ssm_out(core(projections of norm(h))) for T tokens (model/deltanet.h):
 * attn_qkv, attn_gate and the beta/alpha projections as one job per
 * activation type, the core, then ssm_out. */
static void gdn_block(mp_ctx *c, int il, int T)
{
    const mp_model *m = c->m;
    const mp_hparams *hp = &m->hp;
    const mp_layer *l = &m->layers[il];
    const int64_t E = hp->n_embd, Hv = hp->ssm_n_v, S = hp->ssm_d_state;
    const int64_t conv_dim = (2 * (int64_t)hp->ssm_n_k + Hv) * S, vdim = Hv * S;

    for (int t = 0; t < T; t++) mp_rmsnorm(c->xn + t * E, c->h + t * E, l->attn_norm.data, E, hp->rms_eps);
    int held = -1;
    if (l->ssm_in.info) {
        quantize_xn_as(c, l->ssm_in.type, E, T, &held);
        queue_matmul(c, &l->ssm_in, l->ssm_in.data, c->xq, T, c->gin, conv_dim + vdim);
    } else {
        quantize_xn_as(c, l->ssm_qkv.type, E, T, &held);
        queue_matmul(c, &l->ssm_qkv, l->ssm_qkv.data, c->xq, T, c->gqkv, conv_dim);
        quantize_xn_as(c, l->ssm_z.type, E, T, &held);
        queue_matmul(c, &l->ssm_z, l->ssm_z.data, c->xq, T, c->gz, vdim);
    }
    if (l->ssm_ba.info) {
        quantize_xn_as(c, l->ssm_ba.type, E, T, &held);
        queue_matmul(c, &l->ssm_ba, l->ssm_ba.data, c->xq, T, c->gba, 2 * Hv);
    } else { /* beta and alpha side by side in each row */
        quantize_xn_as(c, l->ssm_beta.type, E, T, &held);
        queue_matmul(c, &l->ssm_beta, l->ssm_beta.data, c->xq, T, c->gba, 2 * Hv);
        quantize_xn_as(c, l->ssm_alpha.type, E, T, &held);
        queue_matmul(c, &l->ssm_alpha, l->ssm_alpha.data, c->xq, T, c->gba + Hv, 2 * Hv);
    }
    run_matmuls(c);
    if (l->ssm_in.info) { /* legacy: per k head [q | k | v (r heads) | z (r heads)] -> [q.. | k.. | v..], z */
        const int64_t Hk = hp->ssm_n_k, r = Hv / Hk, grp = 2 * S + 2 * r * S;
        for (int t = 0; t < T; t++) {
            const float *in = c->gin + t * (conv_dim + vdim);
            float *qkv = c->gqkv + t * conv_dim, *z = c->gz + t * vdim;
            for (int64_t g = 0; g < Hk; g++) {
                const float *src = in + g * grp;
                memcpy(qkv + g * S, src, (size_t)S * sizeof(float));
                memcpy(qkv + (Hk + g) * S, src + S, (size_t)S * sizeof(float));
                memcpy(qkv + 2 * Hk * S + g * r * S, src + 2 * S, (size_t)(r * S) * sizeof(float));
                memcpy(z + g * r * S, src + 2 * S + r * S, (size_t)(r * S) * sizeof(float));
            }
        }
    }

    const mp_gdn_io io = {
        .hp = hp,
        .l = l,
        .T = T,
        .qkv = c->gqkv,
        .z = c->gz,
        .b = c->gba,
        .a = l->ssm_ba.info ? NULL : c->gba + Hv,
        .ldba = (int)(2 * Hv),
        .conv_state = c->conv_state + l->cache_idx * mp_hp_conv_state(hp),
        .ssm_state = c->ssm_state + l->cache_idx * mp_hp_ssm_state(hp),
        .x = c->gx,
        .gb = c->ggb,
        .ones = c->gones,
        .out = c->gout,
    };
    mp_gdn_forward(c->pool, &io);

    quantize_rows(c, l->ssm_out.type, c->gout, vdim, vdim, T, c->xq);
    queue_matmul(c, &l->ssm_out, l->ssm_out.data, c->xq, T, c->tmp, E);
    run_matmuls(c);
    for (int64_t i = 0; i < (int64_t)T * E; i++) c->h[i] += c->tmp[i];
}

/* ---- feed-forward ------------------------------------------------------- */

typedef struct swiglu_job {
    mp_ctx *c;
    uint32_t down_type;
    int64_t F, row0, rows; /* rows of hg/hu starting at row0 */
    uint8_t *dst;          /* activation rows for the down projection */
    bool oai;              /* gpt-oss's clamped variant */
} swiglu_job;

static void swiglu_worker(void *arg, int ith, long lo, long hi)
{
    (void)ith;
    const swiglu_job *j = arg;
    for (long r = j->row0 + lo; r < j->row0 + hi; r++) {
        float *g = j->c->hg + r * j->F;
        if (j->oai) mp_swiglu_oai(g, j->c->hu + r * j->F, j->F);
        else mp_swiglu(g, j->c->hu + r * j->F, j->F);
        mp_quantize_act(j->down_type, g, j->dst + r * mp_act_row_size(j->down_type, j->F), j->F);
    }
}

static void swiglu_rows(mp_ctx *c, uint32_t down_type, int64_t F, int64_t row0, int64_t rows, uint8_t *dst)
{
    swiglu_job j = {c, down_type, F, row0, rows, dst, c->m->hp.swiglu_oai};
    mp_pool_for(c->pool, (long)rows, rows_per_piece(F), swiglu_worker, &j);
}

/* out (T, E) = W_down(silu(W_gate xn) * (W_up xn)): a dense FFN of width F. */
static void ffn_swiglu(mp_ctx *c, const mp_tensor *gate, const mp_tensor *up, const mp_tensor *down, int64_t F, int T,
                       float *out)
{
    const int64_t E = c->m->hp.n_embd;
    int held = -1;
    quantize_xn_as(c, gate->type, E, T, &held);
    queue_matmul(c, gate, gate->data, c->xq, T, c->hg, F);
    quantize_xn_as(c, up->type, E, T, &held);
    queue_matmul(c, up, up->data, c->xq, T, c->hu, F);
    run_matmuls(c);
    swiglu_rows(c, down->type, F, 0, T, c->xg);
    queue_matmul(c, down, down->data, c->xg, T, out, E);
    run_matmuls(c);
}

static void dense_block(mp_ctx *c, int il, int T)
{
    const mp_layer *l = &c->m->layers[il];
    const int64_t E = c->m->hp.n_embd;
    ffn_swiglu(c, &l->ffn_gate, &l->ffn_up, &l->ffn_down, c->m->hp.n_ff, T, c->tmp);
    for (int64_t i = 0; i < (int64_t)T * E; i++) c->h[i] += c->tmp[i];
}

/* Experts ex[0..n) over the chunk's tokens routed to each: gather their
 * activation rows, gate and up, SwiGLU, down; outputs land in dout at each
 * expert's entries. All n experts share one job per step (fewer thread
 * synchronisations in decode, where each expert has one token). */
static void compute_experts(mp_ctx *c, const mp_layer *l, const int *ex, const mp_expert_w *w, int n)
{
    const mp_hparams *hp = &c->m->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff_exp;
    const int K = (int)hp->n_expert_used;
    const uint32_t gate_type = l->ffn_gate_exps.type;
    const size_t arow = mp_act_row_size(gate_type, E);
    const bool same_up = mp_act_type(l->ffn_up_exps.type) == mp_act_type(gate_type);
    /* where each expert runs (the backend's VRAM tier): dev[j] its device
     * copies, NULL for the CPU */
    const void *dev[MP_EXPERTS_BATCH_MAX][3] = {{NULL}};
    for (int j = 0; c->be && j < n; j++) {
        /* the device takes the GGUF row layout: an expert whose slot holds the
         * interleaved one (w[j].repacked) runs on the CPU */
        if (w[j].repacked) continue;
        const void *host[3] = {w[j].gate, w[j].up, w[j].down};
        const size_t bytes[3] = {l->ffn_gate_exps.row_size * F, l->ffn_up_exps.row_size * F,
                                 l->ffn_down_exps.row_size * E};
        mp_backend_expert(c->be, (int)(l - c->m->layers), ex[j], c->ex_count[ex[j]], host, bytes, dev[j]);
    }
    for (int j = 0; j < n; j++) {
        const int off = c->ex_off[ex[j]], cnt = c->ex_count[ex[j]];
        for (int i = 0; i < cnt; i++) {
            const int entry = off + i, t = c->entry_tok[entry] / K;
            memcpy(c->xg + (int64_t)entry * arow, c->xq + (int64_t)t * arow, arow);
        }
        const uint8_t *xe = c->xg + (int64_t)off * arow;
        /* w[j].repacked: which of the expert's matrices its cache slot holds
         * in the interleaved layout (bit 0 gate, 1 up, 2 down) */
        queue_matmul_rp(c, &l->ffn_gate_exps, w[j].gate, w[j].repacked & 1, xe, cnt, c->hg + (int64_t)off * F, F);
        c->tasks[c->n_tasks - 1].dW = dev[j][0];
        if (same_up) {
            queue_matmul_rp(c, &l->ffn_up_exps, w[j].up, w[j].repacked >> 1 & 1, xe, cnt, c->hu + (int64_t)off * F, F);
            c->tasks[c->n_tasks - 1].dW = dev[j][1];
        }
    }
    run_matmuls(c);
    if (!same_up) { /* rare: up needs another activation type */
        const size_t urow = mp_act_row_size(l->ffn_up_exps.type, E);
        for (int j = 0; j < n; j++) {
            const int off = c->ex_off[ex[j]], cnt = c->ex_count[ex[j]];
            for (int i = 0; i < cnt; i++) {
                const int entry = off + i, t = c->entry_tok[entry] / K;
                mp_quantize_act(l->ffn_up_exps.type, c->xn + t * E, c->xg + (int64_t)entry * urow, E);
            }
            queue_matmul_rp(c, &l->ffn_up_exps, w[j].up, w[j].repacked >> 1 & 1, c->xg + (int64_t)off * urow, cnt,
                            c->hu + (int64_t)off * F, F);
            c->tasks[c->n_tasks - 1].dW = dev[j][1];
        }
        run_matmuls(c);
    }
    if (l->ffn_gate_exps_b.info) /* gpt-oss: per-expert biases right after each matmul (ggml_add_id) */
        for (int j = 0; j < n; j++) {
            const int off = c->ex_off[ex[j]], cnt = c->ex_count[ex[j]];
            const float *bg = (const float *)l->ffn_gate_exps_b.data + (int64_t)ex[j] * F;
            const float *bu = (const float *)l->ffn_up_exps_b.data + (int64_t)ex[j] * F;
            for (int64_t r = off; r < off + cnt; r++)
                for (int64_t f = 0; f < F; f++) {
                    c->hg[r * F + f] += bg[f];
                    c->hu[r * F + f] += bu[f];
                }
        }
    const size_t drow = mp_act_row_size(l->ffn_down_exps.type, F);
    for (int j = 0; j < n; j++) {
        const int off = c->ex_off[ex[j]], cnt = c->ex_count[ex[j]];
        swiglu_rows(c, l->ffn_down_exps.type, F, off, cnt, c->xg);
        queue_matmul_rp(c, &l->ffn_down_exps, w[j].down, w[j].repacked >> 2 & 1, c->xg + (int64_t)off * drow, cnt,
                        c->dout + (int64_t)off * E, E);
        c->tasks[c->n_tasks - 1].dW = dev[j][2];
    }
    run_matmuls(c);
    if (l->ffn_down_exps_b.info)
        for (int j = 0; j < n; j++) {
            const int off = c->ex_off[ex[j]], cnt = c->ex_count[ex[j]];
            const float *bd = (const float *)l->ffn_down_exps_b.data + (int64_t)ex[j] * E;
            for (int64_t r = off; r < off + cnt; r++)
                for (int64_t i = 0; i < E; i++) c->dout[r * E + i] += bd[i];
        }
}

static int moe_block(mp_ctx *c, int il, int T, int pos0, mp_err *err)
{
    const mp_model *m = c->m;
    const mp_hparams *hp = &m->hp;
    const mp_layer *l = &m->layers[il];
    const int64_t E = hp->n_embd;
    const int X = (int)hp->n_expert, K = (int)hp->n_expert_used;
    if (c->be) mp_backend_begin_layer(c->be, il, T);

    /* shared experts (resident, every token): one FFN of n_ff_shexp */
    const bool shared = l->ffn_gate_shexp.info != NULL;
    if (shared) ffn_swiglu(c, &l->ffn_gate_shexp, &l->ffn_up_shexp, &l->ffn_down_shexp, l->ffn_gate_shexp.ne[1], T, c->shx);

    /* router logits (T, X); qwen2moe's shared-expert gate logit (T) is one
     * more f32 row over the same f32 activations */
    const bool shared_gate = l->ffn_gate_inp_shexp.info != NULL;
    quantize_rows(c, l->ffn_gate_inp.type, c->xn, E, E, T, c->xq);
    queue_matmul(c, &l->ffn_gate_inp, l->ffn_gate_inp.data, c->xq, T, c->router, X);
    if (shared_gate) queue_matmul(c, &l->ffn_gate_inp_shexp, l->ffn_gate_inp_shexp.data, c->xq, T, c->shg, 1);
    run_matmuls(c);
    /* llama.cpp qwen2moe.cpp: gate = silu(g) / g (a sigmoid written with
     * ggml ops; its silu over a row of one element is the scalar
     * g / (1 + expf(-g))); NaN for g == 0 exactly, as there */
    for (int t = 0; shared_gate && t < T; t++) {
        const float g = c->shg[t];
        if (hp->attn_gate) { /* qwen3next / qwen35moe: ggml_sigmoid */
            c->shg[t] = 1.0f / (1.0f + expf(-g));
            continue;
        }
        const float silu = g / (1.0f + expf(-g));
        c->shg[t] = silu / g;
    }
    if (l->ffn_gate_inp_b.info) /* gpt-oss's router bias, before the routing */
        for (int t = 0; t < T; t++)
            for (int e = 0; e < X; e++) c->router[(int64_t)t * X + e] += ((const float *)l->ffn_gate_inp_b.data)[e];
    for (int t = 0; t < T; t++) {
        mp_route_token(hp, l->exp_probs_b.info ? l->exp_probs_b.data : NULL, c->router + (int64_t)t * X,
                       c->sel + t * K, c->selw + t * K);
        if (c->route_override) {
            int rc = c->route_override(c->override_ud, il, pos0 + t, c->sel + t * K, c->selw + t * K, K, err);
            if (rc) return rc;
            for (int s = 0; s < K; s++) /* the grouping below indexes by expert */
                if (c->sel[t * K + s] < 0 || c->sel[t * K + s] >= X)
                    return mp_err_set(err, MP_E_INVAL, "layer %d, position %d: replaced routing picks expert %d of %d",
                                      il, pos0 + t, c->sel[t * K + s], X);
        }
        if (c->route_cb) c->route_cb(c->route_ud, il, pos0 + t, c->sel + t * K, c->selw + t * K, K, c->h + t * E);
    }

    /* group (token, slot) entries by expert: counting sort */
    memset(c->ex_count, 0, (size_t)X * sizeof(int32_t));
    for (int i = 0; i < T * K; i++) c->ex_count[c->sel[i]]++;
    int32_t off = 0;
    for (int e = 0; e < X; e++) {
        c->ex_off[e] = off;
        off += c->ex_count[e];
    }
    for (int e = 0; e < X; e++) c->ex_count[e] = 0;
    for (int i = 0; i < T * K; i++) {
        const int e = c->sel[i];
        const int entry = c->ex_off[e] + c->ex_count[e]++;
        c->entry_tok[entry] = i;
        c->slot_entry[i] = entry;
    }

    /* activations of every token in the gate/up activation type */
    const uint32_t gate_type = l->ffn_gate_exps.type;
    quantize_rows(c, gate_type, c->xn, E, E, T, c->xq);

    /* The experts this chunk needs, computed in the order the streamer
     * hands them out (hits first, misses as their reads land), batches of
     * those that are ready together. */
    int needed[MP_EXPERTS_MAX], nn = 0;
    for (int e = 0; e < X; e++)
        if (c->ex_count[e] > 0) needed[nn++] = e;
    const mp_experts_view view = {pos0, T, c->h};
    int rc = mp_experts_begin_layer(c->x, il, needed, nn, &view, err);
    if (rc) return rc;
    int ex[MP_EXPERTS_BATCH_MAX], n;
    mp_expert_w w[MP_EXPERTS_BATCH_MAX];
    while ((n = mp_experts_next(c->x, ex, w, MP_EXPERTS_BATCH_MAX, err)) > 0) {
        compute_experts(c, l, ex, w, n);
        mp_experts_release(c->x, ex, n);
    }
    mp_experts_end_layer(c->x);
    if (n < 0) return n;

    /* h += sum over slots, in slot order, of weight * expert output */
    for (int t = 0; t < T; t++) {
        float *acc = c->tmp + t * E;
        for (int s = 0; s < K; s++) {
            const float ws = c->selw[t * K + s];
            const float *y = c->dout + (int64_t)c->slot_entry[t * K + s] * E;
            if (s == 0)
                for (int64_t i = 0; i < E; i++) acc[i] = y[i] * ws;
            else
                for (int64_t i = 0; i < E; i++) acc[i] += y[i] * ws;
        }
        if (shared_gate) { /* qwen2moe: (routed + shared * gate) + residual */
            const float gs = c->shg[t];
            for (int64_t i = 0; i < E; i++) acc[i] += c->shx[t * E + i] * gs;
        } else if (shared) { /* llama.cpp: (routed + shared) + residual */
            for (int64_t i = 0; i < E; i++) acc[i] += c->shx[t * E + i];
        }
        float *h = c->h + t * E;
        for (int64_t i = 0; i < E; i++) h[i] += acc[i];
    }
    return MP_OK;
}

/* ---- one chunk ---------------------------------------------------------- */

static int eval_chunk(mp_ctx *c, const int32_t *ids, int T, float *logits, bool all, bool want_last,
                      mp_err *err)
{
    const mp_model *m = c->m;
    const mp_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    const int pos0 = c->n_past;
    if (pos0 + T - c->swa_base > c->swa_cells) swa_slide(c, pos0);
    assert(pos0 + T - c->swa_base <= c->swa_cells);

    /* token embeddings (T, E) */
    for (int t = 0; t < T; t++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)ids[t] * m->tok_embd.row_size;
        mp_dequantize_row(m->tok_embd.type, row, c->h + t * E, E);
    }

    for (uint32_t il = 0; il < hp->n_layer; il++) {
        if (m->layers[il].recurrent) gdn_block(c, (int)il, T);
        else attention_block(c, (int)il, T, pos0);
        mp_experts_poll(c->x); /* let finished prefetch reads make room for queued ones */
        const mp_layer *l = &m->layers[il];
        for (int t = 0; t < T; t++) mp_rmsnorm(c->xn + t * E, c->h + t * E, l->ffn_norm.data, E, hp->rms_eps);
        /* gpt-oss keeps only the output rows after the layer loop (openai-moe.cpp),
         * qwen3next / qwen35moe after the output norm, so their last FFN still
         * runs over every token (router in the GEMM order) */
        c->ffn_vec_dot = !all && il == hp->n_layer - 1 && hp->arch != MP_ARCH_GPTOSS && !hp->attn_gate;
        if (mp_layer_is_moe(l)) {
            int rc = moe_block(c, (int)il, T, pos0, err);
            c->ffn_vec_dot = false;
            if (rc) return rc;
        } else {
            dense_block(c, (int)il, T);
        }
        c->ffn_vec_dot = false;
    }

    /* output head: all rows, or only the last */
    if (logits && (all || want_last)) {
        const int t0 = all ? 0 : T - 1, nt = all ? T : 1;
        for (int t = t0; t < T; t++) mp_rmsnorm(c->xn + t * E, c->h + t * E, m->output_norm.data, E, hp->rms_eps);
        quantize_rows(c, m->output.type, c->xn + t0 * E, E, E, nt, c->xq);
        queue_matmul(c, &m->output, m->output.data, c->xq, nt, logits, V);
        run_matmuls(c);
    }
    if (c->be) { /* a device error is sticky: checked once per chunk */
        int rc = mp_backend_status(c->be, err);
        if (rc) return rc;
    }
    c->n_past += T;
    return MP_OK;
}

static size_t conv_floats(const mp_hparams *hp) { return (size_t)hp->n_layer_recr * (size_t)mp_hp_conv_state(hp); }
static size_t ssm_floats(const mp_hparams *hp) { return (size_t)hp->n_layer_recr * (size_t)mp_hp_ssm_state(hp); }

static float *ckpt_data(const mp_ctx *c, int i)
{
    return c->ckpt_all + ((size_t)c->seq * (size_t)c->n_ckpt + (size_t)i) * (conv_floats(&c->m->hp) + ssm_floats(&c->m->hp));
}

/* Copies the current sequence's recurrent state at n_past into a free slot,
 * else over the lowest position's (the oldest prefix). */
static void ckpt_save(mp_ctx *c)
{
    const mp_hparams *hp = &c->m->hp;
    if (!c->n_ckpt || !hp->n_layer_recr) return;
    int *pos = c->ckpt_pos + c->seq * c->n_ckpt, slot = 0;
    for (int i = 0; i < c->n_ckpt; i++) {
        if (pos[i] == c->n_past) return; /* the same prefix's state */
        if (pos[i] < pos[slot]) slot = i;
    }
    float *d = ckpt_data(c, slot);
    memcpy(d, c->conv_state, conv_floats(hp) * sizeof(float));
    memcpy(d + conv_floats(hp), c->ssm_state, ssm_floats(hp) * sizeof(float));
    pos[slot] = c->n_past;
}

int mp_ctx_eval(mp_ctx *c, const int32_t *ids, int n, float *logits, bool all, mp_err *err)
{
    if (n <= 0) return mp_err_set(err, MP_E_INVAL, "nothing to evaluate");
    if (c->n_past + n > c->n_ctx)
        return mp_err_set(err, MP_E_RANGE, "context full: %d tokens + %d new exceed the context size %d (use -c)",
                          c->n_past, n, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= c->m->hp.n_vocab)
            return mp_err_set(err, MP_E_INVAL, "token id %d at position %d is out of range [0, %u)", ids[i], i,
                              c->m->hp.n_vocab);
    const int n_past0 = c->n_past;
    const int64_t V = c->m->hp.n_vocab;
    for (int s = 0; s < n; s += c->n_batch) {
        const int T = n - s < c->n_batch ? n - s : c->n_batch;
        float *lg = logits ? (all ? logits + (int64_t)s * V : logits) : NULL;
        int rc = eval_chunk(c, ids + s, T, lg, all, s + T == n, err);
        if (rc) {
            /* back to n_past0, unless a later chunk slid the window past
             * what n_past0 needs, or a recurrent state advanced part-way:
             * then nothing is kept */
            if (c->m->hp.n_layer_recr || mp_ctx_truncate(c, n_past0) != MP_OK) mp_ctx_truncate(c, 0);
            return rc;
        }
    }
    if (n > 1) ckpt_save(c); /* a prompt's end: where a later prompt sharing it resumes */
    return MP_OK;
}

/* ---- lifetime ----------------------------------------------------------- */

int mp_ctx_kv_cells(const mp_model *m, uint32_t il, int n_ctx, int n_batch)
{
    const mp_hparams *hp = &m->hp;
    if (m->layers && m->layers[il].recurrent) return 0; /* a recurrent state instead */
    if (!mp_layer_is_swa(hp, il)) return n_ctx;
    /* the window before a chunk's first query, the alignment of the first
     * cell kept (swa_slide) and the chunk; padded to 256 as llama.cpp pads
     * its sliding-window cache (pad(n_swa + n_ubatch, 256), the same size
     * unless that leaves less than MP_SWA_ALIGN - 2 cells of slack) */
    const int64_t need = ((int64_t)hp->n_swa - 1 + n_batch + MP_SWA_ALIGN - 1 + 255) / 256 * 256;
    return need < n_ctx ? (int)need : n_ctx;
}

uint64_t mp_ctx_kv_bytes(const mp_model *m, int n_ctx, int n_batch)
{
    const mp_hparams *hp = &m->hp;
    /* MLA's latent cache keeps one row of kv_lora + n_rot per token: the value is its prefix */
    const uint64_t per_head = hp->kv_in_k ? hp->head_dim : hp->head_dim + hp->head_dim_v;
    uint64_t cells = 0;
    for (uint32_t il = 0; il < hp->n_layer; il++) cells += (uint64_t)mp_ctx_kv_cells(m, il, n_ctx, n_batch);
    return cells * hp->n_head_kv * per_head * 2u + mp_ctx_state_bytes(m);
}

uint64_t mp_ctx_state_bytes(const mp_model *m)
{
    const mp_hparams *hp = &m->hp;
    return (uint64_t)hp->n_layer_recr * (mp_hp_conv_state(hp) + mp_hp_ssm_state(hp)) * sizeof(float);
}

/* Every scratch buffer of a context lives in one 64-byte-aligned block laid
 * out by scratch_layout, so the planner's figure (mp_ctx_scratch_bytes) and
 * what create allocates cannot drift apart. With c == NULL only the size is
 * computed; otherwise the pointers are set into base. */
static uint64_t scratch_layout(mp_ctx *c, uint8_t *base, const mp_model *m, int n_ctx, int n_batch, int n_threads)
{
    const mp_hparams *hp = &m->hp;
    const int64_t B = n_batch, E = hp->n_embd;
    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim, Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v, Do = (int64_t)hp->n_head * hp->head_dim_v;
    const int64_t K = hp->n_expert ? hp->n_expert_used : 1, X = hp->n_expert ? hp->n_expert : 1;
    int64_t F = hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp;
    if ((int64_t)hp->n_ff_shexp > F) F = hp->n_ff_shexp;
    const int64_t ffn_rows = B * K; /* MoE: one row per (token, slot) */
    /* MLA (0 otherwise) */
    const int64_t H = hp->n_head, mla_dk = hp->mla ? hp->mla_dk : 0, mla_dv = hp->mla ? hp->mla_dv : 0;
    int64_t Dmq = hp->mla_absorbed ? H * mla_dk : 0;
    if (hp->mla && hp->q_lora > Dmq) Dmq = hp->q_lora;
    const int64_t Dmkv = hp->mla ? hp->kv_lora + hp->n_rot : 0;
    const int64_t Dmkvb = hp->mla && !hp->mla_absorbed ? H * (mla_dk - hp->n_rot + mla_dv) : 0;
    const int64_t Dmo = hp->mla_absorbed ? H * mla_dv : 0;
    /* Gated DeltaNet (0 otherwise) */
    const int64_t Hv = hp->n_layer_recr ? hp->ssm_n_v : 0, Sd = hp->ssm_d_state;
    const int64_t conv_dim = hp->n_layer_recr ? (2 * (int64_t)hp->ssm_n_k + Hv) * Sd : 0, vdim = Hv * Sd;
    int64_t max_cols = E;
    if (vdim > max_cols) max_cols = vdim;
    if (Dmq > max_cols) max_cols = Dmq;
    if (Dmkv > max_cols) max_cols = Dmkv;
    if (Dmo > max_cols) max_cols = Dmo;
    if (Dq > max_cols) max_cols = Dq;
    if (Do > max_cols) max_cols = Do;
    if (F > max_cols) max_cols = F;
    const size_t act_stride = ((size_t)max_cols * 4 + 63) & ~(size_t)63; /* f32 is the widest activation type */
    const int kbuf_stride = (int)(hp->head_dim > hp->head_dim_v ? hp->head_dim : hp->head_dim_v);
    /* n_ctx scores, or the split path's f16 accumulator and partial output
     * (2 * head_dim_v floats): MLA's value heads (kv_lora, 512) can exceed a
     * short context's n_ctx / 2 */
    int64_t per_thread_scores = n_ctx > kbuf_stride ? n_ctx : kbuf_stride;
    if (2 * (int64_t)hp->head_dim_v > per_thread_scores) per_thread_scores = 2 * (int64_t)hp->head_dim_v;

    uint64_t off = 0;
#define CARVE(field, count)                                                                                            \
    do {                                                                                                               \
        if (c) c->field = (void *)(base + off);                                                                        \
        off += ((uint64_t)(count) * sizeof *c->field + 63) & ~(uint64_t)63;                                           \
    } while (0)
    CARVE(h, B * E);
    CARVE(xn, B * E);
    CARVE(q, B * Dq * (hp->attn_gate ? 2 : 1));
    CARVE(k, B * Dk);
    CARVE(v, B * Dv);
    CARVE(att, B * Do);
    CARVE(tmp, B * E);
    CARVE(shx, hp->n_shared ? B * E : 0);
    CARVE(shg, hp->n_shared ? B : 0);
    CARVE(mq, B * Dmq);
    CARVE(mkv, B * Dmkv);
    CARVE(mkvb, B * Dmkvb);
    CARVE(mo, B * Dmo);
    CARVE(qgate, hp->attn_gate ? B * Dq : 0);
    CARVE(gqkv, B * conv_dim);
    CARVE(gx, B * conv_dim);
    CARVE(gz, B * vdim);
    CARVE(gout, B * vdim);
    CARVE(gba, B * 2 * Hv);
    CARVE(ggb, B * 2 * Hv);
    CARVE(gones, conv_dim);
    CARVE(gin, hp->ssm_in_legacy ? B * (conv_dim + vdim) : 0);
    CARVE(router, B * X);
    CARVE(sel, B * K);
    CARVE(selw, B * K);
    CARVE(ex_count, X);
    CARVE(ex_off, X);
    CARVE(entry_tok, B * K);
    CARVE(slot_entry, B * K);
    CARVE(hg, ffn_rows * F);
    CARVE(hu, ffn_rows * F);
    CARVE(dout, ffn_rows * E);
    CARVE(scores, (int64_t)n_threads * per_thread_scores);
    CARVE(kbuf, (int64_t)n_threads * 2 * kbuf_stride);
    CARVE(xq, (uint64_t)B * act_stride);
    CARVE(xg, (uint64_t)ffn_rows * act_stride);
#undef CARVE
    if (c) {
        c->act_stride = act_stride;
        c->kbuf_stride = kbuf_stride;
        c->scores_stride = per_thread_scores;
    }
    return off;
}

uint64_t mp_ctx_scratch_bytes(const mp_model *m, int n_ctx, int n_batch, int n_threads)
{
    return scratch_layout(NULL, NULL, m, n_ctx, n_batch, n_threads);
}

int mp_ctx_create(mp_ctx **out, const mp_model *m, mp_experts *x, const mp_ctx_params *p, mp_err *err)
{
    *out = NULL;
    const mp_hparams *hp = &m->hp;
    mp_ctx *c = calloc(1, sizeof *c);
    if (!c) return mp_err_set(err, MP_E_NOMEM, "out of memory");
    c->m = m;
    c->x = x;
    c->n_ctx = mp_default_n_ctx(p ? p->n_ctx : 0, hp->n_ctx_train);
    c->n_batch = mp_default_n_batch(p ? p->n_batch : 0, c->n_ctx);
    c->n_threads = mp_default_threads(p ? p->n_threads : 0);

    const uint64_t scratch = scratch_layout(NULL, NULL, m, c->n_ctx, c->n_batch, c->n_threads);
    if (posix_memalign((void **)&c->scratch, 64, (size_t)scratch)) c->scratch = NULL;
    else scratch_layout(c, c->scratch, m, c->n_ctx, c->n_batch, c->n_threads);
    const int64_t Dk = (int64_t)hp->n_head_kv * hp->head_dim, Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    size_t kv_elems = 0; /* cells of all layers, one sequence */
    c->kv_row0 = calloc(hp->n_layer, sizeof *c->kv_row0);
    c->swa_cells = c->n_ctx;
    for (uint32_t il = 0; c->kv_row0 && il < hp->n_layer; il++) {
        const int cells = mp_ctx_kv_cells(m, il, c->n_ctx, c->n_batch);
        if (mp_layer_is_swa(hp, il)) c->swa_cells = cells;
        c->kv_row0[il] = (int64_t)kv_elems;
        kv_elems += (size_t)cells;
    }
    c->kv_cells = kv_elems;
    c->n_seq = p && p->n_seq > 0 ? p->n_seq : 1;
    const size_t S = (size_t)c->n_seq;
    c->kc = c->kc_all = calloc(kv_elems * (size_t)Dk * S + 1, sizeof(uint16_t));
    c->vc = c->vc_all = hp->kv_in_k ? NULL : calloc(kv_elems * (size_t)Dv * S + 1, sizeof(uint16_t));
    c->seq_n_past = calloc(S, sizeof *c->seq_n_past);
    c->seq_swa_base = calloc(S, sizeof *c->seq_swa_base);
    const size_t n_conv = (size_t)hp->n_layer_recr * (size_t)mp_hp_conv_state(hp);
    const size_t n_ssm = (size_t)hp->n_layer_recr * (size_t)mp_hp_ssm_state(hp);
    c->conv_state = c->conv_all = n_conv ? calloc(n_conv * S, sizeof(float)) : NULL;
    c->ssm_state = c->ssm_all = n_ssm ? calloc(n_ssm * S, sizeof(float)) : NULL;
    c->n_ckpt = hp->n_layer_recr && p && p->n_ckpt > 0 ? p->n_ckpt : 0;
    if (c->n_ckpt) {
        c->ckpt_pos = malloc(S * (size_t)c->n_ckpt * sizeof *c->ckpt_pos);
        c->ckpt_all = malloc(S * (size_t)c->n_ckpt * (n_conv + n_ssm) * sizeof(float));
        for (size_t i = 0; c->ckpt_pos && i < S * (size_t)c->n_ckpt; i++) c->ckpt_pos[i] = -1;
    }
    c->pool = mp_pool_create(c->n_threads);
    if (!c->scratch || !c->kv_row0 || !c->kc || (!c->vc && !hp->kv_in_k) || !c->pool || !c->seq_n_past ||
        !c->seq_swa_base || (n_conv && !c->conv_state) || (n_ssm && !c->ssm_state) ||
        (c->n_ckpt && (!c->ckpt_pos || !c->ckpt_all))) {
        const int n_ctx = c->n_ctx, n_batch = c->n_batch, n_seq = c->n_seq;
        mp_ctx_free(c);
        return mp_err_set(err, MP_E_NOMEM, "out of memory allocating the context (n_ctx %d, n_batch %d, %d sequence(s): %.1f MiB)",
                          n_ctx, n_batch, n_seq, (double)(scratch + mp_ctx_kv_bytes(m, n_ctx, n_batch) * (uint64_t)n_seq) / 1048576.0);
    }
    memset(c->scratch, 0, (size_t)scratch); /* as calloc'd buffers were: no stale reads, ever */
    for (int64_t i = 0; hp->n_layer_recr && i < (2 * (int64_t)hp->ssm_n_k + hp->ssm_n_v) * hp->ssm_d_state; i++)
        c->gones[i] = 1.0f;
    mp_kernels_init();
    *out = c;
    return MP_OK;
}

void mp_ctx_free(mp_ctx *c)
{
    if (!c) return;
    mp_pool_free(c->pool);
    free(c->kc_all);
    free(c->vc_all);
    free(c->seq_n_past);
    free(c->seq_swa_base);
    free(c->kv_row0);
    free(c->conv_all);
    free(c->ssm_all);
    free(c->ckpt_pos);
    free(c->ckpt_all);
    free(c->scratch);
    free(c);
}

int mp_ctx_n_ctx(const mp_ctx *c) { return c->n_ctx; }
int mp_ctx_n_batch(const mp_ctx *c) { return c->n_batch; }
int mp_ctx_n_past(const mp_ctx *c) { return c->n_past; }
int mp_ctx_n_seq(const mp_ctx *c) { return c->n_seq; }
int mp_ctx_n_ckpt(const mp_ctx *c) { return c->n_ckpt; }
int mp_ctx_seq(const mp_ctx *c) { return c->seq; }
void mp_ctx_set_seq(mp_ctx *c, int seq)
{
    if (seq < 0 || seq >= c->n_seq || seq == c->seq) return;
    const mp_hparams *hp = &c->m->hp;
    c->seq_n_past[c->seq] = c->n_past;
    c->seq_swa_base[c->seq] = c->swa_base;
    c->seq = seq;
    c->n_past = c->seq_n_past[seq];
    c->swa_base = c->seq_swa_base[seq];
    c->kc = c->kc_all + c->kv_cells * (size_t)hp->n_head_kv * hp->head_dim * (size_t)seq;
    if (c->vc_all) c->vc = c->vc_all + c->kv_cells * (size_t)hp->n_head_kv * hp->head_dim_v * (size_t)seq;
    if (c->conv_all) c->conv_state = c->conv_all + (size_t)hp->n_layer_recr * mp_hp_conv_state(hp) * (size_t)seq;
    if (c->ssm_all) c->ssm_state = c->ssm_all + (size_t)hp->n_layer_recr * mp_hp_ssm_state(hp) * (size_t)seq;
}
int mp_ctx_truncate_min(const mp_ctx *c)
{
    /* the next chunk's first query at n_past sees n_past - n_swa + 1.. */
    return c->swa_base > 0 ? c->swa_base + (int)c->m->hp.n_swa - 1 : 0;
}

int mp_ctx_truncate(mp_ctx *c, int n_past)
{
    if (n_past < 0 || n_past > c->n_past) return MP_E_RANGE;
    if (n_past == c->n_past) return MP_OK;
    const mp_hparams *hp = &c->m->hp;
    if (n_past == 0) {
        c->swa_base = 0; /* nothing kept: the cells start over */
        if (hp->n_layer_recr) {
            memset(c->conv_state, 0, (size_t)hp->n_layer_recr * (size_t)mp_hp_conv_state(hp) * sizeof(float));
            memset(c->ssm_state, 0, (size_t)hp->n_layer_recr * (size_t)mp_hp_ssm_state(hp) * sizeof(float));
        }
    } else if (hp->n_layer_recr) {
        /* a recurrent state holds no earlier positions, only its checkpoints
         * do: the caller truncates to one (or to 0) and evaluates again the
         * rest of the prefix it wants to keep */
        const int *pos = c->ckpt_pos + c->seq * c->n_ckpt;
        int slot = -1;
        for (int i = 0; i < c->n_ckpt; i++)
            if (pos[i] == n_past) slot = i;
        if (slot < 0) return MP_E_UNSUPPORTED;
        const float *d = ckpt_data(c, slot);
        memcpy(c->conv_state, d, conv_floats(hp) * sizeof(float));
        memcpy(c->ssm_state, d + conv_floats(hp), ssm_floats(hp) * sizeof(float));
    } else if (n_past < mp_ctx_truncate_min(c)) {
        return MP_E_RANGE;
    }
    c->n_past = n_past;
    /* checkpoints past n_past hold a prefix the next evals replace */
    for (int i = 0; i < c->n_ckpt; i++)
        if (c->ckpt_pos[c->seq * c->n_ckpt + i] > n_past) c->ckpt_pos[c->seq * c->n_ckpt + i] = -1;
    return MP_OK;
}

int mp_ctx_resume_point(const mp_ctx *c, int n_past)
{
    if (n_past >= c->n_past) return c->n_past;
    if (n_past <= 0) return 0;
    if (c->m->hp.n_layer_recr) {
        int best = 0;
        for (int i = 0; i < c->n_ckpt; i++) {
            const int p = c->ckpt_pos[c->seq * c->n_ckpt + i];
            if (p <= n_past && p > best) best = p;
        }
        return best;
    }
    return n_past < mp_ctx_truncate_min(c) ? 0 : n_past;
}
void mp_ctx_set_route_override(mp_ctx *c, mp_route_override_fn fn, void *ud)
{
    c->route_override = fn;
    c->override_ud = ud;
}

void mp_ctx_set_backend(mp_ctx *c, struct mp_backend *be) { c->be = be; }

void mp_ctx_set_route_cb(mp_ctx *c, mp_route_fn fn, void *ud)
{
    c->route_cb = fn;
    c->route_ud = ud;
}

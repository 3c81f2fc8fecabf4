#include "deltanet.h"

#include "kernels/kernels.h"
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

typedef struct gdn_job {
    const mp_gdn_io *io;
    int64_t S, Hk, Hv, conv_dim, vdim;
    int dc; /* conv taps */
    mp_vec_dot_fn dot;
} gdn_job;

/* Phase A, per channel c: x[t][c] = sum_i s[t + i] w[c][i] over the taps,
 * s = [conv state (d_conv - 1) | qkv[0..T)[c]]; a float sum in tap order
 * (ggml_ssm_conv; its build contracts the sum into FMAs). The state keeps
 * the last d_conv - 1 inputs. */
static void conv_worker(void *arg, int ith, long lo, long hi)
{
    (void)ith;
    const gdn_job *j = arg;
    const mp_gdn_io *io = j->io;
    const int dc = j->dc, T = io->T;
    const int64_t C = j->conv_dim;
    const float *W = io->l->ssm_conv1d.data;
    float s[64 + 512]; /* one channel's window of a piece of tokens */
    for (long c = lo; c < hi; c++) {
        float *st = io->conv_state + c * (dc - 1);
        const float *w = W + c * dc;
        for (int t0 = 0; t0 < T; t0 += 512) {
            const int nt = T - t0 < 512 ? T - t0 : 512;
            memcpy(s, st, (size_t)(dc - 1) * sizeof(float));
            for (int t = 0; t < nt; t++) s[dc - 1 + t] = io->qkv[(int64_t)(t0 + t) * C + c];
            for (int t = 0; t < nt; t++) {
                float sum = 0.0f;
                for (int i = 0; i < dc; i++) sum = fmaf(s[t + i], w[i], sum);
                io->x[(int64_t)(t0 + t) * C + c] = sum;
            }
            memcpy(st, s + nt, (size_t)(dc - 1) * sizeof(float));
        }
    }
}

/* ggml_rms_norm(x, eps / n) then ggml_scale(1 / sqrt(n)): llama.cpp's L2
 * norm of the DeltaNet q and k (build_gdn_l2_norm). */
static void l2_norm(float *x, int64_t n, float eps)
{
    const float fn = (float)n;
    mp_rmsnorm(x, x, NULL, n, eps / fn);
    const float sc = 1.0f / sqrtf(fn);
    for (int64_t i = 0; i < n; i++) x[i] *= sc;
}

/* Phase B, per token: SiLU over the conv row (ggml_silu: rows of conv_dim),
 * L2 norms of the q and k heads, beta = sigmoid(b), g = softplus(alpha +
 * dt) * a. */
static void token_worker(void *arg, int ith, long lo, long hi)
{
    (void)ith;
    const gdn_job *j = arg;
    const mp_gdn_io *io = j->io;
    const mp_hparams *hp = io->hp;
    const int64_t S = j->S, Hk = j->Hk, Hv = j->Hv, C = j->conv_dim, r = Hv / Hk;
    const float *dt = io->l->ssm_dt.data, *A = io->l->ssm_a.data;
    for (long t = lo; t < hi; t++) {
        float *x = io->x + t * C;
        mp_swiglu(x, io->ones, C);
        for (int64_t h = 0; h < 2 * Hk; h++) l2_norm(x + h * S, S, hp->rms_eps);
        float *g = io->gb + t * 2 * Hv, *beta = g + Hv;
        const float *b = io->b + t * io->ldba;
        for (int64_t h = 0; h < Hv; h++) {
            float bl, al;
            if (io->a) { /* qwen35moe: ssm_beta, ssm_alpha */
                bl = b[h];
                al = io->a[t * io->ldba + h];
            } else { /* qwen3next ssm_ba: per k head [beta (r) | alpha (r)] */
                bl = b[(h / r) * 2 * r + h % r];
                al = b[(h / r) * 2 * r + r + h % r];
            }
            beta[h] = 1.0f / (1.0f + expf(-bl));
            const float ab = al + dt[h];
            const float sp = ab > 20.0f ? ab : logf(1.0f + expf(ab));
            g[h] = sp * A[h];
        }
    }
}

/* Phase C, per v head: the delta rule over the chunk's tokens (ggml's
 * gated_delta_net CPU op: state rows scaled by exp(g), dots by ggml's f32
 * vec_dot, the rank-1 update by FMA), then the gated RMSNorm of each
 * token's output head. */
static void head_worker(void *arg, int ith, long lo, long hi)
{
    (void)ith;
    const gdn_job *j = arg;
    const mp_gdn_io *io = j->io;
    const mp_hparams *hp = io->hp;
    const int64_t S = j->S, Hk = j->Hk, Hv = j->Hv, C = j->conv_dim, r = Hv / Hk;
    const float scale = 1.0f / sqrtf((float)S);
    float delta[1024];
    for (long h = lo; h < hi; h++) {
        const int64_t kh = hp->ssm_kv_tiled ? h % Hk : h / r;
        float *M = io->ssm_state + h * S * S;
        for (int t = 0; t < io->T; t++) {
            const float *x = io->x + (int64_t)t * C;
            const float *q = x + kh * S, *k = x + (Hk + kh) * S, *v = x + 2 * Hk * S + h * S;
            const float eg = expf(io->gb[(int64_t)t * 2 * Hv + h]);
            const float beta = io->gb[(int64_t)t * 2 * Hv + Hv + h];
            for (int64_t i = 0; i < S * S; i++) M[i] *= eg;
            for (int64_t jj = 0; jj < S; jj++) {
                float sum = 0.0f;
                j->dot(S, &sum, M + jj * S, k);
                delta[jj] = (v[jj] - sum) * beta;
            }
            for (int64_t jj = 0; jj < S; jj++) {
                float *row = M + jj * S;
                const float d = delta[jj];
                for (int64_t i = 0; i < S; i++) row[i] = fmaf(k[i], d, row[i]);
            }
            float *o = io->out + (int64_t)t * j->vdim + h * S;
            for (int64_t jj = 0; jj < S; jj++) {
                float sum = 0.0f;
                j->dot(S, &sum, M + jj * S, q);
                o[jj] = sum * scale;
            }
            /* rmsnorm(o) * ssm_norm, times silu(z) (ggml_silu over rows of S) */
            mp_rmsnorm(o, o, io->l->ssm_norm.data, S, hp->rms_eps);
            float *z = io->z + (int64_t)t * j->vdim + h * S;
            mp_swiglu(z, o, S);
            memcpy(o, z, (size_t)S * sizeof(float));
        }
    }
}

void mp_gdn_forward(mp_pool *pool, const mp_gdn_io *io)
{
    const mp_hparams *hp = io->hp;
    gdn_job j = {
        .io = io,
        .S = hp->ssm_d_state,
        .Hk = hp->ssm_n_k,
        .Hv = hp->ssm_n_v,
        .dc = (int)hp->ssm_d_conv,
        .dot = mp_get_vec_dot(MP_TYPE_F32),
    };
    j.conv_dim = (2 * j.Hk + j.Hv) * j.S;
    j.vdim = j.Hv * j.S;
    mp_pool_for(pool, (long)j.conv_dim, 1 + 16384 / (io->T * j.dc + 1), conv_worker, &j);
    mp_pool_for(pool, io->T, 1 + 16384 / j.conv_dim, token_worker, &j);
    mp_pool_for(pool, (long)j.Hv, 1, head_worker, &j);
}

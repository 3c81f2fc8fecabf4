/* A trained routing predictor file (--predictor FILE): GGUF, architecture
 * "moepager-predictor", written by tools/train_predictor.py.
 *
 *   predictor.n_embd, predictor.n_expert, predictor.n_expert_used  u32: the model it fits
 *   predictor.src, predictor.dst, predictor.ahead   arrays of n integers: net i maps
 *       the residual entering MoE layer src[i]'s FFN to MoE layer dst[i]'s gate
 *       probabilities, ahead[i] tokens later (experts/predict.h, mp_pred_net)
 *   predictor.prev_h  u32, optional: 1 when every net also takes the residual its layer
 *                     dst had on the token before (mp_pred_net.prev_h)
 *   net.I.fc1.weight  F32 [n_embd, hidden]; [2 n_embd, hidden] with predictor.prev_h;
 *                     otherwise [n_embd + n_expert, hidden] for a net that also takes the
 *                     flags of dst's last picks (mp_pred_net.prev_picks)
 *   net.I.fc1.bias    F32 [hidden]
 *   net.I.fc2.weight  F32 [hidden, n_expert] net.I.fc2.bias  F32 [n_expert]
 *
 * Layers are counted among the layers with routed experts (as in routing
 * traces: 0 = the first MoE layer); the nets the loader returns carry the
 * model's layer numbers. */
#ifndef MP_RUNTIME_PREDICTOR_FILE_H
#define MP_RUNTIME_PREDICTOR_FILE_H

#include "common/err.h"
#include "experts/experts.h"
#include "experts/predict.h"

#include <stdbool.h>
#include <stdint.h>

#define MP_PRED_FILE_MAX_NETS 1024
#define MP_PRED_FILE_MAX_LAYERS 4096

typedef struct mp_pred_file {
    mp_pred_net *nets;
    int n_nets;
    float *data; /* every net's weights, copied out of the file */
    uint64_t bytes; /* the weights, and with prev_h the layers' last residuals the predictor keeps */
} mp_pred_file;

/* Reads path and checks it against a model of shape sh (its layers, which
 * of them have routed experts, n_embd, experts and experts used). On error,
 * one message naming the file and, where it applies, the net and tensor;
 * *out is untouched. */
int mp_pred_file_load(const char *path, const mp_experts_shape *sh, mp_pred_file *out, mp_err *err);
void mp_pred_file_free(mp_pred_file *f); /* the nets and their data; the struct itself is the caller's */

#endif

/* Hidden-state records: for every token and MoE layer, the residual stream
 * entering the layer's FFN (what lookahead predicts from) and the experts
 * the layer picked. `moepager run|logits --hidden-out FILE` writes them;
 * tools/train_predictor.py trains a routing predictor on them.
 *
 * Binary, little-endian (docs/TRACE_FORMAT.md, "Hidden-state records"):
 *   header: "MPHIDDEN", u32 version (1), u32 n_embd, u32 k, u32 n_moe_layers
 *   record: u32 moe_layer, u32 position, i32 experts[k], f32 h[n_embd]
 */
#ifndef MP_TRACE_HIDDEN_H
#define MP_TRACE_HIDDEN_H

#include "common/err.h"

#include <stdint.h>

#define MP_HIDDEN_MAGIC "MPHIDDEN"
#define MP_HIDDEN_VERSION 1u

typedef struct mp_hidden_writer mp_hidden_writer;

/* Creates (truncates) path and writes the header. */
int mp_hidden_writer_open(const char *path, uint32_t n_embd, uint32_t k, uint32_t n_moe_layers,
                          mp_hidden_writer **out, mp_err *err);

/* Appends one record (experts: k of them; h: n_embd floats). MP_OK or MP_E_IO. */
int mp_hidden_writer_write(mp_hidden_writer *w, uint32_t moe_layer, uint32_t pos, const int32_t *experts,
                           const float *h);

/* Flushes and closes; frees w (NULL-safe). MP_E_IO naming the file if a
 * write or the close failed. */
int mp_hidden_writer_close(mp_hidden_writer *w, mp_err *err);

#endif

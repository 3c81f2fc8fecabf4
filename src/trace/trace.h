/* Routing traces: which experts each token used at each MoE layer.
 *
 * Format: JSON lines (UTF-8 text, one JSON object per line, blank lines
 * ignored), one object per (sequence, token, layer):
 *
 *   {"problem_id": 0, "token_idx": 5, "layer": 3,
 *    "experts": [34, 28, 21, 47, 3, 12],
 *    "gating_probs": [0.0998, 0.0523, 0.0417, 0.0384, 0.0326, 0.0296]}
 *
 *   problem_id    the sequence (prompt, request) the token belongs to: an
 *                 integer or a string; tokens of one sequence share it.
 *   token_idx     position of the token in its sequence, integer >= 0.
 *   layer         MoE layer index, integer >= 0 (0 = first MoE layer).
 *   experts       the k routed experts selected, best first: integers >= 0,
 *                 no repeats, 1 <= k <= MP_TRACE_MAX_K.
 *   gating_probs  optional; the router's weights for those experts, same
 *                 length and order (whatever the architecture reports:
 *                 softmax probabilities, or renormalised weights).
 *
 * Keys may come in any order; other keys ("dataset", "token_id", ...) are
 * accepted and ignored. Records are normally ordered by sequence, token,
 * layer; readers do not depend on it (replay sorts, see replay.h).
 * docs/TRACE_FORMAT.md says the same for users. */
#ifndef MP_TRACE_H
#define MP_TRACE_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_TRACE_MAX_K 256            /* most experts in one record */
#define MP_TRACE_MAX_LAYER 65535      /* largest layer index accepted */
#define MP_TRACE_MAX_EXPERT 1048575   /* largest expert id accepted */

typedef struct mp_trace_rec {
    uint32_t problem;   /* index of its problem_id in order of first appearance */
    uint32_t layer;
    int64_t token_idx;
    uint32_t k;         /* number of experts */
    uint32_t line;      /* its line in the file, 1-based (for messages; saturates) */
    size_t off;         /* experts and probs at trace->experts[off .. off + k) */
    bool has_probs;     /* the line had gating_probs */
} mp_trace_rec;

typedef struct mp_trace {
    size_t n_recs;
    mp_trace_rec *recs;  /* (n_recs) in file order */
    uint32_t *experts;   /* (sum of k) */
    float *probs;        /* (sum of k); 0 where the file had no gating_probs */
    uint32_t n_problems; /* distinct problem_id values */
    uint32_t n_layers;   /* 1 + largest layer seen (0 for an empty trace) */
    uint32_t n_experts;  /* 1 + largest expert id seen */
    uint32_t k_max;      /* largest k seen */
} mp_trace;

/* Reads a trace file. On success *out owns everything (free with
 * mp_trace_free) and returns MP_OK. A malformed line gives MP_E_CORRUPT and a
 * message "FILE:LINE: what was wrong"; unreadable files MP_E_IO; MP_E_NOMEM.
 * Hostile input never reads or writes out of bounds. */
int mp_trace_read(const char *path, mp_trace **out, mp_err *err);

/* Same, from len bytes of memory (need not be NUL-terminated); name is used
 * in messages only. */
int mp_trace_parse(const char *name, const char *buf, size_t len, mp_trace **out, mp_err *err);

/* NULL-safe. */
void mp_trace_free(mp_trace *t);

typedef struct mp_trace_writer mp_trace_writer;

/* Creates (truncates) path for writing a trace. dataset, if not NULL, is
 * written as a "dataset" key on every line (a model name, say). */
int mp_trace_writer_open(const char *path, const char *dataset, mp_trace_writer **out, mp_err *err);

/* Appends one record: the k experts chosen at a layer for one token, best
 * first, and their weights (probs may be NULL: then the line has no
 * gating_probs). Floats are written with 9 significant digits, so they read
 * back bit-exact. Returns MP_OK, MP_E_INVAL (k == 0 or k > MP_TRACE_MAX_K or
 * a negative expert) or MP_E_IO. */
int mp_trace_writer_write(mp_trace_writer *w, int64_t problem_id, int64_t token_idx, uint32_t layer,
                          const int32_t *experts, const float *probs, uint32_t k, mp_err *err);

/* Flushes and closes; frees w (NULL-safe, then MP_OK). Returns MP_E_IO if any
 * write or the close failed, naming the file. */
int mp_trace_writer_close(mp_trace_writer *w, mp_err *err);

#endif

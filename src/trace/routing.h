/* A routing table for replay: the experts and weights a recorded trace
 * (trace.h) gives every (position, MoE layer) of a run, so that a run can
 * use recorded routing instead of its own router (--routing-trace) and the
 * oracle predictor can read the same routing.
 *
 * Position mapping. A run has one sequence of positions 0, 1, 2, ...; a
 * trace may hold several sequences (problem_id). With one_seq, position p
 * is token_idx p of the chosen sequence (index in order of first
 * appearance). Otherwise the sequences are concatenated in order of first
 * appearance: sequence s starts at the position after the last one of
 * sequence s-1 (its largest token_idx + 1), so a long run walks the whole
 * trace. A (position, layer) the trace has no record for is a hole: lookups
 * return NULL and the caller reports it.
 *
 * Layers: trace layer i is the model's i-th MoE layer (dense layers are not
 * counted). Weights: the record's gating_probs, as written; a record
 * without them gets 1/k for each of its k experts. */
#ifndef MP_TRACE_ROUTING_H
#define MP_TRACE_ROUTING_H

#include "common/err.h"
#include "trace/trace.h"

#include <stdbool.h>
#include <stdint.h>

/* Positions above this are refused (a context never holds more). */
#define MP_ROUTING_MAX_POS ((int64_t)1 << 24)
/* Table entries (positions x layers x k) above this are refused (8 bytes each). */
#define MP_ROUTING_MAX_ENTRIES ((uint64_t)1 << 27)

typedef struct mp_routing_opts {
    bool one_seq;       /* only sequence `seq`; else every sequence, concatenated */
    uint32_t seq;       /* index in order of first appearance (with one_seq) */
    uint32_t n_layers;  /* the model's MoE layers: the trace must route exactly these */
    uint32_t n_experts; /* the model's experts per layer: every id must be below */
    uint32_t k;         /* the model's experts per token: every record must have k */
} mp_routing_opts;

typedef struct mp_routing mp_routing;

/* Builds the table of trace t (name: the file, for messages) for a model of
 * the shape in o. Returns MP_OK and *out (free with mp_routing_free), or
 * MP_E_INVAL with one line naming the file (and the line, where one record
 * is at fault) and what does not fit: a layer, expert or k the model lacks,
 * two records for one (sequence, token, layer), fewer layers than the
 * model's, a sequence that is not there, a table too large; MP_E_NOMEM. */
int mp_routing_build(const mp_trace *t, const char *name, const mp_routing_opts *o, mp_routing **out, mp_err *err);

/* mp_trace_read(path) then mp_routing_build. */
int mp_routing_load(const char *path, const mp_routing_opts *o, mp_routing **out, mp_err *err);

void mp_routing_free(mp_routing *r); /* NULL-safe */

/* The k experts (best first) of position pos at MoE layer `layer`, and
 * their weights in *weights (may be NULL); NULL for a hole or a position or
 * layer outside the table. Valid until mp_routing_free. */
const int32_t *mp_routing_get(const mp_routing *r, int64_t pos, uint32_t layer, const float **weights);

const char *mp_routing_name(const mp_routing *r); /* the file */
int64_t mp_routing_n_pos(const mp_routing *r);    /* positions 0 .. n_pos-1 are mapped */
uint32_t mp_routing_n_seqs(const mp_routing *r);  /* sequences used (1 with one_seq) */
uint32_t mp_routing_k(const mp_routing *r);
/* Records used that had no gating_probs (their weights are 1/k). */
uint64_t mp_routing_n_uniform(const mp_routing *r);
/* The sequence (index) and token_idx that position pos (< n_pos) stands for. */
void mp_routing_locate(const mp_routing *r, int64_t pos, uint32_t *seq, int64_t *token_idx);

#endif

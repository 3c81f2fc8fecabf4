/* Samplers: greedy, temperature, top-k, top-p, min-p, repetition penalty,
 * seeded. The order matches llama.cpp's default chain: repetition penalty,
 * top-k, top-p, min-p, temperature, then a seeded draw (temp <= 0: greedy).
 *
 * Semantics (llama.cpp's, with min_keep = 0):
 *  - repetition penalty: every distinct token among the last repeat_last_n
 *    accepted tokens has its logit divided by repeat_penalty when positive,
 *    multiplied when <= 0 (once, however often it occurs).
 *  - top-k keeps the k largest logits.
 *  - top-p keeps the shortest prefix, in descending probability, whose
 *    probability mass (softmax of the penalised logits, before temperature)
 *    reaches top_p; at least one token.
 *  - min-p keeps tokens whose probability is >= min_p * p_max, i.e. whose
 *    logit is >= max_logit + log(min_p).
 *  - temperature divides the surviving logits; the draw is from their softmax.
 *  - temp <= 0 is greedy: the argmax of the penalised logits (the filters
 *    all keep the maximum, so they cannot change it). Ties go to the lowest
 *    token id, here and in every ordering the filters make.
 * NaN logits are treated as -inf.
 *
 * Randomness: xoshiro256** seeded through splitmix64 from `seed`. Every seed,
 * 0 included, is an ordinary fixed seed: the same seed, parameters and
 * logits give the same tokens on every run and machine. Callers who want a
 * fresh stream each run pass a time-derived seed themselves. One 64-bit
 * draw per non-greedy sample; greedy samples draw nothing.
 *
 * Cost: O(n_vocab) per sample plus sorting only the survivors: top-k
 * (k <= 4096) keeps a k-heap while scanning the logits, larger k selects
 * then sorts; top-p without top-k bins tokens by log-probability and sorts
 * only the bin where the cut falls. No allocation after create. Not
 * thread-safe: one sampler per sequence. */
#ifndef MP_SAMPLE_H
#define MP_SAMPLE_H

#include "moepager/moepager.h"

#include <stdbool.h>
#include <stdint.h>

/* mp_sampler_params and the mp_sampler handle are public (moepager.h). */

/* Makes a sampler for a vocabulary of n_vocab (>= 1) tokens; copies *p.
 * Preallocates n_vocab candidates and the history ring (about
 * 12 * n_vocab + 4 * repeat_last_n bytes). NULL on OOM or n_vocab < 1. */
mp_sampler *mp_sampler_create(const mp_sampler_params *p, int32_t n_vocab);
void mp_sampler_free(mp_sampler *s); /* NULL-safe */
/* Picks a token from logits[n_vocab] (logits are not modified). Allocation
 * free. Returns a token id in [0, n_vocab). Does not record the token: call
 * mp_sampler_accept with it. */
int32_t mp_sampler_sample(mp_sampler *s, const float *logits);
/* Records a token in the history used by the repetition penalty (prompt
 * tokens and sampled tokens alike). Tokens outside [0, n_vocab) are
 * ignored. */
void mp_sampler_accept(mp_sampler *s, int32_t token);
/* Forgets the history and restarts the random stream from the seed, so the
 * sampler behaves as freshly created (for a new conversation). */
void mp_sampler_reset(mp_sampler *s);

#endif

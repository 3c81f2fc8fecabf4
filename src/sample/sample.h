/* Samplers: greedy, temperature, top-k, top-p, min-p, repetition penalty,
 * seeded. The order matches llama.cpp's default chain: repetition penalty,
 * top-k, top-p, min-p, temperature, then a seeded draw (temp <= 0: greedy). */
#ifndef MP_SAMPLE_H
#define MP_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_sampler_params {
    float temp;           /* <= 0: greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* tokens of history the penalty looks at */
    uint64_t seed;
} mp_sampler_params;

/* Defaults as llama.cpp's CLI: temp 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1.0, repeat_last_n 64, seed 0. */
mp_sampler_params mp_sampler_default_params(void);

typedef struct mp_sampler mp_sampler;

mp_sampler *mp_sampler_create(const mp_sampler_params *p, int32_t n_vocab); /* NULL on OOM */
void mp_sampler_free(mp_sampler *s); /* NULL-safe */
/* Picks a token from logits[n_vocab] (logits are not modified). Allocation
 * free. */
int32_t mp_sampler_sample(mp_sampler *s, const float *logits);
/* Records a token in the history used by the repetition penalty (prompt
 * tokens and sampled tokens alike). */
void mp_sampler_accept(mp_sampler *s, int32_t token);

#endif

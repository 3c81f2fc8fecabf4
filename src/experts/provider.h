/* Private to src/experts: where an expert's bytes come from. The streamer
 * (stream.c) drives one provider: mapped views (provider_mmap.c) or the
 * expert cache (provider_cache.c; GGUF experts and pack blocks alike).
 *
 * A provider is either synchronous (acquire: pin and return at once, or
 * after a blocking read) or asynchronous (request a layer's experts, then
 * next_ready hands them out as they land). The streamer emulates the second
 * with the first. */
#ifndef MP_EXPERTS_PROVIDER_H
#define MP_EXPERTS_PROVIDER_H

#include "experts/experts.h"

typedef struct mp_provider mp_provider;

typedef struct mp_provider_ops {
    const char *name;
    /* Synchronous providers: pins expert `expert` of `layer` and returns its
     * weights, valid until release. MP_OK or a negative status, err naming
     * the file, layer, expert and offset. */
    int (*acquire)(mp_provider *p, int layer, int expert, mp_expert_w *out, mp_err *err);
    void (*release)(mp_provider *p, int layer, int expert);
    void (*destroy)(mp_provider *p);
    /* Asynchronous providers (both set or both NULL). request demands
     * experts of one layer (pinned until released); next_ready returns 1
     * with one of them ready and pinned (hits first, misses as their reads
     * land), 0 when none is outstanding, MP_E_AGAIN when !block and none is
     * ready yet, or a negative status (*expert names the failed one, which
     * holds no pin). */
    int (*request)(mp_provider *p, int layer, const int *experts, int n, mp_err *err);
    int (*next_ready)(mp_provider *p, bool block, int *expert, mp_expert_w *out, mp_err *err);
    /* Optional. Low-priority loads of predicted experts; never blocks or pins. */
    void (*prefetch)(mp_provider *p, int layer, const int *experts, int n);
    /* Optional. Drops undelivered demands (after an error). */
    void (*abandon)(mp_provider *p);
    /* Optional. Reaps finished reads and starts queued ones; never blocks. */
    void (*poll)(mp_provider *p);
    /* Optional. Is the expert in memory or being read (a prefetch of it
     * would cost nothing)? */
    bool (*present)(mp_provider *p, int layer, int expert);
    /* Optional. `layer` is done for this chunk: its unused predictions were wrong. */
    void (*layer_done)(mp_provider *p, int layer);
} mp_provider_ops;

struct mp_provider {
    const mp_provider_ops *ops;
    int max_pinned; /* experts that may be pinned at once (cache slots); 0: unlimited */
};

int mp_provider_mmap_create(mp_provider **out, const mp_experts_shape *sh, const mp_expert_w *views, mp_err *err);
int mp_provider_cache_create(mp_provider **out, struct mp_cache *cache, mp_err *err);

#endif

/* Mapped-file provider: every expert is a view into the mapping, so acquire
 * never blocks or fails and release has nothing to do. */
#include "experts/provider.h"

#include <stdlib.h>
#include <string.h>

typedef struct mmap_provider {
    mp_provider base;
    uint32_t n_expert;
    mp_expert_w *views; /* [n_layer * n_expert] */
} mmap_provider;

static int mmap_acquire(mp_provider *p, int layer, int expert, mp_expert_w *out, mp_err *err)
{
    const mmap_provider *mp = (const mmap_provider *)p;
    *out = mp->views[(size_t)layer * mp->n_expert + (size_t)expert];
    return MP_OK;
}

static void mmap_release(mp_provider *p, int layer, int expert) {}

static void mmap_destroy(mp_provider *p)
{
    mmap_provider *mp = (mmap_provider *)p;
    free(mp->views);
    free(mp);
}

static const mp_provider_ops mmap_ops = {
    .name = "mmap",
    .acquire = mmap_acquire,
    .release = mmap_release,
    .destroy = mmap_destroy,
};

int mp_provider_mmap_create(mp_provider **out, const mp_experts_shape *sh, const mp_expert_w *views, mp_err *err)
{
    *out = NULL;
    const size_t n = (size_t)sh->n_layer * sh->n_expert;
    mmap_provider *mp = calloc(1, sizeof *mp);
    if (mp) mp->views = malloc(sizeof *mp->views * (n ? n : 1));
    if (!mp || !mp->views) {
        free(mp);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    memcpy(mp->views, views, sizeof *mp->views * n);
    mp->base.ops = &mmap_ops;
    mp->n_expert = sh->n_expert;
    *out = &mp->base;
    return MP_OK;
}

#include "trace/hidden.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mp_hidden_writer {
    FILE *f;
    char *path;
    uint32_t n_embd, k;
    int err; /* first errno of a failed write; 0: none */
};

static int put_u32(FILE *f, uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

int mp_hidden_writer_open(const char *path, uint32_t n_embd, uint32_t k, uint32_t n_moe_layers,
                          mp_hidden_writer **out, mp_err *err)
{
    *out = NULL;
    mp_hidden_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    w->n_embd = n_embd;
    w->k = k;
    if (!(w->f = fopen(path, "wb"))) {
        int rc = mp_err_set(err, MP_E_IO, "%s: cannot create: %s", path, strerror(errno));
        free(w->path);
        free(w);
        return rc;
    }
    if (fwrite(MP_HIDDEN_MAGIC, 1, 8, w->f) != 8 || put_u32(w->f, MP_HIDDEN_VERSION) || put_u32(w->f, n_embd) ||
        put_u32(w->f, k) || put_u32(w->f, n_moe_layers)) {
        int rc = mp_err_set(err, MP_E_IO, "%s: write failed: %s", path, strerror(errno));
        fclose(w->f);
        free(w->path);
        free(w);
        return rc;
    }
    *out = w;
    return MP_OK;
}

int mp_hidden_writer_write(mp_hidden_writer *w, uint32_t moe_layer, uint32_t pos, const int32_t *experts,
                           const float *h)
{
    if (w->err) return MP_E_IO;
    int bad = put_u32(w->f, moe_layer) || put_u32(w->f, pos);
    for (uint32_t i = 0; i < w->k && !bad; i++) bad = put_u32(w->f, (uint32_t)experts[i]);
    for (uint32_t i = 0; i < w->n_embd && !bad; i++) {
        uint32_t u;
        memcpy(&u, &h[i], 4);
        bad = put_u32(w->f, u);
    }
    if (bad) {
        w->err = errno ? errno : EIO;
        return MP_E_IO;
    }
    return MP_OK;
}

int mp_hidden_writer_close(mp_hidden_writer *w, mp_err *err)
{
    if (!w) return MP_OK;
    int rc = MP_OK;
    if (fclose(w->f) != 0 && !w->err) w->err = errno ? errno : EIO;
    if (w->err) rc = mp_err_set(err, MP_E_IO, "%s: write failed: %s", w->path, strerror(w->err));
    free(w->path);
    free(w);
    return rc;
}

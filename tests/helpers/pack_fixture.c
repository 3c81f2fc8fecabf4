#include "helpers/pack_fixture.h"

#include "common/types.h"
#include "gguf/gguf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mp_test_make_compressible(const char *src, const char *dst)
{
    mp_err err = {0};
    mp_gguf *g = NULL;
    if (mp_gguf_open(&g, src, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    mp_gguf_writer *w = mp_gguf_writer_create();
    uint64_t nt = mp_gguf_n_tensors(g);
    uint8_t **bufs = calloc(nt ? nt : 1, sizeof *bufs);
    int rc = -1;
    if (!w || !bufs) goto done;
    for (uint64_t i = 0; i < mp_gguf_n_kv(g); i++) {
        const mp_gguf_kv *kv = mp_gguf_kv_at(g, i);
        if (mp_gguf_writer_set_value(w, kv->key.ptr, &kv->value)) goto done;
    }
    for (uint64_t i = 0; i < nt; i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(g, i);
        const void *data = mp_gguf_tensor_data(g, t);
        if (strstr(t->name, "_exps.")) {
            if (!(bufs[i] = malloc((size_t)t->size))) goto done;
            memcpy(bufs[i], data, (size_t)t->size);
            const size_t rs = mp_row_size(t->type, t->ne[0]);
            const int64_t rows = t->ne[1];
            for (int64_t e = 1; e < t->ne[2]; e += 2) {
                uint8_t *m = bufs[i] + (size_t)e * rs * (size_t)rows;
                for (int64_t r = 1; r < rows; r += 2) memcpy(m + (size_t)r * rs, m + (size_t)(r - 1) * rs, rs);
            }
            data = bufs[i];
        }
        if (mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data)) goto done;
    }
    rc = mp_gguf_writer_write(w, dst, NULL, NULL, &err) ? -1 : 0;
    if (rc) fprintf(stderr, "%s\n", err.msg);
done:
    if (rc && !err.msg[0]) fprintf(stderr, "%s -> %s: out of memory or a bad tensor\n", src, dst);
    for (uint64_t i = 0; i < nt && bufs; i++) free(bufs[i]);
    free(bufs);
    mp_gguf_writer_free(w);
    mp_gguf_free(g);
    return rc;
}

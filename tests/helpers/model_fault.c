#include "helpers/model_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fill_ctx {
    const mp_gguf *src;
    const uint64_t *map; /* writer tensor index -> source tensor index */
} fill_ctx;

static int copy_fill(void *ctx, uint64_t idx, void *buf, size_t size, mp_err *err)
{
    (void)err;
    const fill_ctx *c = ctx; /* a shrunk tensor copies its smaller size */
    memcpy(buf, mp_gguf_tensor_data(c->src, mp_gguf_tensor_at(c->src, c->map[idx])), size);
    return MP_OK;
}

int mp_model_fault_write(const mp_gguf *src, const mp_model_fault *f, const char *path, mp_err *err)
{
    mp_gguf_writer *w = mp_gguf_writer_create();
    uint64_t *map = calloc(mp_gguf_n_tensors(src) + 1, sizeof *map), n = 0;
    if (!w || !map) {
        mp_gguf_writer_free(w);
        free(map);
        return mp_err_set(err, MP_E_NOMEM, "out of memory");
    }
    int rc = 0;
    for (uint64_t i = 0; i < mp_gguf_n_kv(src); i++)
        rc |= mp_gguf_writer_set_value(w, mp_gguf_kv_at(src, i)->key.ptr, &mp_gguf_kv_at(src, i)->value);
    if (f->key) rc |= mp_gguf_writer_set_u32(w, f->key, f->val);
    if (f->fkey) rc |= mp_gguf_writer_set_f32(w, f->fkey, 0.5f);
    for (uint64_t i = 0; i < mp_gguf_n_tensors(src); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(src, i);
        if (f->drop && !strcmp(t->name, f->drop)) continue;
        map[n++] = i;
        int64_t ne[MP_GGUF_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        if (f->shrink && !strcmp(t->name, f->shrink)) ne[0]--;
        rc |= mp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, NULL);
    }
    fill_ctx ctx = {src, map};
    if (rc) rc = mp_err_set(err, MP_E_INVAL, "%s: %s: the variant's keys or tensors were refused", path, f->what);
    else rc = mp_gguf_writer_write(w, path, copy_fill, &ctx, err);
    free(map);
    mp_gguf_writer_free(w);
    return rc;
}

bool mp_model_fault_load(const mp_model_fault *f, const char *path, mp_model **out, char *why, size_t why_cap)
{
    mp_err e = {0};
    const int rc = mp_model_load(out, path, &e);
    why[0] = '\0';
    if (rc != f->want_rc) snprintf(why, why_cap, "%s: rc %d (%s), want %d", f->what, rc, e.msg, f->want_rc);
    else if (f->want_rc == MP_OK) return true;
    else if (*out) snprintf(why, why_cap, "%s: a model despite the error", f->what);
    else if (!strstr(e.msg, path)) snprintf(why, why_cap, "%s: message does not name the file: %s", f->what, e.msg);
    else if (strchr(e.msg, '\n')) snprintf(why, why_cap, "%s: message is not one line: %s", f->what, e.msg);
    else if (f->want1 && !strstr(e.msg, f->want1)) snprintf(why, why_cap, "%s: '%s' not in: %s", f->what, f->want1, e.msg);
    else if (f->want2 && !strstr(e.msg, f->want2)) snprintf(why, why_cap, "%s: '%s' not in: %s", f->what, f->want2, e.msg);
    if (f->want_rc != MP_OK) printf("%-36s %s\n", f->what, e.msg);
    return why[0] == '\0';
}

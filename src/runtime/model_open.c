#include "runtime/model_open.h"

#include "pack/pack.h"

int mp_model_open(const char *path, bool no_mmap, mp_model **model, mp_pack **pack, mp_err *err)
{
    *model = NULL;
    *pack = NULL;
    if (!mp_is_pack(path)) {
        mp_model_load_opts lo = {.no_mmap = no_mmap};
        return mp_model_load_ex(model, path, &lo, err);
    }
    /* The pack maps only its header, embedded GGUF and index, never the
     * expert blocks, so no_mmap changes nothing here. */
    mp_pack *p = NULL;
    int rc = mp_pack_open(&p, path, err);
    if (rc) return rc;
    size_t n = 0;
    const mp_gguf_tensor *x = mp_pack_expert_infos(p, &n);
    rc = mp_model_bind(model, mp_pack_gguf(p), false, x, n, err);
    if (rc) {
        mp_pack_close(p);
        return rc;
    }
    (*model)->gguf_base = mp_pack_get_header(p)->gguf_offset;
    *pack = p;
    return MP_OK;
}

void mp_model_close(mp_model *model, mp_pack *pack)
{
    mp_model_free(model);
    mp_pack_close(pack);
}

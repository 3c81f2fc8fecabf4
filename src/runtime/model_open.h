/* Opening a model file of either kind: a GGUF, or a .moepack (told apart by
 * the magic). The choice lives here, above both the model and the pack
 * format, so neither knows the other. */
#ifndef MP_MODEL_OPEN_H
#define MP_MODEL_OPEN_H

#include "common/err.h"
#include "model/model.h"

#include <stdbool.h>

struct mp_pack;

/* Opens path. For a GGUF, *pack is NULL and no_mmap is passed on (every
 * tensor's data is NULL until loaded). For a pack, *pack receives the open
 * pack, whose embedded GGUF the model is bound to and whose expert index
 * backs the routed experts (data NULL); free the model first, then the pack
 * (mp_model_close does both). On failure both are NULL and err names the
 * file and what is wrong. */
int mp_model_open(const char *path, bool no_mmap, mp_model **model, struct mp_pack **pack, mp_err *err);
/* Frees what mp_model_open returned (NULL-safe). */
void mp_model_close(mp_model *model, struct mp_pack *pack);

#endif

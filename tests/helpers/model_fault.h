/* Bad-model tests (tests/test_*_bad.c): a good GGUF rewritten with one fault
 * (a tensor dropped or one dimension short, a key set), then loaded with
 * mp_model_load, whose refusal must be one line naming the file and what is
 * at fault. */
#ifndef MP_TEST_MODEL_FAULT_H
#define MP_TEST_MODEL_FAULT_H

#include "gguf/gguf.h"
#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp_model_fault {
    const char *what;
    const char *drop;          /* tensor left out, or NULL */
    const char *key;           /* u32 key set to val, or NULL */
    uint32_t val;
    const char *fkey;          /* f32 key set to 0.5, or NULL */
    int want_rc;               /* what mp_model_load must return */
    const char *want1, *want2; /* substrings of its message, or NULL */
    const char *shrink;        /* tensor whose ne[0] loses one element, or NULL */
} mp_model_fault;

/* Writes src with f applied to path. MP_OK, or the writer's status (err). */
int mp_model_fault_write(const mp_gguf *src, const mp_model_fault *f, const char *path, mp_err *err);

/* Loads path and checks the outcome against f: the status; for a refusal,
 * no model, a one-line message naming path and holding want1 and want2
 * (printed as a table row). Returns true when all hold, else false with
 * why[why_cap] saying what did not. *out: the model when one loaded (the
 * caller frees it), else NULL. */
bool mp_model_fault_load(const mp_model_fault *f, const char *path, mp_model **out, char *why, size_t why_cap);

#endif

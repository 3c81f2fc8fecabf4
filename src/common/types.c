#include "types.h"

/* Block geometry from ggml's type_traits (same ids as the GGUF format). */
static const mp_type_info type_table[MP_TYPE_COUNT] = {
    [MP_TYPE_F32] = {"f32", 1, 4},
    [MP_TYPE_F16] = {"f16", 1, 2},
    [MP_TYPE_Q4_0] = {"q4_0", 32, 18},
    [MP_TYPE_Q4_1] = {"q4_1", 32, 20},
    [MP_TYPE_Q5_0] = {"q5_0", 32, 22},
    [MP_TYPE_Q5_1] = {"q5_1", 32, 24},
    [MP_TYPE_Q8_0] = {"q8_0", 32, 34},
    [MP_TYPE_Q8_1] = {"q8_1", 32, 36},
    [MP_TYPE_Q2_K] = {"q2_K", 256, 84},
    [MP_TYPE_Q3_K] = {"q3_K", 256, 110},
    [MP_TYPE_Q4_K] = {"q4_K", 256, 144},
    [MP_TYPE_Q5_K] = {"q5_K", 256, 176},
    [MP_TYPE_Q6_K] = {"q6_K", 256, 210},
    [MP_TYPE_Q8_K] = {"q8_K", 256, 292},
    [MP_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66},
    [MP_TYPE_IQ2_XS] = {"iq2_xs", 256, 74},
    [MP_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98},
    [MP_TYPE_IQ1_S] = {"iq1_s", 256, 50},
    [MP_TYPE_IQ4_NL] = {"iq4_nl", 32, 18},
    [MP_TYPE_IQ3_S] = {"iq3_s", 256, 110},
    [MP_TYPE_IQ2_S] = {"iq2_s", 256, 82},
    [MP_TYPE_IQ4_XS] = {"iq4_xs", 256, 136},
    [MP_TYPE_I8] = {"i8", 1, 1},
    [MP_TYPE_I16] = {"i16", 1, 2},
    [MP_TYPE_I32] = {"i32", 1, 4},
    [MP_TYPE_I64] = {"i64", 1, 8},
    [MP_TYPE_F64] = {"f64", 1, 8},
    [MP_TYPE_IQ1_M] = {"iq1_m", 256, 56},
    [MP_TYPE_BF16] = {"bf16", 1, 2},
    [MP_TYPE_TQ1_0] = {"tq1_0", 256, 54},
    [MP_TYPE_TQ2_0] = {"tq2_0", 256, 66},
    [MP_TYPE_MXFP4] = {"mxfp4", 32, 17},
};

static const mp_type_info unknown_type = {NULL, 0, 0};

const mp_type_info *mp_type_get(uint32_t type)
{
    if (type >= MP_TYPE_COUNT || type_table[type].blck_size == 0) return &unknown_type;
    return &type_table[type];
}

size_t mp_row_size(uint32_t type, int64_t n)
{
    const mp_type_info *ti = mp_type_get(type);
    if (ti->blck_size == 0 || n < 0 || n % ti->blck_size != 0) return 0;
    return (size_t)(n / ti->blck_size) * ti->type_size;
}

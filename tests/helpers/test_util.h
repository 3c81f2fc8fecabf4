/* Small things several tests need: reading a whole file, and a seeded
 * random source (xorshift64, deterministic for a seed). */
#ifndef MP_TEST_UTIL_H
#define MP_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads path into a malloc'ed buffer (caller frees) and sets *size; NULL if
 * it cannot be opened or read. */
void *mp_test_read_file(const char *path, size_t *size);

typedef struct mp_test_rng {
    uint64_t state; /* nonzero seed */
} mp_test_rng;

uint32_t mp_rng_u32(mp_test_rng *r);
float mp_rng_unit(mp_test_rng *r);  /* uniform in [0, 1) */
float mp_rng_gauss(mp_test_rng *r); /* standard normal (Box-Muller) */

/* The weight types the matmul supports, for tests that loop over them all. */
extern const uint32_t mp_test_weight_types[15];
#define MP_TEST_N_WEIGHT_TYPES 15

#endif

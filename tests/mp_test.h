/* Minimal test support: CHECK macros that report file:line and count
 * failures, and MP_TEST_SKIP for features the machine lacks (exit 77). */
#ifndef MP_TEST_H
#define MP_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int mp_test_failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            mp_test_failures++;                                                        \
        }                                                                              \
    } while (0)

#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            mp_test_failures++;                                                        \
        }                                                                              \
    } while (0)

#define MP_TEST_SKIP(...)                                                              \
    do {                                                                               \
        fprintf(stderr, "SKIP: ");                                                     \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        exit(77);                                                                      \
    } while (0)

#define MP_TEST_DONE()                                                                 \
    do {                                                                               \
        if (mp_test_failures) {                                                        \
            fprintf(stderr, "%d check(s) failed\n", mp_test_failures);                 \
            return 1;                                                                  \
        }                                                                              \
        return 0;                                                                      \
    } while (0)

/* Source and build directories (set by ctest; defaults for running by hand). */
static inline const char *mp_test_src_dir(void)
{
    const char *s = getenv("MP_SRC");
    return s ? s : "..";
}
static inline const char *mp_test_build_dir(void)
{
    const char *s = getenv("MP_BUILD");
    return s ? s : ".";
}

#endif

/* Strict parsers and the size formatter: accepted forms, every rejection
 * path, and that failures leave the outputs untouched. */
#include "mp_test.h"
#include "common/parse.h"
#include "moepager/status.h"

#include <stdint.h>
#include <string.h>

#define SENTINEL 0xdeadbeefull

static void size_ok(const char *s, uint64_t want)
{
    uint64_t v = SENTINEL;
    int rc = mp_parse_size(s, &v);
    CHECKF(rc == MP_OK && v == want, "\"%s\": rc %d, %llu, want %llu", s, rc,
           (unsigned long long)v, (unsigned long long)want);
}

static void size_bad(const char *s)
{
    uint64_t v = SENTINEL;
    int rc = mp_parse_size(s, &v);
    CHECKF(rc == MP_E_INVAL && v == SENTINEL, "\"%s\": rc %d, %llu", s ? s : "(null)", rc,
           (unsigned long long)v);
}

static void test_size(void)
{
    const uint64_t K = 1024, M = K * K, G = M * K, T = G * K;
    size_ok("0", 0);
    size_ok("123", 123);
    size_ok("123B", 123);
    size_ok("2048K", 2048 * K);
    size_ok("512M", 512 * M);
    size_ok("512m", 512 * M);
    size_ok("4G", 4 * G);
    size_ok("1.5G", 3 * G / 2);
    size_ok("1GiB", G);
    size_ok("1GB", G); /* binary, as llama.cpp users expect */
    size_ok("1gb", G);
    size_ok("2KiB", 2 * K);
    size_ok("3kb", 3 * K);
    size_ok("7MiB", 7 * M);
    size_ok("2T", 2 * T);
    size_ok("1TiB", T);
    size_ok("0.5K", 512);
    size_ok("0.1K", 102); /* 102.4 rounds down */
    size_ok("1.5", 1);
    size_ok("0.0000000000000000000001T", 0); /* digits past the 19th dropped */
    size_ok("18446744073709551615", UINT64_MAX);
    size_ok("16777215.999999T", 16777215 * T + 999999 * T / 1000000);
    size_ok("16777215.9999999999999T", UINT64_MAX); /* the fraction fills the last TiB */
    size_ok("00012k", 12 * K);

    size_bad(NULL);
    size_bad("");
    size_bad("-1");
    size_bad("-1G");
    size_bad("+1G");
    size_bad(" 1G");
    size_bad("1G ");
    size_bad("1 G");
    size_bad("G");
    size_bad("1X");
    size_bad("1GiBs");
    size_bad("1iB");
    size_bad("1.G");
    size_bad(".5G");
    size_bad("1..5G");
    size_bad("1.5.G");
    size_bad("0x10");
    size_bad("1e3");
    size_bad("abc");
    size_bad("18446744073709551616"); /* UINT64_MAX + 1 */
    size_bad("99999999999999999999999");
    size_bad("16777216T"); /* 2^64 */
    size_bad("17179869184G");
}

static void fmt_is(uint64_t b, const char *want)
{
    char buf[32];
    int rc = mp_format_size(b, buf, sizeof(buf));
    CHECKF(rc == (int)strlen(want) && strcmp(buf, want) == 0, "%llu: rc %d \"%s\", want \"%s\"",
           (unsigned long long)b, rc, buf, want);
}

static void test_format(void)
{
    const uint64_t K = 1024, M = K * K, G = M * K;
    fmt_is(0, "0 B");
    fmt_is(123, "123 B");
    fmt_is(1023, "1023 B");
    fmt_is(K, "1 KiB");
    fmt_is(1536, "1.50 KiB");
    fmt_is(512 * M, "512 MiB");
    fmt_is(3 * G / 2, "1.50 GiB");
    fmt_is(G - 1, "1.00 GiB"); /* not "1024.00 MiB" */
    fmt_is(4 * G, "4 GiB");
    fmt_is(UINT64_MAX, "16.00 EiB");
    fmt_is((uint64_t)1 << 63, "8 EiB");
    fmt_is(1234567, "1.18 MiB");

    /* does not fit: MP_E_RANGE, still NUL-terminated */
    char small[5];
    memset(small, 'x', sizeof(small));
    CHECK(mp_format_size(512 * M, small, sizeof(small)) == MP_E_RANGE);
    CHECK(small[4] == '\0');
    char exact[8]; /* "512 MiB" is 7 chars + NUL */
    CHECK(mp_format_size(512 * M, exact, sizeof(exact)) == 7 && strcmp(exact, "512 MiB") == 0);
    CHECK(mp_format_size(512 * M, exact, 7) == MP_E_RANGE);
    CHECK(mp_format_size(1, NULL, 0) == MP_E_RANGE);

    /* round trip */
    uint64_t v;
    CHECK(mp_parse_size("512M", &v) == MP_OK && mp_format_size(v, exact, sizeof(exact)) == 7 &&
          strcmp(exact, "512 MiB") == 0);
}

static void test_i64(void)
{
    int64_t v = 7;
    CHECK(mp_parse_i64("0", &v) == MP_OK && v == 0);
    CHECK(mp_parse_i64("42", &v) == MP_OK && v == 42);
    CHECK(mp_parse_i64("+42", &v) == MP_OK && v == 42);
    CHECK(mp_parse_i64("-42", &v) == MP_OK && v == -42);
    CHECK(mp_parse_i64("007", &v) == MP_OK && v == 7);
    CHECK(mp_parse_i64("9223372036854775807", &v) == MP_OK && v == INT64_MAX);
    CHECK(mp_parse_i64("-9223372036854775808", &v) == MP_OK && v == INT64_MIN);

    const char *bad[] = {"", "-", "+", " 1", "1 ", "1a", "a1", "1.0", "1e3", "0x10", "--1",
                         "+-1", "9223372036854775808", "-9223372036854775809",
                         "99999999999999999999", "1,2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        int rc = mp_parse_i64(bad[i], &v);
        CHECKF(rc == MP_E_INVAL && v == 7, "\"%s\": rc %d v %lld", bad[i], rc, (long long)v);
    }
    CHECK(mp_parse_i64(NULL, &v) == MP_E_INVAL);
}

static void test_f32(void)
{
    float f = 7.0f;
    CHECK(mp_parse_f32("0.8", &f) == MP_OK && f == 0.8f);
    CHECK(mp_parse_f32("1", &f) == MP_OK && f == 1.0f);
    CHECK(mp_parse_f32("-2.5", &f) == MP_OK && f == -2.5f);
    CHECK(mp_parse_f32("+.5", &f) == MP_OK && f == 0.5f);
    CHECK(mp_parse_f32("5.", &f) == MP_OK && f == 5.0f);
    CHECK(mp_parse_f32("1e-3", &f) == MP_OK && f == 1e-3f);
    CHECK(mp_parse_f32("2E+2", &f) == MP_OK && f == 200.0f);
    CHECK(mp_parse_f32("0", &f) == MP_OK && f == 0.0f);

    const char *bad[] = {"", ".", "-", "e3", "1e", "1e+", " 1", "1 ", "1f", "nan", "inf",
                         "-inf", "infinity", "0x1p3", "1,5", "1.2.3", "1e39", "-1e39",
                         "1e-50", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = 7.0f;
        int rc = mp_parse_f32(bad[i], &f);
        CHECKF(rc == MP_E_INVAL && f == 7.0f, "\"%s\": rc %d f %g", bad[i], rc, f);
    }
    CHECK(mp_parse_f32(NULL, &f) == MP_E_INVAL);
}

static void test_int_list(void)
{
    int64_t out[4] = {9, 9, 9, 9};
    int n = -1;
    CHECK(mp_parse_int_list("1,300,301", out, 4, &n) == MP_OK && n == 3);
    CHECK(out[0] == 1 && out[1] == 300 && out[2] == 301 && out[3] == 9);
    CHECK(mp_parse_int_list("-5", out, 4, &n) == MP_OK && n == 1 && out[0] == -5);
    CHECK(mp_parse_int_list("1,2,3,4", out, 4, &n) == MP_OK && n == 4 && out[3] == 4);

    const char *bad[] = {"", ",", "1,", ",1", "1,,2", "1, 2", "1,a", "a", "1;2",
                         "1,99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t o[4] = {9, 9, 9, 9};
        n = -1;
        int rc = mp_parse_int_list(bad[i], o, 4, &n);
        CHECKF(rc == MP_E_INVAL && n == -1 && o[0] == 9 && o[1] == 9, "\"%s\": rc %d", bad[i], rc);
    }
    /* too many for the capacity: MP_E_RANGE, nothing written */
    int64_t o2[2] = {9, 9};
    n = -1;
    CHECK(mp_parse_int_list("1,2,3", o2, 2, &n) == MP_E_RANGE && n == -1 && o2[0] == 9);
    CHECK(mp_parse_int_list("1", o2, 0, &n) == MP_E_RANGE);
    CHECK(mp_parse_int_list(NULL, o2, 2, &n) == MP_E_INVAL);
}

static void test_size_list(void)
{
    const uint64_t M = 1024 * 1024;
    uint64_t out[4] = {9, 9, 9, 9};
    int n = -1;
    CHECK(mp_parse_size_list("256M,512M,1G", out, 4, &n) == MP_OK && n == 3);
    CHECK(out[0] == 256 * M && out[1] == 512 * M && out[2] == 1024 * M && out[3] == 9);
    CHECK(mp_parse_size_list("1.5G", out, 1, &n) == MP_OK && n == 1 && out[0] == 1536 * M);

    const char *bad[] = {"", ",", "256M,", ",256M", "256M,,1G", "256M, 1G", "256M,-1G",
                         "256M,1X", "256M,99999999999T"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t o[4] = {9, 9, 9, 9};
        n = -1;
        int rc = mp_parse_size_list(bad[i], o, 4, &n);
        CHECKF(rc == MP_E_INVAL && n == -1 && o[0] == 9, "\"%s\": rc %d", bad[i], rc);
    }
    uint64_t o2[2] = {9, 9};
    n = -1;
    CHECK(mp_parse_size_list("1M,2M,3M", o2, 2, &n) == MP_E_RANGE && n == -1 && o2[0] == 9);
}

static void test_str_list(void)
{
    char buf[32];
    const char *items[4] = {0};
    int n = -1;
    CHECK(mp_parse_str_list("top_k,top_p,temperature", buf, sizeof(buf), items, 4, &n) == MP_OK);
    CHECK(n == 3 && strcmp(items[0], "top_k") == 0 && strcmp(items[1], "top_p") == 0 &&
          strcmp(items[2], "temperature") == 0);
    CHECK(items[0] == buf); /* items point into the caller's buffer */
    CHECK(mp_parse_str_list("one", buf, sizeof(buf), items, 1, &n) == MP_OK && n == 1 &&
          strcmp(items[0], "one") == 0);
    /* spaces are text, not separators or errors */
    CHECK(mp_parse_str_list("a b,c", buf, sizeof(buf), items, 4, &n) == MP_OK && n == 2 &&
          strcmp(items[0], "a b") == 0);

    const char *bad[] = {"", ",", "a,", ",a", "a,,b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = -1;
        CHECKF(mp_parse_str_list(bad[i], buf, sizeof(buf), items, 4, &n) == MP_E_INVAL && n == -1,
               "\"%s\"", bad[i]);
    }
    n = -1;
    CHECK(mp_parse_str_list("a,b,c", buf, sizeof(buf), items, 2, &n) == MP_E_RANGE && n == -1);
    char tiny[5]; /* "a,b,c" needs 6 */
    CHECK(mp_parse_str_list("a,b,c", tiny, sizeof(tiny), items, 4, &n) == MP_E_RANGE && n == -1);
    CHECK(mp_parse_str_list("a,b", tiny, sizeof(tiny), items, 4, &n) == MP_OK && n == 2);
}

int main(void)
{
    test_size();
    test_format();
    test_i64();
    test_f32();
    test_int_list();
    test_size_list();
    test_str_list();
    MP_TEST_DONE();
}

/* Strict parsers for command-line values: sizes ("512M", "1.5GiB"),
 * integers, floats and comma-separated lists of them, plus a size
 * formatter.
 *
 * Every parser accepts the whole string or nothing: no leading or trailing
 * whitespace, no trailing garbage, no empty items. On failure the outputs
 * are left untouched. Returns: MP_OK; MP_E_INVAL for a malformed or
 * out-of-range value (garbage, empty, negative size, overflow); MP_E_RANGE
 * when a list has more items than the caller's capacity (or a string list
 * does not fit the caller's buffer). */
#ifndef MP_PARSE_H
#define MP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Parses a byte count: digits with an optional fraction ("1.5"), then an
 * optional unit, case-insensitive: B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
 * T/TB/TiB. Every unit is binary (K = 1024), "GB" included, as llama.cpp
 * users expect. A fractional result is rounded down to whole bytes
 * ("1.5K" = 1536, "0.1K" = 102). Rejects signs, whitespace, a bare unit,
 * "1." / ".5", and values above UINT64_MAX. */
int mp_parse_size(const char *s, uint64_t *out);

/* Writes a human-readable size into buf[cap], always NUL-terminated when
 * cap > 0: "123 B", "512 MiB" (exact multiples print no decimals),
 * "1.50 GiB" (two decimals otherwise). Returns the length written
 * (excluding the NUL, >= 0), or MP_E_RANGE if it did not fit (buf then
 * holds a truncated string). */
int mp_format_size(uint64_t bytes, char *buf, size_t cap);

/* Base-10 int64 with an optional leading '+' or '-'. */
int mp_parse_i64(const char *s, int64_t *out);

/* A finite float in strtof's decimal syntax ("0.8", "1e-3", "-2");
 * rejects "nan", "inf", hex floats and values that overflow or underflow
 * float. */
int mp_parse_f32(const char *s, float *out);

/* "1,300,301" -> out[0..*n) with 1 <= *n <= cap; each item as
 * mp_parse_i64. */
int mp_parse_int_list(const char *s, int64_t *out, int cap, int *n);

/* "256M,512M,1G" -> out[0..*n); each item as mp_parse_size. */
int mp_parse_size_list(const char *s, uint64_t *out, int cap, int *n);

/* Splits s on commas: copies s into buf[buf_cap] with each comma replaced
 * by a NUL and sets items[0..*n) to point into buf (the caller owns buf;
 * items stay valid while buf does). Items must be non-empty; no other
 * check is made on their text. MP_E_RANGE if s does not fit buf (needs
 * strlen(s) + 1 bytes) or has more than cap items. */
int mp_parse_str_list(const char *s, char *buf, size_t buf_cap, const char **items, int cap,
                      int *n);

#endif

/* Models whose pack holds both lz4 and raw blocks. Random weights (what
 * mp-gen writes) never compress by the pack writer's 8% rule, so tests
 * that need lz4 blocks rewrite a GGUF so that some experts compress. */
#ifndef MP_PACK_FIXTURE_H
#define MP_PACK_FIXTURE_H

/* Copies the GGUF at src to dst (all metadata, every tensor) with each odd
 * expert of every *_exps tensor made compressible: its odd rows repeat the
 * row before them (a match one row back, inside lz4's 64 KiB window for any
 * row shorter than that), so its pack block compresses by about half while
 * the even experts stay random and raw. Returns 0, or -1 with a line on
 * stderr. */
int mp_test_make_compressible(const char *src, const char *dst);

#endif

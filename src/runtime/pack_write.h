/* Pack writer: a GGUF model -> .moepack (format in
 * include/moepager/pack_format.h). It lives in runtime because it reads the
 * model (src/model) to find the expert tensors, and src/pack sits below the
 * model: it only reads and verifies the format. */
#ifndef MP_PACK_WRITE_H
#define MP_PACK_WRITE_H

#include "common/err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mp_pack_write_opts {
    bool no_compress;      /* store every block raw */
    int n_threads;         /* compression/hash workers; <= 0: 1 */
    /* Called from the writing thread after each batch of blocks; done and
     * total count expert bytes (raw) of the source. May be NULL. */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
} mp_pack_write_opts;

typedef struct mp_pack_write_stats {
    uint64_t n_blocks;       /* expert blocks written */
    uint64_t n_compressed;   /* of which stored lz4-compressed */
    uint64_t raw_bytes;      /* sum of raw block sizes */
    uint64_t stored_bytes;   /* sum of stored block sizes (padding excluded) */
    uint64_t resident_bytes; /* bytes of the embedded GGUF */
    uint64_t file_bytes;     /* size of the pack */
} mp_pack_write_stats;

/* Packs the GGUF model at src_path (which must load as an mp_model with
 * routed experts) into dst_path. Writes "<dst_path>.tmp.<pid>" (and a
 * temporary GGUF beside it) and renames over dst_path only when complete
 * and synced; on failure nothing is left behind. Memory: a batch of
 * n_threads * 4 blocks plus the writer's buffers. stats may be NULL.
 * Returns MP_OK, MP_E_INVAL (not an MoE model, dst == src), MP_E_IO,
 * MP_E_NOMEM, or a load error of the source. */
int mp_pack_write(const char *src_path, const char *dst_path, const mp_pack_write_opts *opts,
                  mp_pack_write_stats *stats, mp_err *err);

#endif

/* Shared between the pack reader and writer; not part of the API. */
#ifndef MP_PACK_INTERNAL_H
#define MP_PACK_INTERNAL_H

#include <stdint.h>

/* xxh3-64 of the MP_PACK_HEADER_SIZE header bytes at hdr with the
 * header_hash field taken as zero. */
uint64_t mp_pack_header_hash(const void *hdr);

#endif

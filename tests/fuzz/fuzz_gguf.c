/* libFuzzer entry for the GGUF reader: every input is opened as an in-memory
 * image and checked with gguf_check_image (clean rejection, or an accepted
 * file whose tensors are in bounds, aligned and disjoint and which survives
 * a rewrite through the writer). Built by tools/fuzz_gguf.sh. */
#include "test_gguf_image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libFuzzer's buffer is exactly `size` bytes, so ASan catches over-reads. */
    if (gguf_check_image(data, size) != 0) abort();
    return 0;
}

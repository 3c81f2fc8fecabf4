/* mp-compressible: rewrites a GGUF so that its pack holds lz4 blocks.
 *
 *   mp-compressible SRC.gguf DST.gguf
 *
 * Odd experts get rows that repeat their neighbour (they compress by about
 * half); even experts stay as they are (random weights: stored raw). See
 * tests/helpers/pack_fixture.h. Exit 0, 1 on failure, 2 on usage. */
#include "helpers/pack_fixture.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *usage = "usage: mp-compressible SRC.gguf DST.gguf\n";
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 3) {
        fputs(usage, stderr);
        return 2;
    }
    return mp_test_make_compressible(argv[1], argv[2]) ? 1 : 0;
}

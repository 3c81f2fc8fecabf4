/* peer-quantize IN OUT FTYPE: quantises a GGUF with the llama.cpp peer's own
 * quantiser (libllama's llama_model_quantize, what llama-quantize calls),
 * no importance matrix. FTYPE: q2_K, q3_K_M, q4_K_M, iq4_xs, iq4_nl or a
 * llama_ftype number. Built by the parity tests against the peer's headers
 * and libraries (so it lives outside tests/helpers/*.c, which every test
 * links); not part of the engine. */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s IN.gguf OUT.gguf FTYPE\n", argv[0]);
        return 2;
    }
    static const struct { const char *name; enum llama_ftype ftype; } tab[] = {
        {"q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},     {"q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M},
        {"q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"iq4_xs", LLAMA_FTYPE_MOSTLY_IQ4_XS},
        {"iq4_nl", LLAMA_FTYPE_MOSTLY_IQ4_NL},
    };
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.nthread = 2;
    char *end;
    const long n = strtol(argv[3], &end, 10);
    if (*end == '\0') {
        p.ftype = (enum llama_ftype)n;
    } else {
        size_t i = 0;
        while (i < sizeof tab / sizeof tab[0] && strcmp(tab[i].name, argv[3])) i++;
        if (i == sizeof tab / sizeof tab[0]) {
            fprintf(stderr, "%s: unknown ftype '%s'\n", argv[0], argv[3]);
            return 2;
        }
        p.ftype = tab[i].ftype;
    }
    llama_backend_init();
    const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
    llama_backend_free();
    if (rc) fprintf(stderr, "%s: llama_model_quantize failed (%u)\n", argv[0], rc);
    return rc ? 1 : 0;
}

/* peer-tokenize VOCAB.gguf STRINGS: tokenizes each string of STRINGS (records
 * of a 4-byte little-endian length and that many bytes, as mp-tokenize-lines
 * --gen writes them) with the llama.cpp peer's libllama (vocab only), twice:
 * add_special = parse_special = false, then both true. Prints one line per
 * string and mode: the ids separated by spaces. Built by
 * tests/test_tokenizer_peer.sh against the peer's headers and libraries (so
 * it lives outside tests/helpers/*.c, which every test links). */
#include "llama.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s VOCAB.gguf STRINGS\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "%s: cannot load %s\n", argv[0], argv[1]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[2]);
        return 1;
    }
    int32_t cap = 1 << 16;
    llama_token *ids = malloc((size_t)cap * sizeof *ids);
    char *buf = NULL;
    uint8_t lb[4];
    while (fread(lb, 1, 4, f) == 4) {
        const uint32_t len = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
        buf = realloc(buf, len + 1);
        if (!buf || fread(buf, 1, len, f) != len) {
            fprintf(stderr, "%s: truncated %s\n", argv[0], argv[2]);
            return 1;
        }
        buf[len] = '\0';
        for (int mode = 0; mode < 2; mode++) {
            int32_t n = llama_tokenize(vocab, buf, (int32_t)len, ids, cap, mode == 1, mode == 1);
            if (n < 0) {
                printf("ERR %d\n", n);
                continue;
            }
            for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
        }
    }
    fclose(f);
    free(buf);
    free(ids);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

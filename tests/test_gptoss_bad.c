/* Bad gpt-oss files (issue 12): a good mp-gen model (MXFP4 experts) rewritten
 * with one fault each must be refused by mp_model_load with one line naming
 * the file and the key or tensor at fault, and nothing leaked (the ASan
 * build checks): a sliding window larger than the context (or 0), a window
 * pattern that leaves no sliding layer, a sink tensor of the wrong size or
 * missing, a missing expert bias, and an MXFP4 tensor whose rows are not a
 * multiple of 32 (patched into the file's tensor info, as no writer makes
 * one). The unmodified copy must load, with even layers sliding. Needs mp-gen
 * from the build tree. */
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/model.h"
#include "helpers/model_fault.h"
#include "mp_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Rewrites ne[0] of tensor `name` in the GGUF file at path (its info holds
 * the name, n_dims u32, then ne[0] as i64) to ne0. */
static bool patch_ne0(const char *path, const char *name, int64_t ne0)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return false;
    static uint8_t buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf, f);
    const size_t ln = strlen(name);
    bool done = false;
    for (size_t i = 8; i + ln + 12 <= n && !done; i++) {
        uint64_t len;
        memcpy(&len, buf + i - 8, 8);
        if (len != ln || memcmp(buf + i, name, ln)) continue;
        if (fseek(f, (long)(i + ln + 4), SEEK_SET) == 0 && fwrite(&ne0, 8, 1, f) == 1) done = true;
    }
    return fclose(f) == 0 && done;
}

int main(void)
{
    char dir[] = "/tmp/mp-gptoss-bad.XXXXXX";
    if (!mkdtemp(dir)) MP_TEST_SKIP("mkdtemp failed");
    char base[256], cmd[1024], path[300];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    snprintf(cmd, sizeof cmd,
             "'%s/mp-gen' --arch gpt-oss --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 64 --n-layer 2 "
             "--n-expert 4 --n-expert-used 2 --swa 16 --n-ctx 1024 --expert-type mxfp4 --n-vocab 300 -q -o '%s'",
             mp_test_build_dir(), base);
    if (system(cmd) != 0) {
        fprintf(stderr, "mp-gen failed: %s\n", cmd);
        return 1;
    }
    mp_gguf *g = NULL;
    mp_err err = {0};
    CHECKF(mp_gguf_open(&g, base, NULL, &err) == MP_OK, "%s", err.msg);
    if (!g) return 1;

    static const mp_model_fault faults[] = {
        {"unmodified", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL},
        {"window larger than the context", NULL, "gpt-oss.attention.sliding_window", 2048, NULL, MP_E_CORRUPT,
         "gpt-oss.attention.sliding_window' = 2048", "1..1024", NULL},
        {"window 0", NULL, "gpt-oss.attention.sliding_window", 0, NULL, MP_E_CORRUPT,
         "gpt-oss.attention.sliding_window' = 0", "context length", NULL},
        {"no sliding layer", NULL, "gpt-oss.attention.sliding_window_pattern", 1, NULL, MP_E_CORRUPT,
         "sliding_window_pattern' = 1", "no sliding-window layer", NULL},
        {"sink tensor of the wrong size", NULL, NULL, 0, NULL, MP_E_CORRUPT, "blk.1.attn_sinks.weight",
         "has shape {3}, expected {4}", "blk.1.attn_sinks.weight"},
        {"missing sinks", "blk.0.attn_sinks.weight", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_sinks.weight", "missing",
         NULL},
        {"missing expert bias", "blk.1.ffn_down_exps.bias", NULL, 0, NULL, MP_E_CORRUPT, "blk.1.ffn_down_exps.bias",
         "missing", NULL},
        {"missing output bias", "blk.0.attn_output.bias", NULL, 0, NULL, MP_E_CORRUPT, "blk.0.attn_output.bias",
         "missing", NULL},
    };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
        const mp_model_fault *f = &faults[i];
        snprintf(path, sizeof path, "%s/v%zu.gguf", dir, i);
        CHECKF(mp_model_fault_write(g, f, path, &err) == MP_OK, "%s", err.msg);
        mp_model *m = NULL;
        char why[MP_ERR_MSG_MAX + 256];
        CHECKF(mp_model_fault_load(f, path, &m, why, sizeof why), "%s", why);
        if (m) {
            const mp_hparams *hp = &m->hp;
            CHECK(hp->arch == MP_ARCH_GPTOSS && hp->n_swa == 16 && hp->swa_pattern == 2);
            CHECK(mp_layer_is_swa(hp, 0) && !mp_layer_is_swa(hp, 1));
            CHECK(hp->gating == MP_GATING_SOFTMAX_WEIGHT && !hp->norm_topk && hp->swiglu_oai);
            CHECK(m->layers[1].attn_sinks.info && m->layers[1].ffn_down_exps_b.info && m->layers[0].bo.info);
            CHECK(m->layers[0].ffn_gate_exps.type == MP_TYPE_MXFP4);
        }
        mp_model_free(m);
        unlink(path);
    }

    /* an MXFP4 expert tensor with rows of 48 (64 in the file's data): refused when opened */
    snprintf(path, sizeof path, "%s/rows.gguf", dir);
    static const mp_model_fault none = {"copy", NULL, NULL, 0, NULL, MP_OK, NULL, NULL, NULL};
    CHECKF(mp_model_fault_write(g, &none, path, &err) == MP_OK, "%s", err.msg);
    CHECK(patch_ne0(path, "blk.1.ffn_up_exps.weight", 48));
    mp_model *m = NULL;
    mp_err e = {0};
    const int rc = mp_model_load(&m, path, &e);
    CHECKF(rc == MP_E_CORRUPT && m == NULL, "rows of 48: rc %d (%s)", rc, e.msg);
    CHECKF(strstr(e.msg, path) && strstr(e.msg, "blk.1.ffn_up_exps.weight") && strstr(e.msg, "ne[0] = 48") &&
               strstr(e.msg, "mxfp4 block size 32") && !strchr(e.msg, '\n'),
           "rows of 48: %s", e.msg);
    printf("%-36s %s\n", "mxfp4 rows of 48", e.msg);
    mp_model_free(m);
    unlink(path);

    mp_gguf_free(g);
    unlink(base);
    rmdir(dir);
    MP_TEST_DONE();
}

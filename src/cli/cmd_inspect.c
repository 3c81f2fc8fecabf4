/* moepager inspect: architecture, sizes and the memory a model needs. */
#include "cli.h"
#include "runtime/model_open.h"

#include "common/parse.h"
#include "model/forward.h"
#include "model/model.h"

#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("usage: moepager inspect -m MODEL [-c CTX] [-b BATCH] [-t THREADS]\n\n"
           "Prints the architecture, hyperparameters, the mix of weight types, total and\n"
           "active parameters per token, bytes of resident weights and of routed experts,\n"
           "the size of one expert, and the RAM needed to hold everything.\n"
           "%s",
           cli_model_opts_help);
}

static const char *sz(uint64_t b, char *buf)
{
    mp_format_size(b, buf, 32);
    return buf;
}

int cmd_inspect(int argc, char **argv)
{
    cli_model_opts mo = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_take_model_opt(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (cli_is_help(argv[i])) {
            help();
            return 0;
        }
        return cli_error("inspect: unknown option '%s' (see moepager inspect --help)", argv[i]);
    }
    if (cli_resolve_model(&mo)) return 1;
    mp_model *m = NULL;
    struct mp_pack *pack = NULL;
    mp_err err = {0};
    if (mp_model_open(mo.model, false, &m, &pack, &err)) return cli_fail(&err);
    const mp_hparams *hp = &m->hp;
    char b1[32], b2[32], b3[32];

    printf("file:            %s (GGUF v%u, %s)\n", mo.model, mp_gguf_version(m->gguf), sz(mp_gguf_file_size(m->gguf), b1));
    const char *name = mp_gguf_get_str(m->gguf, "general.name");
    if (name) printf("name:            %s\n", name);
    printf("architecture:    %s%s\n", hp->arch_name, hp->n_expert ? " (mixture of experts)" : " (dense)");
    printf("layers:          %u\n", hp->n_layer);
    printf("n_embd:          %u\n", hp->n_embd);
    printf("heads:           %u (kv %u, head dim %u, rope %s over %u dims, base %g)\n", hp->n_head, hp->n_head_kv,
           hp->head_dim, hp->rope_kind == MP_ROPE_NEOX ? "neox" : "normal", hp->n_rot, hp->rope_base);
    if (hp->n_expert)
        printf("experts:         %u per layer, %u used per token, expert FFN %u, weights %s\n", hp->n_expert,
               hp->n_expert_used, hp->n_ff_exp, hp->norm_topk ? "renormalised" : "not renormalised");
    else
        printf("ffn:             %u\n", hp->n_ff);
    printf("vocab:           %u, context (trained) %u, rms eps %g%s\n", hp->n_vocab, hp->n_ctx_train, hp->rms_eps,
           m->tied_output ? ", tied output" : "");

    /* weight-type mix */
    uint64_t type_bytes[MP_TYPE_COUNT] = {0}, type_count[MP_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < mp_gguf_n_tensors(m->gguf); i++) {
        const mp_gguf_tensor *t = mp_gguf_tensor_at(m->gguf, i);
        if (t->type < MP_TYPE_COUNT) {
            type_bytes[t->type] += t->size;
            type_count[t->type]++;
        }
    }
    printf("weight types:   ");
    for (int ty = 0; ty < MP_TYPE_COUNT; ty++)
        if (type_count[ty]) printf(" %s: %llu tensors, %s;", mp_type_name((uint32_t)ty), (unsigned long long)type_count[ty], sz(type_bytes[ty], b1));
    printf("\n");

    mp_model_sizes s;
    mp_model_sizes_get(m, &s);
    printf("parameters:      %.3fB total, %.3fB active per token\n", s.total_params / 1e9, s.active_params / 1e9);
    printf("resident bytes:  %s (embeddings, attention, norms, routers, output)\n", sz(s.resident_bytes, b1));
    printf("expert bytes:    %s (routed experts, %.1f%% of the file)\n", sz(s.expert_bytes, b1),
           s.total_bytes ? 100.0 * s.expert_bytes / s.total_bytes : 0.0);
    if (hp->n_expert) printf("one expert:      %s (gate + up + down)\n", sz(s.one_expert_bytes, b1));
    int n_ctx = mo.n_ctx ? mo.n_ctx : (hp->n_ctx_train < 4096 ? (int)hp->n_ctx_train : 4096);
    int n_batch = mo.n_batch ? mo.n_batch : 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    int n_threads = mo.n_threads ? mo.n_threads : 2;
    uint64_t kv = mp_ctx_kv_bytes(m, n_ctx), scratch = mp_ctx_scratch_bytes(m, n_ctx, n_batch, n_threads);
    printf("KV cache:        %s for %d tokens (f16)\n", sz(kv, b1), n_ctx);
    printf("scratch:         %s (batch %d)\n", sz(scratch, b1), n_batch);
    printf("RAM, all in RAM: %s (weights %s + KV + scratch)\n", sz(s.total_bytes + kv + scratch, b2), sz(s.total_bytes, b3));
    if (hp->n_expert) {
        uint64_t min_cache = (uint64_t)hp->n_expert_used * s.one_expert_bytes;
        printf("RAM, offloaded:  at least %s (resident + KV + scratch + %u experts)\n",
               sz(s.resident_bytes + kv + scratch + min_cache, b1), hp->n_expert_used);
    }
    mp_model_close(m, pack);
    return 0;
}

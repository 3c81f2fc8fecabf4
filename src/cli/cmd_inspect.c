/* moepager inspect: architecture, sizes and the memory a model needs. */
#include "cli.h"

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
    mp_params p = mp_params_default();
    p.n_ctx = mo.n_ctx;
    p.n_batch = mo.n_batch;
    p.n_threads = mo.n_threads;
    mp_model_info mi;
    mp_err err = {0};
    if (mp_model_inspect(mo.model, &p, &mi, &err)) return cli_fail(&err);
    char b1[32], b2[32], b3[32];

    printf("file:            %s (GGUF v%u, %s)\n", mo.model, mi.gguf_version, sz(mi.file_bytes, b1));
    if (mi.name[0]) printf("name:            %s\n", mi.name);
    printf("architecture:    %s%s\n", mi.arch, mi.moe ? " (mixture of experts)" : " (dense)");
    if (mi.n_layer_nextn)
        printf("layers:          %u (+ %u NextN/MTP block(s), skipped and not loaded)\n", mi.n_layer, mi.n_layer_nextn);
    else
        printf("layers:          %u\n", mi.n_layer);
    printf("n_embd:          %u\n", mi.n_embd);
    printf("heads:           %u (kv %u, head dim %u, rope %s over %u dims, base %g)\n", mi.n_head, mi.n_head_kv,
           mi.head_dim, mi.rope_neox ? "neox" : "normal", mi.n_rot, mi.rope_base);
    if (mi.mla)
        printf("attention:       MLA, kv LoRA %u, q LoRA %u, %s\n", mi.kv_lora, mi.q_lora,
               mi.mla_latent_kv ? "latent KV cache (kv LoRA + rope dims per token, one head; value = its latent part)"
                                : "attn_kv_b layout (KV cache per head, as MHA)");
    if (mi.moe)
        printf("experts:         %u per layer, %u used per token, expert FFN %u, weights %s\n", mi.n_expert,
               mi.n_expert_used, mi.n_ff_exp, mi.norm_topk ? "renormalised" : "not renormalised");
    if (mi.moe && (mi.sigmoid_gating || mi.selection_bias || mi.n_group > 1 || mi.n_shared || mi.n_dense_lead)) {
        printf("routing:         %s gate%s", mi.sigmoid_gating ? "sigmoid" : "softmax",
               mi.selection_bias ? ", selection bias" : "");
        if (mi.n_group > 1) printf(", %u of %u expert groups", mi.n_group_used, mi.n_group);
        printf("; %u shared expert(s) resident, %u leading dense layer(s)\n", mi.n_shared, mi.n_dense_lead);
    }
    else
        printf("ffn:             %u\n", mi.n_ff);
    printf("vocab:           %u, context (trained) %u, rms eps %g%s\n", mi.n_vocab, mi.n_ctx_train, mi.rms_eps,
           mi.tied_output ? ", tied output" : "");

    printf("weight types:   ");
    for (uint32_t t = 0; t < mi.n_types; t++)
        printf(" %s: %llu tensors, %s;", mi.types[t].name, (unsigned long long)mi.types[t].n_tensors,
               sz(mi.types[t].bytes, b1));
    printf("\n");

    printf("parameters:      %.3fB total, %.3fB active per token\n", mi.total_params / 1e9, mi.active_params / 1e9);
    printf("resident bytes:  %s (embeddings, attention, norms, routers, output)\n", sz(mi.resident_bytes, b1));
    printf("expert bytes:    %s (routed experts, %.1f%% of the file)\n", sz(mi.expert_bytes, b1),
           mi.total_bytes ? 100.0 * mi.expert_bytes / mi.total_bytes : 0.0);
    if (mi.moe) printf("one expert:      %s (gate + up + down)\n", sz(mi.one_expert_bytes, b1));
    const uint64_t kv = mi.kv_bytes, scratch = mi.scratch_bytes;
    if (mi.n_layer_recurrent)
        printf("KV cache:        %s for %d tokens (f16, %u attention layers) + recurrent state %s (%u Gated "
               "DeltaNet layers: conv + delta-rule state, f32, any length)\n",
               sz(kv - mi.state_bytes, b1), mi.n_ctx, mi.n_layer - mi.n_layer_recurrent, sz(mi.state_bytes, b2),
               mi.n_layer_recurrent);
    else printf("KV cache:        %s for %d tokens (f16)\n", sz(kv, b1), mi.n_ctx);
    if (mi.n_swa_layers)
        printf("sliding window:  %u tokens on %u of %u layers, %d KV cells each (window + batch %d)\n", mi.n_swa,
               mi.n_swa_layers, mi.n_layer, mi.swa_cells, mi.n_batch);
    printf("scratch:         %s (batch %d)\n", sz(scratch, b1), mi.n_batch);
    printf("RAM, all in RAM: %s (weights %s + KV + scratch)\n", sz(mi.total_bytes + kv + scratch, b2),
           sz(mi.total_bytes, b3));
    if (mi.moe) {
        uint64_t min_cache = (uint64_t)mi.n_expert_used * mi.one_expert_bytes;
        printf("RAM, offloaded:  at least %s (resident + KV + scratch + %u experts)\n",
               sz(mi.resident_bytes + kv + scratch + min_cache, b1), mi.n_expert_used);
    }
    return 0;
}

/* The VRAM tier's logic on the CPU (the "sim" device): the plan and its
 * refusal, the cost model's choices, promotion, eviction by decayed use,
 * protection of the current layer's slots, and the statistics. */
#include "gpu/tier.h"
#include "mp_test.h"

#include <math.h>
#include <string.h>

#define MiB (1024ull * 1024ull)
#define GiB (1024ull * MiB)

static const mp_tier_costs costs = {.pcie_Bps = 25e9, .cpu_Bps = 20e9, .cpu_tok_tile = 4, .gpu_Bps = 2e12,
                                    .gpu_launch_s = 10e-6};

static void test_plan(void)
{
    mp_vram_plan p;
    mp_err err = {0};
    /* 6 GiB: 1 GiB resident, 0.5 KV, 0.25 scratch -> 4.25 GiB of 2 MiB experts = 2176 */
    CHECK(mp_vram_plan_make(&p, 6 * GiB, 1 * GiB, GiB / 2, GiB / 4, 2 * MiB, 6144, 8, &err) == MP_OK);
    CHECKF(p.slots == 2176, "slots %u", p.slots);
    CHECK(p.expert_cache == 2176ull * 2 * MiB);
    char line[512];
    mp_vram_plan_describe(&p, line, sizeof line);
    CHECKF(strstr(line, "expert cache 2176 of 6144 experts") != NULL, "%s", line);
    /* more than the model: slots stop at every expert */
    CHECK(mp_vram_plan_make(&p, 64 * GiB, 1 * GiB, GiB / 2, GiB / 4, 2 * MiB, 6144, 8, &err) == MP_OK);
    CHECK(p.slots == 6144);
    mp_vram_plan_describe(&p, line, sizeof line);
    CHECKF(strstr(line, "every expert fits") != NULL, "%s", line);
    /* too small: refused with the minimum (1.75 GiB + 8 x 2 MiB = 1.77 GiB) */
    mp_err e2 = {0};
    CHECK(mp_vram_plan_make(&p, GiB, 1 * GiB, GiB / 2, GiB / 4, 2 * MiB, 6144, 8, &e2) == MP_E_BUDGET);
    CHECKF(strstr(e2.msg, "need at least 1.77 GiB") && strstr(e2.msg, "KV cache 0.50 GiB") &&
               strstr(e2.msg, "8 experts"),
           "%s", e2.msg);
}

static void test_costs(void)
{
    const uint64_t eb = 2 * MiB;
    /* decode: CPU 105 us, copy 84 us, GPU 11 us: a copy pays on its first use */
    CHECK(fabs(mp_tier_cpu_s(&costs, eb, 1) - eb / 20e9) < 1e-12);
    CHECK(fabs(mp_tier_cpu_s(&costs, eb, 9) - 3 * eb / 20e9) < 1e-12); /* 3 tiles of 4 tokens */
    CHECK(fabs(mp_tier_gpu_s(&costs, eb, 1) - (eb / 2e12 + 10e-6)) < 1e-12);
    CHECK(fabs(mp_tier_copy_s(&costs, eb) - eb / 25e9) < 1e-12);
}

/* n_layer 2 x 8 experts, 3 slots */
static mp_tier *make(mp_tier_costs c, uint32_t slots)
{
    mp_tier_params tp = {.kind = MP_DEVICE_SIM, .costs = c, .n_layer = 2, .n_expert = 8, .decay = 0.5};
    mp_err err = {0};
    CHECK(mp_vram_plan_make(&tp.plan, 100 * MiB + slots * 2 * MiB, 100 * MiB, 0, 0, 2 * MiB, 16, 1, &err) == MP_OK);
    CHECK(tp.plan.slots == slots);
    mp_tier *t = NULL;
    CHECK(mp_tier_create(&t, &tp, &err) == MP_OK);
    return t;
}

static void test_cache(void)
{
    mp_tier *t = make(costs, 3);
    int slot;
    mp_tier_stats_gpu st;
    /* first uses: promoted (a copy pays at once here) */
    mp_tier_begin_layer(t, 0, 1);
    CHECK(mp_tier_place(t, 0, 1, 1, &slot) == MP_RUN_GPU_COPY && slot >= 0);
    CHECK(mp_tier_place(t, 0, 2, 1, &slot) == MP_RUN_GPU_COPY);
    mp_tier_begin_layer(t, 1, 1);
    CHECK(mp_tier_place(t, 1, 5, 1, &slot) == MP_RUN_GPU_COPY);
    CHECK(mp_tier_resident(t, 0, 1) && mp_tier_resident(t, 0, 2) && mp_tier_resident(t, 1, 5));
    /* a hit */
    mp_tier_begin_layer(t, 0, 1);
    CHECK(mp_tier_place(t, 0, 1, 1, &slot) == MP_RUN_GPU_HIT);
    /* full: a new expert with count 1 evicts the coldest (layer 0 expert 2,
     * decayed to 0.5 after one token), never expert 1 (used this layer) */
    CHECK(mp_tier_place(t, 0, 3, 1, &slot) == MP_RUN_GPU_COPY);
    CHECK(!mp_tier_resident(t, 0, 2) && mp_tier_resident(t, 0, 1) && mp_tier_resident(t, 0, 3));
    mp_tier_get_stats(t, &st);
    CHECKF(st.demands == 5 && st.hits == 1 && st.promotions == 4 && st.evictions == 1, "%llu %llu %llu %llu",
           (unsigned long long)st.demands, (unsigned long long)st.hits, (unsigned long long)st.promotions,
           (unsigned long long)st.evictions);
    CHECK(st.bytes_up == 4 * 2 * MiB && st.run_gpu == 5 && st.run_cpu == 0);
    CHECK(fabs(st.stall_s - 4 * (2.0 * MiB / 25e9)) < 1e-12);
    /* every slot in use by this layer: the next runs on the CPU */
    CHECK(mp_tier_place(t, 0, 2, 1, &slot) == MP_RUN_GPU_COPY); /* evicts layer 1's expert 5 */
    CHECK(!mp_tier_resident(t, 1, 5));
    CHECK(mp_tier_place(t, 0, 4, 1, &slot) == MP_RUN_CPU && slot == -1);
    mp_tier_get_stats(t, &st);
    CHECK(st.run_cpu == 1);
    mp_tier_free(t);
}

static void test_cost_choice(void)
{
    /* a slow link: a copy (2 MiB / 1 GB/s = 2.1 ms) never pays for one
     * decode use (CPU 105 us) but pays once the expert is used often */
    mp_tier_costs slow = costs;
    slow.pcie_Bps = 1e9;
    mp_tier *t = make(slow, 3);
    int slot, n_cpu = 0;
    mp_run_where w = MP_RUN_CPU;
    for (int tok = 0; tok < 40 && w == MP_RUN_CPU; tok++) {
        mp_tier_begin_layer(t, 0, 1);
        w = mp_tier_place(t, 0, 7, 1, &slot);
        n_cpu += w == MP_RUN_CPU;
    }
    CHECKF(w == MP_RUN_CPU, "decay 0.5 caps the count at 2: never worth 2.1 ms");
    mp_tier_free(t);
    /* decay 0.99: the count grows to about 22 uses, past 2.1 ms / 94 us */
    mp_tier_params tp = {.kind = MP_DEVICE_SIM, .costs = slow, .n_layer = 2, .n_expert = 8, .decay = 0.99};
    mp_err err = {0};
    CHECK(mp_vram_plan_make(&tp.plan, 106 * MiB, 100 * MiB, 0, 0, 2 * MiB, 16, 1, &err) == MP_OK);
    CHECK(mp_tier_create(&t, &tp, &err) == MP_OK);
    n_cpu = 0;
    w = MP_RUN_CPU;
    for (int tok = 0; tok < 100 && w == MP_RUN_CPU; tok++) {
        mp_tier_begin_layer(t, 0, 1);
        w = mp_tier_place(t, 0, 7, 1, &slot);
        n_cpu += w == MP_RUN_CPU;
    }
    CHECKF(w == MP_RUN_GPU_COPY && n_cpu >= 15 && n_cpu <= 30, "promoted after %d CPU runs", n_cpu);
    /* prefill: 64 tokens on the CPU (16 tiles, 1.7 ms) still beat the 2.1 ms
     * copy; 128 (3.4 ms) do not, so a new expert is copied up at once */
    mp_tier_begin_layer(t, 1, 64);
    CHECK(mp_tier_place(t, 1, 3, 64, &slot) == MP_RUN_CPU);
    mp_tier_begin_layer(t, 1, 128);
    CHECK(mp_tier_place(t, 1, 4, 128, &slot) == MP_RUN_GPU_COPY);
    mp_tier_free(t);
}

int main(void)
{
    test_plan();
    test_costs();
    test_cache();
    test_cost_choice();
    MP_TEST_DONE();
}

/* A session wires the parts together: model + memory plan + expert provider
 * (mapped file, or the expert cache streaming from disk) + context
 * (+ tokenizer). */
#ifndef MP_SESSION_H
#define MP_SESSION_H

#include "cache/cache.h"
#include "common/defaults.h"
#include "common/err.h"
#include "experts/experts.h"
#include "model/forward.h"
#include "model/model.h"
#include "runtime/plan.h"
#include "runtime/predictor_file.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_session_params {
    const char *model_path;
    int n_ctx, n_batch, n_threads;
    int n_seq;           /* KV caches (server slots); 0: 1 */
    int n_ckpt;          /* recurrent-state checkpoints per sequence; 0: none */
    bool need_tokenizer; /* fail if the file has no usable tokenizer */
    /* Memory budget: any of these streams experts through the cache. With
     * none (and not mmap) the planner reads what the machine allows
     * (MemAvailable, the cgroup's limit) and streams with a budget that fits
     * when the whole file would not (mp_plan_auto, a note says so). */
    uint64_t mem;           /* --mem: whole process */
    uint64_t cache_bytes;   /* --cache-size */
    uint32_t cache_experts; /* --cache-experts: slots per MoE layer */
    bool mmap;              /* --mmap / --mem 0: map the whole file whatever the machine
                             * allows (MP_E_INVAL with a budget option) */
    const char *io;         /* "auto" (NULL), "uring", "pread" */
    unsigned io_depth;      /* 0: default */
    const char *policy;     /* replacement policy name; NULL: default */
    const char *fault_spec; /* I/O fault injection (tests); NULL: none */
    uint32_t io_timeout_ms; /* a read wait this long without progress fails the run; 0: 30000 */
    /* Prefetch (only when experts stream through the cache). */
    mp_prefetch_cfg prefetch;
    bool prefetch_set;      /* false: the default (MP_DEFAULT_PREFETCH) */
    const char *trace_out;  /* write the routing of every token and layer here */
    const char *hidden_out; /* write hidden-state records here (trace/hidden.h) */
    const char *predictor;  /* a trained routing predictor (runtime/predictor_file.h); NULL: none */
    bool predictor_found;   /* predictor is the file found beside the model (predictor_buf) */
    char predictor_buf[4096];
    /* Routing replay: the experts and weights of every (position, MoE layer)
     * come from this trace instead of the model's router (trace/routing.h
     * says how positions map); NULL: the model's own routing. */
    const char *routing_trace;
    bool routing_one_seq;   /* only sequence routing_seq; else all, concatenated */
    uint32_t routing_seq;
    bool no_preload;        /* don't fill a cache that holds every expert at start */
    bool no_hugepages;      /* don't ask for transparent huge pages for the cache slab */
    /* The VRAM tier (runtime/vram.c). device: "auto" (NULL: cuda when a
     * device is present, else none), "cuda", "sim" (the CPU posing as a
     * device, for tests), "cpu" (none). vram: its budget when vram_given (0:
     * CPU only); else most of the free VRAM (sim: required). */
    const char *device;
    uint64_t vram;
    bool vram_given;
} mp_session_params;

typedef struct mp_session {
    mp_model *model;
    struct mp_pack *pack; /* the file, when the model is a .moepack */
    mp_experts *experts;
    mp_ctx *ctx;
    mp_tokenizer *tok; /* NULL when the file has none and none was required */
    mp_plan plan;
    mp_cache *cache;   /* NULL when experts are mapped */
    void *resident_buf;
    struct mp_trace_writer *trace;
    struct mp_hidden_writer *hidden;
    struct mp_routing *routing;   /* the replayed routing, or NULL */
    struct mp_gate_copy *gate;    /* lookahead's compact routers, or NULL */
    mp_pred_file pred;            /* --predictor's nets (n_nets 0: none) */
    uint32_t *moe_index;          /* [n_layer] index of each layer among the MoE layers */
    bool preloaded;               /* every expert was read at start */
    mp_cache_stats preload_stats; /* what that cost */
    uint64_t trace_errors;
    char note[1024];   /* announcements (fallbacks), "\n"-separated; "" if none */
    struct mp_backend *backend; /* the VRAM tier's compute backend, or NULL (CPU only) */
    bool device_tier;           /* p asks for a VRAM tier (mp_session_wants_device): experts
                                 * keep the GGUF row layout the device reads */
    bool repack_all_experts;    /* MP_REPACK_EXPERTS=1: every type with interleaved kernels,
                                 * not only those whose decode gains (mp_repack_pays_decode) */
} mp_session;

int mp_session_open(mp_session **out, const mp_session_params *p, mp_err *err);
/* The memory plan mp_session_open makes for p, model m (pack: its experts
 * are a pack's blocks) and expert locations locs: a budget option, --mmap,
 * or (neither) what the machine allows; extra_overhead: bytes held besides
 * (a predictor's nets). MP_E_INVAL for --mmap with a budget option; else
 * mp_plan_make's result. */
int mp_session_plan(const mp_session_params *p, const mp_model *m, bool pack, const mp_expert_loc *locs,
                    uint64_t extra_overhead, mp_plan *plan, mp_err *err);
/* Whether MODEL.predictor.gguf (MODEL: model_path less a final .gguf) is a
 * regular file; its path into buf. */
bool mp_session_find_predictor(const char *model_path, char *buf, size_t cap);

/* p->predictor read and checked against m into *out (zeroed when none). */
int mp_session_load_predictor(const mp_session_params *p, const mp_model *m, mp_pred_file *out, mp_err *err);
void mp_session_free(mp_session *s); /* NULL-safe */
/* Makes the VRAM tier p asks for (runtime/vram.c): its plan, as a note;
 * the backend, handed to s->ctx. MP_OK with nothing made when there is no
 * device or vram is 0; MP_E_BUDGET with the minimum for an impossible plan. */
int mp_session_open_vram(mp_session *s, const mp_session_params *p, mp_err *err);
/* Whether p makes a VRAM tier (a device, sim or CUDA, and a budget not 0);
 * the reasons it may still fail are mp_session_open_vram's to report. */
bool mp_session_wants_device(const mp_session_params *p);

/* With routing replay: MP_OK when the trace routes positions pos0 ..
 * pos0+n-1 at every MoE layer, else MP_E_RANGE naming the first position
 * and layer it lacks (checked before an eval, so a run fails before it
 * computes anything it cannot finish). MP_OK without replay. */
int mp_session_check_routing(const mp_session *s, int64_t pos0, int64_t n, mp_err *err);

#endif

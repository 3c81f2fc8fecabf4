# Sourced by the parity tests (tests/test_parity_*.sh), tests/test_gen.sh and
# tools/make_golden.sh: where the llama.cpp peer is, and the one definition of the
# parity models, prompt and tolerances, so the golden files and the live comparison
# can never drift apart.

# mp_find_peer: prints the directory of a built llama.cpp peer (one holding
# build/llama_logits that starts), or nothing. Looked for, in order:
#   $MP_PEER                          (tools/test.sh exports it after building the peer)
#   $MP_BUILD/peer/llamacpp           (where tools/test.sh builds it)
#   $MP_SRC/build/peer/llamacpp       (same, seen from the ASan or scalar build trees)
#   $MP_SRC/../shared/peers/llamacpp  (the shared checkout, after its own `make`)
mp_find_peer() {
    local d
    for d in "${MP_PEER:-}" "${MP_BUILD:-.}/peer/llamacpp" "${MP_SRC:-..}/build/peer/llamacpp" \
             "${MP_SRC:-..}/../shared/peers/llamacpp"; do
        [ -n "$d" ] && [ -x "$d/build/llama_logits" ] || continue
        # a peer that cannot even start (missing shared libraries: 127) counts as not built
        "$d/build/llama_logits" -m /nonexistent --ids 1 >/dev/null 2>&1
        [ $? -eq 127 ] && continue
        (cd "$d" && pwd)
        return 0
    done
    return 1
}

# The parity prompt: BOS and 63 fixed ids below the 384-token vocabulary.
MP_PARITY_IDS=1
for _i in $(seq 1 63); do MP_PARITY_IDS="$MP_PARITY_IDS,$(( (_i * 37 + 11) % 377 + 3 ))"; done
unset _i
MP_PARITY_ARCHS="llama llama-moe qwen3moe olmoe"
MP_PARITY_TYPES_ALL="f32 f16 bf16 q8_0 q4_0 q4_K q5_K q6_K"
MP_PARITY_NGEN=32   # greedy tokens compared after the prompt

# mp_parity_gen GEN ARCH TYPE FILE: the parity model of ARCH x TYPE (mp-gen, seed 11;
# deterministic: the goldens record each file's sha256 and the golden test checks it).
mp_parity_gen() {
    local kv=4
    [ "$2" = olmoe ] && kv=8
    "$1" --arch "$2" --type "$3" --n-embd 256 --n-head 8 --n-head-kv $kv --n-ff 512 \
        --n-layer 2 --n-expert 4 --n-expert-used 2 --n-vocab 384 --seed 11 -q -o "$4"
}

# mp_parity_exact: true when this build computes in llama.cpp's order on this CPU, i.e.
# the SIMD kernels are in use: not a scalar build (CMake sets MP_FORCE_SCALAR=1 in the
# tests' environment) and no $MP_ISA cap below AVX-512. Measured (2026-12-06, AMD EPYC
# with AVX-512, llama.cpp's zen4 backend): such builds give bit-identical logits on all
# 32 parity models; the scalar build differs by up to 1.4e-2 of the largest logit (its
# reference kernels sum in another order, and a flipped rounding in the 8-bit activation
# quantisation of one layer grows through the next) and its greedy tokens part after
# ~18 tokens on 4 of 32 models; MP_ISA=avx2 matched 18 of 32 bit for bit.
mp_parity_exact() {
    [ "${MP_FORCE_SCALAR:-0}" != 1 ] && { [ -z "${MP_ISA:-}" ] || [ "${MP_ISA}" = avx512 ]; }
}

# mp_parity_tol TYPE: the bound on max|engine - llama.cpp| / max|llama.cpp|: 1e-4 for f32,
# 1e-2 otherwise, where mp_parity_exact. Elsewhere (the scalar build, a capped ISA) 3e-3 for
# f32 and 5e-2 for the quantised types: a rounding flipped by another summation order (the
# f16 KV cache, an 8-bit activation) grows through random-weight layers. Measured in the
# scalar build (2026-12-06): minimax-m2 f32 with the prompt in chunks of 16, 1.3e-3; a
# llama-quantize DeepSeek Q3_K_M, 3.02e-2. A wrong rope, norm or routing is off by far
# more, O(1).
mp_parity_tol() {
    if mp_parity_exact; then
        if [ "$1" = f32 ]; then echo 1e-4; else echo 1e-2; fi
    elif [ "$1" = f32 ]; then echo 3e-3; else echo 5e-2; fi
}

# mp_cpu_simd_flags: this CPU's SIMD feature flags (from /proc/cpuinfo), sorted, one line.
# The goldens record them: bit-identity is only expected on a CPU with the same set.
mp_cpu_simd_flags() {
    grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' |
        grep -E '^(avx[a-z0-9_]*|fma|f16c|bmi2|amx[a-z0-9_]*)$' | sort | paste -sd' ' -
}

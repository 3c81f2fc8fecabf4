# The interleaved layout end to end: on mp-gen models (a dense llama and a
# qwen3moe; Q4_0, Q4_K, Q8_0, Q5_K, Q6_K and the Q4_K_M mix; the parity shape
# and 64-token prompt), the
# logits of a run whose resident matrices were repacked at load (--mem: the
# resident weights are read into RAM; the run must say it repacked) are
# byte-identical to the same run with MP_REPACK=0 and to the mapped run
# (--mmap: nothing repacked), prompt (T = 64) and 8 greedy tokens (T = 1);
# for qwen3moe also a run streaming experts through 2 slots a layer with
# MP_REPACK_EXPERTS=1 (each expert repacked as it enters its slot), and
# its pack (moepager pack; all experts cached, repacked after the block check).
# With the mapped run equal to llama.cpp --no-repack (test_parity_llamacpp*),
# repacking keeps that parity.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
for exe in moepager mp-gen; do
    if [ ! -x "$B/$exe" ]; then echo "FAIL: $B/$exe not built"; exit 1; fi
done
if [ "${MP_FORCE_SCALAR:-0}" = 1 ] || [ "${MP_ISA:-}" = scalar ]; then
    echo "SKIP: scalar kernels (MP_FORCE_SCALAR / MP_ISA=scalar): nothing is repacked (test_repack covers the layout's scalar path)"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-repack.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
for arch in llama qwen3moe; do
    for type in q4_0 q4_K q8_0 q5_K q6_K q4_K_m; do
        m="$T/$arch-$type.gguf"
        mp_parity_gen "$B/mp-gen" "$arch" "$type" "$m" || { echo "FAIL: mp-gen $arch $type"; fail=1; continue; }
        run() { "$B/moepager" logits -m "$m" --ids "$MP_PARITY_IDS" -n 8 -t 2 -o "$@"; }
        # --mem 64M streams the experts of qwen3moe (resident load + cache), holds all of llama
        # MP_REPACK=1: every type with interleaved kernels (by default only those whose
        # one-token kernel gains on this ISA, mp_repack_pays_decode)
        if ! MP_REPACK=1 run "$T/rp.f32" --mem 64M 2>"$T/rp.err" >/dev/null; then echo "FAIL: $arch $type repacked run:"; cat "$T/rp.err"; fail=1; continue; fi
        if ! grep -q "repacked [1-9][0-9]* resident matrices" "$T/rp.err"; then
            echo "FAIL: $arch $type: the --mem run did not repack:"; cat "$T/rp.err"; fail=1
        fi
        MP_REPACK=0 run "$T/plain.f32" --mem 64M 2>"$T/plain.err" >/dev/null || { echo "FAIL: $arch $type MP_REPACK=0 run"; cat "$T/plain.err"; fail=1; continue; }
        if grep -q "repacked" "$T/plain.err"; then echo "FAIL: $arch $type: MP_REPACK=0 still repacked"; fail=1; fi
        run "$T/map.f32" --mmap 2>"$T/map.err" >/dev/null || { echo "FAIL: $arch $type mapped run"; cat "$T/map.err"; fail=1; continue; }
        r=
        if [ "$arch" = qwen3moe ]; then
            # experts streamed through 2 slots a layer, repacked as they enter a slot
            MP_REPACK_EXPERTS=1 run "$T/ex.f32" --cache-experts 2 2>"$T/ex.err" >/dev/null || { echo "FAIL: $arch $type streamed run"; cat "$T/ex.err"; fail=1; continue; }
            grep -q "experts are repacked as they enter the cache" "$T/ex.err" || { echo "FAIL: $arch $type: experts not repacked"; cat "$T/ex.err"; fail=1; }
            cmp -s "$T/ex.f32" "$T/map.f32" || { r="$r DIFF(streamed)"; fail=1; }
            # a pack: its check and decode first, then the repacking, in the slot
            if "$B/moepager" pack "$m" -o "$T/p.moepack" -t 2 >/dev/null 2>"$T/pk.err" &&
                MP_REPACK=1 "$B/moepager" logits -m "$T/p.moepack" --ids "$MP_PARITY_IDS" -n 8 -t 2 -o "$T/pk.f32" 2>"$T/pk.err" >/dev/null; then
                grep -q "experts are repacked" "$T/pk.err" || { echo "FAIL: $arch $type: pack experts not repacked"; fail=1; }
                cmp -s "$T/pk.f32" "$T/map.f32" || { r="$r DIFF(pack)"; fail=1; }
            else
                echo "FAIL: $arch $type pack run:"; cat "$T/pk.err"; fail=1
            fi
        fi
        cmp -s "$T/rp.f32" "$T/plain.f32" || { r="$r DIFF(plain)"; fail=1; }
        cmp -s "$T/rp.f32" "$T/map.f32" || { r="$r DIFF(mapped)"; fail=1; }
        printf "%-9s %-5s %s\n" "$arch" "$type" "${r:-same}"
    done
done
exit $fail

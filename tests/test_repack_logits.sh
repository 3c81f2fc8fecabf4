# The interleaved layout end to end: on mp-gen models (a dense llama and a
# qwen3moe, Q4_0 / Q4_K / Q8_0, the parity shape and 64-token prompt), the
# logits of a run whose resident matrices were repacked at load (--mem: the
# resident weights are read into RAM; the run must say it repacked) are
# byte-identical to the same run with MP_REPACK=0 and to the mapped run
# (no budget: nothing repacked), prompt (T = 64) and 8 greedy tokens (T = 1).
# With the mapped run equal to llama.cpp --no-repack (test_parity_llamacpp*),
# repacking keeps that parity.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
for exe in moepager mp-gen; do
    if [ ! -x "$B/$exe" ]; then echo "FAIL: $B/$exe not built"; exit 1; fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-repack.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
for arch in llama qwen3moe; do
    for type in q4_0 q4_K q8_0; do
        m="$T/$arch-$type.gguf"
        mp_parity_gen "$B/mp-gen" "$arch" "$type" "$m" || { echo "FAIL: mp-gen $arch $type"; fail=1; continue; }
        run() { "$B/moepager" logits -m "$m" --ids "$MP_PARITY_IDS" -n 8 -t 2 -o "$@"; }
        # --mem 64M streams the experts of qwen3moe (resident load + cache), holds all of llama
        if ! run "$T/rp.f32" --mem 64M 2>"$T/rp.err" >/dev/null; then echo "FAIL: $arch $type repacked run:"; cat "$T/rp.err"; fail=1; continue; fi
        if ! grep -q "repacked [1-9][0-9]* resident matrices" "$T/rp.err"; then
            echo "FAIL: $arch $type: the --mem run did not repack:"; cat "$T/rp.err"; fail=1
        fi
        MP_REPACK=0 run "$T/plain.f32" --mem 64M 2>"$T/plain.err" >/dev/null || { echo "FAIL: $arch $type MP_REPACK=0 run"; cat "$T/plain.err"; fail=1; continue; }
        if grep -q "repacked" "$T/plain.err"; then echo "FAIL: $arch $type: MP_REPACK=0 still repacked"; fail=1; fi
        run "$T/map.f32" --mmap 2>"$T/map.err" >/dev/null || { echo "FAIL: $arch $type mapped run"; cat "$T/map.err"; fail=1; continue; }
        r=same
        cmp -s "$T/rp.f32" "$T/plain.f32" || { r="DIFF(plain)"; fail=1; }
        cmp -s "$T/rp.f32" "$T/map.f32" || { r="$r DIFF(mapped)"; fail=1; }
        printf "%-9s %-5s %s\n" "$arch" "$type" "$r"
    done
done
exit $fail

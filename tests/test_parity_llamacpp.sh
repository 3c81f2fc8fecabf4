# Parity with llama.cpp (the issue's acceptance test): on random mp-gen models
# of every architecture x weight type, a 64-token prompt:
#   max|engine - llama.cpp| / max|llama.cpp| <= 1e-4 for f32, <= 1e-2 otherwise,
#   and the same 32 greedy tokens.
# The f32 rows also check the double-precision reference (mp-ref-logits)
# against llama.cpp at 1e-4. Prints a table of the measured ratios.
# Skips (77) when no built peer is found: $MP_PEER (a directory with
# build/llama_logits) or $MP_SRC/../shared/peers/llamacpp (after its make).
# Types: $MP_PARITY_TYPES (default f32 f16 bf16 q8_0; the other four run in
# test_parity_llamacpp_kquants.sh, so each script stays under a minute: one
# llama_logits start costs ~2-3 s on a loaded 2-core machine).
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
LL=
for d in "${MP_PEER:-}" "$S/../shared/peers/llamacpp"; do
    if [ -n "$d" ] && [ -x "$d/build/llama_logits" ]; then LL="$d/build/llama_logits"; break; fi
done
if [ -z "$LL" ]; then echo "SKIP: no built llama.cpp peer (set MP_PEER)"; exit 77; fi
for exe in moepager mp-gen mp-ref-logits mp-cmp-logits; do
    if [ ! -x "$B/$exe" ]; then echo "FAIL: $B/$exe not built"; exit 1; fi
done
# a peer that cannot even start (missing shared libraries) counts as not built
"$LL" -m /nonexistent --ids 1 >/dev/null 2>&1
[ $? -eq 127 ] && { echo "SKIP: $LL does not run"; exit 77; }
echo "peer: $LL"
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-parity.XXXXXX")
trap 'rm -rf "$T"' EXIT

IDS=1
for i in $(seq 1 63); do IDS="$IDS,$(( (i * 37 + 11) % 377 + 3 ))"; done

fail=0
gen() { # arch type file
    local kv=4
    [ "$1" = olmoe ] && kv=8
    "$B/mp-gen" --arch "$1" --type "$2" --n-embd 256 --n-head 8 --n-head-kv $kv --n-ff 512 \
        --n-layer 2 --n-expert 4 --n-expert-used 2 --n-vocab 384 --seed 11 -q -o "$3"
}
printf "%-10s %-6s %-12s %-8s %-12s\n" arch type eng/llama greedy32 ref/llama
for arch in llama llama-moe qwen3moe olmoe; do
    for type in ${MP_PARITY_TYPES:-f32 f16 bf16 q8_0}; do
        m="$T/$arch-$type.gguf"
        if ! gen "$arch" "$type" "$m"; then echo "FAIL: mp-gen $arch $type"; fail=1; continue; fi
        tol=1e-2; [ "$type" = f32 ] && tol=1e-4
        # --no-repack: llama.cpp computes with its standard kernels (its repacked
        # Q4_0/Q4_K kernels sum in another order), as in the shared bench recipe
        lc=$("$LL" -m "$m" --ids "$IDS" -n 32 -t 2 --no-repack --dump "$T/l.f32" 2>&1)
        if [ $? -ne 0 ]; then echo "FAIL: llama_logits $arch $type:"; echo "$lc" | tail -5; fail=1; continue; fi
        eng=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/e.f32" -n 32 -t 2 2>"$T/e.err")
        if [ $? -ne 0 ]; then echo "FAIL: moepager logits $arch $type:"; cat "$T/e.err"; fail=1; continue; fi
        out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol $tol); rc=$?
        ratio=$(echo "$out" | awk '{print $6}')
        gl=$(echo "$lc" | grep '^gen_ids:'); ge=$(echo "$eng" | grep '^gen_ids:')
        g=same
        if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; fail=1; fi
        rr=-
        if [ "$type" = f32 ]; then
            if "$B/mp-ref-logits" -m "$m" --ids "$IDS" -o "$T/r.f32"; then
                rout=$("$B/mp-cmp-logits" "$T/r.f32" "$T/l.f32" --tol 1e-4) || { fail=1; echo "FAIL: ref vs llama.cpp $arch $type: $rout"; }
                rr=$(echo "$rout" | awk '{print $6}')
            else
                fail=1; echo "FAIL: mp-ref-logits $arch $type"
            fi
        fi
        printf "%-10s %-6s %-12s %-8s %-12s\n" "$arch" "$type" "$ratio" "$g" "$rr"
        if [ $rc -ne 0 ]; then echo "FAIL: $arch $type: $out (tol $tol)"; fail=1; fi
        if [ "$g" = DIFF ]; then echo "  llama.cpp $gl"; echo "  engine    $ge"; fi
    done
done
exit $fail

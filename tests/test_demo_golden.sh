# The trained demo model against logits llama.cpp wrote for it (tests/golden/
# demo-stdlib-moe.{f32,txt}, tools/make_demo_golden.sh), so its parity stays checked
# where no peer is built: the model file must be the one the goldens were made from
# (sha256), then `moepager logits` on BOS + 200 held-out bytes, mapped and streaming
# (3 experts per layer): bit-identical logits and the same 32 greedy tokens with SIMD
# kernels on a CPU with the goldens' SIMD flags; otherwise within mp_parity_tol (1e-2,
# 3e-2 for scalar or capped kernels) and greedy tokens reported only.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
M="$S/models/demo-stdlib-moe.gguf"
G="$S/tests/golden/demo-stdlib-moe"
for exe in moepager mp-cmp-logits; do [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }; done
[ -f "$M" ] && [ -f "$G.f32" ] && [ -f "$G.txt" ] || { echo "FAIL: $M or $G.{f32,txt} missing (committed)"; exit 1; }
sha=$(sed -n 's/^sha256 //p' "$G.txt"); ids=$(sed -n 's/^ids //p' "$G.txt"); greedy=$(sed -n 's/^greedy //p' "$G.txt")
[ "$(sha256sum "$M" | cut -d' ' -f1)" = "$sha" ] ||
    { echo "FAIL: $M is not the model the goldens were written for: rerun tools/make_demo_golden.sh with the peer"; exit 1; }
gflags=$(sed -n 's/^# cpu flags: //p' "$G.txt")
mode=bounded
mp_parity_exact && [ "$gflags" = "$(mp_cpu_simd_flags)" ] && mode=exact
echo "mode: $mode"
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-demo-golden.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
for flags in --mmap "--cache-experts 3"; do
    ge=$("$B/moepager" logits -m "$M" --ids "$ids" -o "$T/e.f32" -n "$MP_PARITY_NGEN" -t 2 $flags 2>"$T/err" |
         sed -n 's/^gen_ids: //p')
    [ -n "$ge" ] || { echo "FAIL: moepager logits $flags:"; cat "$T/err"; fail=1; continue; }
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$G.f32" --tol "$(mp_parity_tol q8_0)") || { echo "FAIL: $flags: $out"; fail=1; }
    bx=no; cmp -s "$T/e.f32" "$G.f32" && bx=yes
    [ $mode = exact ] && [ $bx = no ] && { echo "FAIL: $flags: not bit-identical: $out"; fail=1; }
    g=same; [ "$ge" = "$greedy" ] || { g=DIFF; [ $mode = exact ] && fail=1; }
    echo "$flags: $(echo "$out" | awk '{print "max rel diff", $6}'), bit-identical $bx, greedy32 $g"
done
exit $fail

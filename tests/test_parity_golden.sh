# Parity with llama.cpp without llama.cpp: the engine's logits against the ones the
# peer wrote for the same models (tests/golden/, made by tools/make_golden.sh), so the
# bit-exactness claim stays checked where the peer cannot be built (no npm registry).
# For every line of tests/golden/MANIFEST (4 architectures x 8 weight types):
#   - mp-gen rewrites the model with the parity recipe (tests/helpers/parity.sh) and
#     its sha256 must be the recorded one (mp-gen deterministic for a seed; otherwise
#     the goldens are stale: rerun tools/make_golden.sh with the peer);
#   - `moepager logits` on the 64-token prompt, then one of:
#     exact    (SIMD kernels on a CPU with the goldens' SIMD flags, the MANIFEST header):
#              bit-identical logits and the same 32 greedy tokens as llama.cpp;
#     bounded  (a scalar build, an $MP_ISA cap, or another CPU, where llama.cpp itself
#              would pick another backend): max|engine - golden| / max|golden| within
#              mp_parity_tol (1e-4 f32; 1e-2, or 3e-2 for scalar/capped kernels), greedy
#              tokens reported only.
# Runs whether or not a peer is around (cheap: no llama.cpp start).
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
G="$S/tests/golden"
[ -f "$G/MANIFEST" ] || { echo "FAIL: $G/MANIFEST missing (tools/make_golden.sh writes it)"; exit 1; }
for exe in moepager mp-gen mp-cmp-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-golden.XXXXXX")
trap 'rm -rf "$T"' EXIT
grep '^# \(cpu backend\|llama_commit\|device\)' "$G/MANIFEST"
gflags=$(sed -n 's/^# cpu flags: //p' "$G/MANIFEST")
if mp_parity_exact && [ -n "$gflags" ] && [ "$gflags" = "$(mp_cpu_simd_flags)" ]; then
    mode=exact
    echo "mode: exact (SIMD kernels, same CPU SIMD flags as the goldens): bit-identical logits and greedy tokens"
else
    mode=bounded
    echo "mode: bounded (MP_FORCE_SCALAR=${MP_FORCE_SCALAR:-0} MP_ISA=${MP_ISA:-}; goldens' cpu flags" \
         "$([ "$gflags" = "$(mp_cpu_simd_flags)" ] && echo same || echo differ)): within the bound, greedy reported only"
fi

fail=0 n=0 exact=0
printf "%-10s %-6s %-12s %-8s\n" arch type eng/golden greedy
while read -r arch type sha ids; do
    case "$arch" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    m="$T/m.gguf"
    if ! mp_parity_gen "$B/mp-gen" "$arch" "$type" "$m"; then echo "FAIL: mp-gen $arch $type"; fail=1; continue; fi
    got=$(sha256sum "$m" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "FAIL: $arch $type: mp-gen wrote another model than the golden one (sha256 $got, golden $sha):" \
             "mp-gen changed; rerun tools/make_golden.sh with the peer"
        fail=1; continue
    fi
    eng=$("$B/moepager" logits -m "$m" --ids "$MP_PARITY_IDS" -o "$T/e.f32" -n "$MP_PARITY_NGEN" -t 2 2>"$T/e.err")
    if [ $? -ne 0 ]; then echo "FAIL: moepager logits $arch $type:"; cat "$T/e.err"; fail=1; continue; fi
    tol=$(mp_parity_tol "$type")
    out=$("$B/mp-cmp-logits" "$T/e.f32" "$G/$arch-$type.f32" --tol "$tol"); rc=$?
    ratio=$(echo "$out" | awk '{print $6}')
    if cmp -s "$T/e.f32" "$G/$arch-$type.f32"; then exact=$((exact + 1))
    elif [ $mode = exact ]; then rc=1; out="not bit-identical: $out"; fi
    g=same
    [ "$(echo "$eng" | sed -n 's/^gen_ids: //p')" = "$ids" ] || { g=DIFF; [ $mode = exact ] && fail=1; }
    printf "%-10s %-6s %-12s %-8s\n" "$arch" "$type" "$ratio" "$g"
    [ $rc -eq 0 ] || { echo "FAIL: $arch $type: $out (tol $tol)"; fail=1; }
    if [ $g = DIFF ]; then
        [ $mode = exact ] && echo "FAIL: $arch $type: greedy tokens differ from llama.cpp's"
        echo "  llama.cpp gen_ids: $ids"
        echo "  engine    $(echo "$eng" | grep '^gen_ids:')"
    fi
done <"$G/MANIFEST"
[ $n -ge 32 ] || { echo "FAIL: only $n models in $G/MANIFEST (expected 32)"; fail=1; }
echo "golden ($mode): $n models, $exact bit-identical to llama.cpp's logits"
exit $fail

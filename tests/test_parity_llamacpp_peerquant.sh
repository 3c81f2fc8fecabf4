# Parity with llama.cpp on files made by llama.cpp's own quantiser: an F32
# mp-gen model of each parity architecture is quantised by the peer's
# llama_model_quantize (what llama-quantize runs; no importance matrix, which
# none of these types needs) to Q2_K, Q3_K_M, Q4_K_M, IQ4_XS and IQ4_NL, so the
# files carry llama.cpp's own type mixes (Q2_K: q2_K/q3_K/q6_K; Q3_K_M:
# q3_K/q4_K/q5_K/q6_K; IQ4_XS: iq4_xs/q6_K ...). For each file, on the parity
# prompt: max|engine - llama.cpp| / max|llama.cpp| <= 1e-2 and the same 32
# greedy tokens (0 difference today on AVX-512), once with the file mapped and
# once with the routed experts streamed through an expert cache of 2 of the 4
# experts per layer (--cache-experts 2: most expert uses are cache misses read
# from the file into cache slots sized from the tensors' byte sizes; the dense
# llama model only mapped).
# Issue 11: the same for deepseek2 in both MLA layouts (ds2-kb: split attn_k_b /
# attn_v_b, V3-like: q LoRA, sigmoid + exp_probs_b + groups, weights norm and scale;
# ds2-kvb: the older attn_kv_b, V2-like: attn_q, softmax, groups, scale 16) and
# glm4moe (GLM-4.5-like: q/k/v biases, q/k norms, partial rotary, an MTP block),
# 3 layers with a dense lead, 8 experts top-3, streamed through 4 cache slots.
# Their per-head widths are chosen so that no tensor needs llama-quantize's fallback.
# ds2-real (last): DeepSeek-V3's real head widths (nope 128, rope 64, v 128, kv_lora
# 512) and V2-Lite's 1408-wide expert FFN, 4 layers: rows that no 256-block divides
# fall back, as in every real DeepSeek/Kimi K-quant file: Q4_K_M puts attn_k_b and
# layer 1's ffn_down_exps / ffn_down_shexp in q5_0, Q5_K_M (ftype 17) in q5_1 (and
# the other layers' down projections, q6_K's fallback, in q8_0); mapped and streamed.
# The quantiser driver (tests/helpers/peer/peer_quantize.c) is compiled here against
# the peer's headers and libraries. Skips (77) without a built peer or a C
# compiler. A scalar build or an $MP_ISA cap: 5e-2 (mp_parity_tol), greedy tokens only reported
# (tests/helpers/parity.sh, mp_parity_exact).
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
INC="$PEER/build/llama.cpp-src"
for exe in moepager mp-gen mp-cmp-logits; do
    if [ ! -x "$B/$exe" ]; then echo "FAIL: $B/$exe not built"; exit 1; fi
done
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC) to build the peer quantiser"; exit 77; }
[ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ] ||
    { echo "SKIP: the peer has no llama.h / libllama ($INC, $BINS)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-peerquant.XXXXXX")
trap 'rm -rf "$T"' EXIT
QZ="$T/peer-quantize"
if ! "$CC" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$QZ" "$S/tests/helpers/peer/peer_quantize.c" \
        -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
    echo "FAIL: cannot build the peer quantiser:"; cat "$T/cc.err"; exit 1
fi
echo "peer: $LL"
IDS=$MP_PARITY_IDS
tol=$(mp_parity_tol q4_K)

# The issue-11 models: (mp-gen options; routed experts used per token)
DS2="--arch deepseek2 --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 256 --n-layer 3 --n-dense-lead 1
     --n-expert 8 --n-expert-used 3 --kv-lora 256 --nope-dim 256 --rope-dim 32 --v-dim 64 --n-vocab 384 --seed 11"
GLM="--arch glm4moe --n-embd 256 --n-head 4 --n-head-kv 2 --head-dim 128 --n-ff 512 --n-ff-exp 256 --n-layer 3
     --n-dense-lead 1 --n-expert 8 --n-expert-used 3 --weights-norm --weights-scale 2.5 --n-nextn 1
     --attn-bias --qk-norm --n-vocab 384 --seed 12"
gen_model() { # NAME TYPE FILE
    # shellcheck disable=SC2086
    case $1 in
    ds2-kb) "$B/mp-gen" $DS2 --q-lora 256 --gating sigmoid --probs-bias --n-group 4 --n-group-used 2 \
                --weights-norm --weights-scale 2.5 --yarn 40 --yarn-orig 256 --yarn-log-mul 0.1 --type "$2" -q -o "$3" ;;
    ds2-kvb) "$B/mp-gen" $DS2 --mla-kv-b --gating softmax --n-group 4 --n-group-used 2 --weights-scale 16 \
                --type "$2" -q -o "$3" ;;
    glm4moe) "$B/mp-gen" $GLM --type "$2" -q -o "$3" ;;
    ds2-real) "$B/mp-gen" --arch deepseek2 --n-embd 256 --n-head 4 --n-ff 512 --n-ff-exp 1408 --n-layer 4 \
                --n-dense-lead 1 --n-expert 4 --n-expert-used 2 --kv-lora 512 --nope-dim 128 --rope-dim 64 \
                --v-dim 128 --n-vocab 384 --seed 11 --type "$2" -q -o "$3" ;;
    *) mp_parity_gen "$B/mp-gen" "$1" "$2" "$3" ;;
    esac
}
cache_slots() { case $1 in ds2-real) echo 2 ;; ds2-*|glm4moe) echo 4 ;; *) echo 2 ;; esac; }
# the ftypes of each model: ds2-real the two whose fallbacks are q5_0 and q5_1
ftypes() { case $1 in ds2-real) echo "q4_K_M 17" ;; *) echo "${MP_PEERQUANT_FTYPES:-q2_K q3_K_M q4_K_M iq4_xs iq4_nl}" ;; esac; }

fail=0
printf "%-10s %-7s %-34s %-12s %-8s %-12s %-8s %s\n" arch ftype "weight types" mapped greedy32 streamed greedy32 misses
for arch in ${MP_PEERQUANT_ARCHS:-${MP_PARITY_ARCHS} ds2-kb ds2-kvb glm4moe ds2-real}; do
    f32="$T/$arch-f32.gguf"
    if ! gen_model "$arch" f32 "$f32"; then echo "FAIL: mp-gen $arch f32"; fail=1; continue; fi
    for ft in $(ftypes "$arch"); do
        m="$T/$arch-$ft.gguf"
        if ! "$QZ" "$f32" "$m" "$ft" >"$T/q.log" 2>&1; then
            echo "FAIL: peer quantise $arch $ft:"; tail -3 "$T/q.log"; fail=1; continue
        fi
        types=$(grep -o 'converting to [a-z0-9_A-Z]*' "$T/q.log" | awk '{print $3}' | sort -u | paste -sd, -)
        lc=$("$LL" -m "$m" --ids "$IDS" -n $MP_PARITY_NGEN -t 2 --no-repack --dump "$T/l.f32" 2>&1)
        if [ $? -ne 0 ]; then echo "FAIL: llama_logits $arch $ft:"; echo "$lc" | tail -5; fail=1; continue; fi
        gl=$(echo "$lc" | grep '^gen_ids:')
        row="$(printf "%-10s %-7s %-34s" "$arch" "$ft" "$types")"
        misses=-
        modes="mapped streamed"
        [ "$arch" = llama ] && modes=mapped # dense: no routed experts to stream
        for mode in $modes; do
            extra=""
            [ $mode = streamed ] && extra="--cache-experts $(cache_slots "$arch") --layer-stats"
            # shellcheck disable=SC2086
            eng=$("$B/moepager" logits -m "$m" --ids "$IDS" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 $extra 2>"$T/e.err")
            if [ $? -ne 0 ]; then echo "FAIL: moepager logits $arch $ft ($mode):"; cat "$T/e.err"; fail=1; continue 2; fi
            out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol $tol); rc=$?
            ratio=$(echo "$out" | awk '{print $6}')
            ge=$(echo "$eng" | grep '^gen_ids:')
            g=same
            if [ -z "$gl" ]; then g=DIFF; fail=1
            elif [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
            if [ $mode = streamed ]; then
                # the --layer-stats table: column 5 is each layer's cache misses
                misses=$(echo "$eng" "$(cat "$T/e.err")" | awk '$1 ~ /^[0-9]+$/ && NF >= 10 {s += $5} END {print s + 0}')
                [ "$misses" -gt 0 ] || { echo "FAIL: $arch $ft: no expert was streamed (0 cache misses)"; fail=1; }
            fi
            row="$row $(printf "%-12s %-8s" "$ratio" "$g")"
            if [ $rc -ne 0 ]; then echo "FAIL: $arch $ft ($mode): $out (tol $tol)"; fail=1; fi
            if [ "$g" = DIFF ]; then echo "  llama.cpp $gl"; echo "  engine    $ge"; fi
        done
        echo "$row $misses"
        if [ "$arch" = ds2-real ]; then
            want=q5_0; [ "$ft" = 17 ] && want=q5_1
            case ",$types," in *",$want,"*) ;; *) echo "FAIL: ds2-real $ft: no $want tensor ($types): the fallback this row is for"; fail=1 ;; esac
        fi
        rm -f "$m"
    done
    rm -f "$f32"
done

exit $fail

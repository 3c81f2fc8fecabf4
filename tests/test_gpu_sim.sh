#!/usr/bin/env bash
# The VRAM tier end to end on the CPU (--gpu sim: the CPU backend posing as a
# device with --vram bytes): on the demo model, mapped and streamed (--mem),
# prefill in chunks and decode, the logits of every position and 16 greedy
# tokens are bit for bit those of the CPU-only run (sim only places and
# counts); the plan is printed; the vram stats line adds up (hits + misses =
# GPU + CPU runs; bytes = promotions x slot size); a small --vram evicts; a
# budget below the resident part is refused with the minimum; --vram 0 and
# --gpu cpu make no tier; --gpu cuda without a device is refused by name.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
[ -x "$B/moepager" ] || { echo "FAIL: $B/moepager not built"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-gpusim.XXXXXX")
trap 'rm -rf "$T"' EXIT
M="$B/demo-model.gguf"
if [ ! -f "$M" ]; then # MP_GEN_DEMO=OFF (ASan, scalar): the demo model's recipe
    M=$T/demo.gguf
    "$B/mp-gen" --arch llama-moe --type q8_0 --n-embd 256 --n-head 8 --n-head-kv 4 --n-ff 512 --n-layer 4 \
        --n-expert 8 --n-expert-used 2 --vocab "$S/tests/data/vocab/ggml-vocab-llama-spm.gguf" --seed 1 -q -o "$M" ||
        { echo "FAIL: mp-gen"; exit 1; }
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }
P="The quick brown fox jumps over the lazy dog, and then it runs away into the forest"

run() { # NAME ARGS...: logits of every position + 16 greedy ids
    local name=$1; shift
    "$B/moepager" logits -m "$M" -p "$P" --all -n 16 -b 7 -t 2 -c 256 -o "$T/$name.bin" "$@" >"$T/$name.out" 2>"$T/$name.err"
}
run cpu || bad "cpu run failed: $(cat "$T/cpu.err")"
for cfg in "map --gpu sim --vram 40M" "small --gpu sim --vram 28M" "stream --gpu sim --vram 40M --mem 50M"; do
    set -- $cfg
    name=$1; shift
    run "$name" "$@" || { bad "$name run failed: $(cat "$T/$name.err")"; continue; }
    cmp -s "$T/cpu.bin" "$T/$name.bin" || bad "$name: logits differ from the CPU run"
    diff <(grep gen_ids "$T/cpu.out") <(grep gen_ids "$T/$name.out") >/dev/null || bad "$name: greedy tokens differ"
    grep -q 'vram .*expert cache .* (sim device; cost model' "$T/$name.err" || bad "$name: no plan line: $(cat "$T/$name.err")"
done
# the stats line (logits prints none: use run)
stats() { "$B/moepager" run -m "$M" -p "$P" -n 16 --temp 0 -t 2 -c 256 "$@" 2>&1 >/dev/null | grep '^vram:'; }
for v in 40M 28M; do
    line=$(stats --gpu sim --vram $v)
    echo "--vram $v: $line"
    [ -n "$line" ] || { bad "--vram $v: no vram stats line"; continue; }
    read -r hits uses prom mb ev gpu cpu slots slot_mib < <(echo "$line" |
        sed -E 's/.*\(([0-9]+) of ([0-9]+) expert uses\), ([0-9]+) promoted \(([0-9.]+) MB.*, ([0-9]+) evicted; experts run on GPU ([0-9]+), CPU ([0-9]+);.* ([0-9]+) slots of ([0-9.]+) MiB/\1 \2 \3 \4 \5 \6 \7 \8 \9/')
    [ "$((gpu + cpu))" -eq "$uses" ] || bad "--vram $v: GPU $gpu + CPU $cpu != $uses uses"
    [ "$hits" -le "$gpu" ] && [ "$prom" -le "$((gpu - hits))" ] || bad "--vram $v: hits $hits, promotions $prom, GPU runs $gpu"
    [ "$prom" -gt 0 ] || bad "--vram $v: nothing promoted"
    awk -v mb="$mb" -v p="$prom" -v s="$slot_mib" 'BEGIN { d = (mb - p * s * 1.048576) / mb; exit !(d < 0.02 && d > -0.02) }' ||
        bad "--vram $v: $mb MB moved for $prom promotions of $slot_mib MiB"
    if [ "$v" = 28M ]; then
        [ "$slots" -lt 32 ] || bad "--vram 28M: $slots slots (wanted fewer than the 32 experts)"
        [ "$ev" -gt 0 ] || bad "--vram 28M: no evictions with $slots slots"
    else
        [ "$ev" -eq 0 ] || bad "--vram 40M: every expert fits, yet $ev evictions"
    fi
done
# bench sweeps --vram: one row per budget
out=$("$B/moepager" bench -m "$M" -p 8 -n 4 -r 1 -t 2 --gpu sim --vram 28M,40M --cache-experts 4 2>/dev/null)
for v in 28M 40M; do
    echo "$out" | grep -q "^| 4/layer, vram $v |" || bad "bench --vram 28M,40M: no row for $v: $out"
done
# sim-exec: the CUDA path emulated on the CPU (resident matmuls on "device" copies, experts
# promoted into slots, staged and queued): logits within the GPU tolerance of the CPU's, or
# within 3x the model's own noise floor where that is larger (the CPU path against itself
# with prompt chunks of 16: another attention accumulation; random-weight models amplify
# rounding, e.g. 3e-2 for llama-moe q4_K at 80 tokens), the same greedy tokens, and
# experts that ran on the "GPU"
ids=$(awk 'BEGIN { srand(5); for (i = 0; i < 80; i++) printf "%s%d", (i ? "," : ""), 4 + int(rand() * 380) }')
for cfg in "llama-moe q4_K 1e-2" "qwen3moe q8_0 1e-2" "deepseek2 f16 1e-3" "gpt-oss mxfp4 1e-2" "olmoe iq4_xs 1e-2"; do
    set -- $cfg
    m=$T/$1-$2.gguf
    extra=()
    [ "$1" = deepseek2 ] && extra=(--kv-lora 256 --rope-dim 32 --nope-dim 64 --v-dim 64)
    "$B/mp-gen" --arch "$1" --type "$2" --n-embd 256 --n-head 4 --n-head-kv 2 --n-ff 512 --n-layer 2 --n-expert 8 \
        --n-expert-used 2 "${extra[@]}" --seed 3 -q -o "$m" || { bad "mp-gen $1 $2"; continue; }
    for k in cpu sim-exec; do
        "$B/moepager" logits -m "$m" --ids "$ids" --all -n 8 -t 2 -c 256 -o "$T/$k.bin" --gpu $k --vram 64M \
            >"$T/$k.out" 2>"$T/$k.err" || bad "$1 $2 --gpu $k: $(cat "$T/$k.err")"
    done
    "$B/moepager" logits -m "$m" --ids "$ids" --all -t 2 -c 256 -b 16 -o "$T/b16.bin" --gpu cpu >/dev/null 2>&1 ||
        bad "$1 $2 -b 16 failed"
    floor=$("$B/mp-cmp-logits" "$T/cpu.bin" "$T/b16.bin" --n-vocab 384 | sed -E 's/.* ratio ([0-9.e+-]+) .*/\1/')
    tol=$(awk -v t="$3" -v f="$floor" 'BEGIN { print (3 * f > t ? 3 * f : t) }')
    r=$("$B/mp-cmp-logits" "$T/cpu.bin" "$T/sim-exec.bin" --tol "$tol" --n-vocab 384) || bad "$1 $2 sim-exec: $r (tolerance $tol)"
    echo "$1 $2 sim-exec vs cpu: $r; noise floor $floor, tolerance $tol"
    [ "$(grep gen_ids "$T/cpu.out")" = "$(grep gen_ids "$T/sim-exec.out")" ] || bad "$1 $2 sim-exec: greedy tokens differ"
    grep -q 'sim-exec device' "$T/sim-exec.err" || bad "$1 $2: no sim-exec plan line"
done
line=$(stats --gpu sim-exec --vram 40M)
gpu=$(echo "$line" | sed -E 's/.*experts run on GPU ([0-9]+),.*/\1/')
[ "${gpu:-0}" -gt 0 ] || bad "sim-exec: no expert ran on the GPU: $line"

# refusals and no-tier cases
out=$("$B/moepager" run -m "$M" -p hi -n 1 -t 2 -c 256 --gpu sim --vram 10M 2>&1) && bad "--vram 10M accepted"
echo "$out" | grep -q 'need at least .* resident .* KV cache .* experts (one layer' || bad "--vram 10M: $out"
out=$("$B/moepager" run -m "$M" -p hi -n 1 -t 2 -c 256 --gpu sim 2>&1) && bad "--gpu sim without --vram accepted"
echo "$out" | grep -q 'gpu sim needs --vram' || bad "--gpu sim alone: $out"
for a in "--gpu sim --vram 0" "--gpu cpu --vram 40M"; do
    out=$("$B/moepager" run -m "$M" -p hi -n 2 -t 2 -c 256 $a 2>&1) || bad "$a failed: $out"
    echo "$out" | grep -q '^vram' && bad "$a made a VRAM tier: $out"
done
if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -eq 0 ]; then
    out=$("$B/moepager" run -m "$M" -p hi -n 1 -t 2 -c 256 --gpu cuda 2>&1) && bad "--gpu cuda accepted without a device"
    echo "$out" | grep -q -- '--gpu cuda: \(no CUDA device\|this build has no CUDA\)' || bad "--gpu cuda: $out"
fi
[ $fail -eq 0 ] && echo "ok"
exit $fail

# The committed trained demo model (models/demo-stdlib-moe.gguf) runs as the README's
# demo runs it (tools/demo.sh, with MP_DEMO_NO_BUILD=1: this build's moepager): under a
# --mem budget whose expert cache is smaller than the model's expert bytes, experts
# stream from the file, and it prints text after the prompt. Also checks the file is the
# model docs/demo-model.md describes (architecture, 6 layers, 8 experts top-2, 258-token
# byte-level vocabulary, at most 20 MB). No timing.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
[ -x "$B/moepager" ] || { echo "FAIL: $B/moepager not built"; exit 1; }
[ -f "$M" ] || { echo "FAIL: $M missing (it is committed)"; exit 1; }
fail=0
size=$(stat -c %s "$M")
[ "$size" -le 20000000 ] || { echo "FAIL: $M is $size bytes (> 20 MB)"; fail=1; }

info=$("$B/moepager" inspect -m "$M" 2>&1) || { echo "FAIL: moepager inspect:"; echo "$info"; exit 1; }
echo "$info" | head -20
for want in 'architecture: *llama (mixture of experts)' 'layers: *6$' 'experts: *8 per layer, 2 used per token' \
            'vocab: *258,'; do
    echo "$info" | grep -q -- "$want" || { echo "FAIL: inspect does not say '$want'"; fail=1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/mp-demo.XXXXXX")
trap 'rm -rf "$T"' EXIT
# The demo exactly as the README runs it, less the build.
MP_DEMO_NO_BUILD=1 MP_BUILD="$(cd "$B" && pwd)" bash "$S/tools/demo.sh" >"$T/out" 2>"$T/err"
rc=$?
echo "--- stdout"; cat "$T/out"; echo; echo "--- stderr"; cat "$T/err"
[ $rc -eq 0 ] || { echo "FAIL: tools/demo.sh exited $rc"; exit 1; }

prompt='def fibonacci(n):'
head -c ${#prompt} "$T/out" | grep -qF "$prompt" || { echo "FAIL: the output does not start with the prompt"; fail=1; }
gen=$(tail -c +$((${#prompt} + 1)) "$T/out" | tr -d '[:space:]')
[ ${#gen} -ge 20 ] || { echo "FAIL: only ${#gen} non-blank characters after the prompt"; fail=1; }
# Python-like text: mostly printable ASCII.
np=$(tail -c +$((${#prompt} + 1)) "$T/out" | LC_ALL=C tr -d '\n\t -~' | wc -c)
[ "$np" -le 8 ] || { echo "FAIL: $np bytes of the generated text are not printable ASCII"; fail=1; }

# Streaming: the plan gives the expert cache less than the expert bytes, reads happened.
plan=$(grep 'memory plan' "$T/err")
pct=$(echo "$plan" | sed -n 's/.* \([0-9.]*\)% of expert bytes.*/\1/p')
[ -n "$pct" ] && awk -v p="$pct" 'BEGIN { exit !(p < 100) }' ||
    { echo "FAIL: the plan does not give the expert cache less than the expert bytes: $plan"; fail=1; }
grep -q 'experts stream from' "$T/err" || { echo "FAIL: no 'experts stream from' line"; fail=1; }
hits=$(grep '^expert cache:' "$T/err")
echo "$hits" | grep -q '% hits' || { echo "FAIL: no hit-rate line"; fail=1; }
mb=$(echo "$hits" | sed -n 's/.*, \([0-9.]*\) MB read.*/\1/p')
[ -n "$mb" ] && awk -v m="$mb" 'BEGIN { exit !(m > 0) }' || { echo "FAIL: no expert bytes read: $hits"; fail=1; }
grep -q '^experts, decode:.*prefetch' "$T/err" || { echo "FAIL: no decode prefetch line"; fail=1; }
[ $fail -eq 0 ] && echo "ok: the demo model streams its experts under a ${pct}% cache and writes text"
exit $fail

# The trained demo model (models/demo-stdlib-moe.gguf) against llama.cpp:
#  1. tokenizer: `moepager tokenize` gives llama.cpp's token ids (llama_logits -p) on a
#     held-out stdlib file (tests/data/demo/heldout-sched.py, never trained on), parts
#     of it, and odd strings: invalid UTF-8, tabs, CRLF, CJK, emoji, special-token text;
#     on valid UTF-8 the ids are BOS then the bytes themselves (the byte-level contract
#     the model was trained with);
#  2. logits: the last position's logits on three held-out prompts, and 32 greedy tokens:
#     bit-identical with SIMD kernels (tests/helpers/parity.sh, mp_parity_exact), within
#     1e-2 of the largest logit otherwise; once mapped (--mmap), once streaming experts
#     under a cache of 3 experts per layer.
# Skips (77) without a built peer (tests/helpers/parity.sh, mp_find_peer);
# test_demo_golden.sh still checks the logits against ones this peer wrote.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
M="$S/models/demo-stdlib-moe.gguf"
H="$S/tests/data/demo/heldout-sched.py"
for exe in moepager mp-cmp-logits; do
    [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }
done
[ -f "$M" ] && [ -f "$H" ] || { echo "FAIL: $M or $H missing (both are committed)"; exit 1; }
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
LL="$PEER/build/llama_logits"
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-demo-parity.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

# ---- 1. tokenizer ----
# The held-out file in 1600-byte pieces (llama_logits also evaluates the prompt, and the
# model's context is 4096), then the odd strings. Invalid UTF-8 becomes U+FFFD (3 byte
# tokens) in both tokenizers; llama_logits sizes its token buffer at strlen + 8, so each
# such string has at most 4 invalid bytes.
texts=()
hn=$(wc -c <"$H")
for ((o = 0; o < hn; o += 1600)); do texts+=("$(tail -c +$((o + 1)) "$H" | head -c 1600)"); done
texts+=($'def f(x):\n\treturn x  # tab\tinside' $'line one\r\nline two\r\n'
        $'caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\xf0\x9f\x90\x8d'
        $'bad \xff utf8 \xc3( end' $'cut \xe2\x82 here' $'and \xf0\x9f\x98' $'\x80\x80 lone continuations'
        $'<s> and </s> are text here' '    ' 'x')
n=0 same=0
for s in "${texts[@]}"; do
    n=$((n + 1))
    e=$("$B/moepager" tokenize -m "$M" -p "$s" 2>"$T/err" | tr ' ' ',') || { echo "FAIL: moepager tokenize #$n"; cat "$T/err"; fail=1; continue; }
    l=$("$LL" -m "$M" -p "$s" -t 1 --no-repack --top 1 2>&1 | sed -n 's/^prompt_ids: //p')
    if [ -n "$l" ] && [ "$e" = "$l" ]; then
        same=$((same + 1))
    else
        echo "FAIL: text #$n ($(printf '%s' "$s" | head -c 40 | od -An -c | tr -s ' ' | head -c 120)):"
        echo "  moepager  $(echo "$e" | head -c 300)"; echo "  llama.cpp $(echo "$l" | head -c 300)"; fail=1
    fi
    # valid UTF-8: BOS (256), then one token per byte, equal to the byte
    if printf '%s' "$s" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then
        want="256$(printf '%s' "$s" | od -An -v -tu1 | tr -s ' \n' ',' | sed 's/,$//')"
        [ "$e" = "$want" ] || { echo "FAIL: text #$n: ids are not BOS + its bytes"; fail=1; }
    fi
done
echo "tokenizer: $same of $n texts give llama.cpp's ids (all $hn bytes of the held-out file among them)"

# ---- 2. logits ----
tol=$(mp_parity_tol q8_0)
printf "%-28s %-8s %-12s %-10s %-8s\n" prompt mode eng/llama bit-exact greedy32
for p in "$(head -c 200 "$H")" "$(sed -n '/def enterabs/,+12p' "$H")" "$(sed -n '/def run(self/,+20p' "$H")"; do
    ids=$("$B/moepager" tokenize -m "$M" -p "$p" | tr ' ' ',')
    lc=$("$LL" -m "$M" --ids "$ids" -n $MP_PARITY_NGEN -t 2 --no-repack --dump "$T/l.f32" 2>&1) ||
        { echo "FAIL: llama_logits:"; echo "$lc" | tail -5; fail=1; continue; }
    gl=$(echo "$lc" | sed -n 's/^gen_ids: //p')
    for mode in mmap stream; do
        if [ $mode = mmap ]; then flags=--mmap; else flags="--cache-experts 3"; fi
        ge=$("$B/moepager" logits -m "$M" --ids "$ids" -o "$T/e.f32" -n $MP_PARITY_NGEN -t 2 $flags 2>"$T/e.err" |
             sed -n 's/^gen_ids: //p') || { echo "FAIL: moepager logits $mode:"; cat "$T/e.err"; fail=1; continue; }
        out=$("$B/mp-cmp-logits" "$T/e.f32" "$T/l.f32" --tol "$tol"); rc=$?
        ratio=$(echo "$out" | awk '{print $6}')
        bx=no; cmp -s "$T/e.f32" "$T/l.f32" && bx=yes
        g=same
        if [ -z "$gl" ] || [ "$gl" != "$ge" ]; then g=DIFF; mp_parity_exact && fail=1; fi
        if [ $bx = no ] && mp_parity_exact; then fail=1; fi
        [ $rc -eq 0 ] || { echo "FAIL: $out (tol $tol)"; fail=1; }
        printf "%-28s %-8s %-12s %-10s %-8s\n" "$(echo "$p" | head -1 | tr -d '\t' | cut -c1-28)" $mode "$ratio" $bx $g
        [ $g = same ] || { echo "  llama.cpp $gl"; echo "  engine    $ge"; }
    done
done
exit $fail

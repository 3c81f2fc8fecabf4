# Tokenizer parity with llama.cpp over every vocabulary in the peer's models/ and every
# tokenizer.ggml.pre name llama-vocab.cpp knows (issue 11 item 4, issue 12 item 3, issue 13
# item 5):
#  1. a table of each models/ggml-vocab-*.gguf: its tokenizer.ggml.model and .pre, whether
#     the engine matches llama.cpp's own test vectors (.inp/.out: every string must give the
#     .out ids) and a differential run against libllama (tests/helpers/peer/peer_tokenize.c,
#     built here against the peer) on N generated strings (invalid UTF-8 in about half,
#     digit and whitespace runs, emoji, CJK / kana / Hangul, combining marks, mixed scripts,
#     special token texts), each tokenized without and with add_special + parse_special;
#     a vocabulary whose tokenizer model the engine does not implement must be refused by
#     name (listed in REFUSED_MODELS below), any other refusal fails;
#  2. pre-tokenizers without a vocabulary of their own in models/: the same differential run
#     on another vocabulary with tokenizer.ggml.pre replaced (the split rules and BOS/EOS
#     flags are what differ): a few in the fast run; with MP_TOK_ALL_PRE=1 every name of
#     `mp-tokenize-lines --names` (byte-level names on qwen2's vocab, raw-UTF-8 ones on
#     gemma-4's with tokenizer.ggml.model = gpt2, kimi-k2 also on llama-bpe's and without
#     merges);
#  3. RWKV (no such vocabulary in models/): vocabularies made from gpt-2's and qwen2's
#     (`mp-tokenize-lines --make-rwkv`: the 256 bytes plus their tokens, escaped).
# Every line must be equal (0 differences). N = MP_TOK_DIFF_N (default 200; the slow
# test_tokenizer_peer_all runs 3000 and every name).
# Skips (77) without the peer's source, vocab files or libllama, or a C compiler.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER, or run tools/test.sh, which builds one)"; exit 77; }
INC="$PEER/build/llama.cpp-src"
MODELS="$INC/models"
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
[ -x "$B/mp-tokenize-lines" ] || { echo "FAIL: $B/mp-tokenize-lines not built"; exit 1; }
for v in qwen2 llama-bpe gemma-4; do
    [ -f "$MODELS/ggml-vocab-$v.gguf" ] || { echo "SKIP: no $MODELS/ggml-vocab-$v.gguf"; exit 77; }
done
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC) to build the peer tokenizer"; exit 77; }
[ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ] ||
    { echo "SKIP: the peer has no llama.h / libllama ($INC, $BINS)"; exit 77; }
# tokenizer models (tokenizer.ggml.model) the engine refuses by name, as it should
REFUSED_MODELS=" ${MP_TOK_REFUSED_MODELS-plamo2 hybriddna whitespace} "
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-tok-peer.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

PT="$T/peer-tokenize"
if ! "$CC" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$PT" "$S/tests/helpers/peer/peer_tokenize.c" \
        -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
    echo "FAIL: cannot build the peer tokenizer:"; cat "$T/cc.err"; exit 1
fi
N=${MP_TOK_DIFF_N:-200}
"$B/mp-tokenize-lines" --gen "$N" 1 "$T/strings.bin" || { echo "FAIL: string generation"; exit 1; }
total=0 totald=0
# diff_one VOCAB: sets $res to "D/L differ" (D differing lines of L)
diff_one() {
    res="peer error"
    "$PT" "$1" "$T/strings.bin" >"$T/p.txt" 2>"$T/p.err" || { tail -3 "$T/p.err"; fail=1; return; }
    res="engine error"
    "$B/mp-tokenize-lines" "$1" "$T/strings.bin" >"$T/e.txt" 2>"$T/e.err" || { cat "$T/e.err"; fail=1; return; }
    local nl nd
    nl=$(wc -l <"$T/p.txt")
    nd=$(diff "$T/p.txt" "$T/e.txt" | grep -c '^<')
    [ "$nl" -eq $((2 * N)) ] && [ "$(wc -l <"$T/e.txt")" -eq $((2 * N)) ] || { nd=$((nd + 1)); echo "  $1: $nl lines, expected $((2 * N))"; }
    res="$nd/$nl differ"
    total=$((total + nl)); totald=$((totald + nd))
    if [ "$nd" -ne 0 ]; then
        fail=1
        diff "$T/p.txt" "$T/e.txt" | head -6 >"$T/d.txt"
    fi
}

echo "1. every vocabulary in $MODELS"
printf "  %-18s %-7s %-15s %-12s %s\n" vocab model pre "vectors" "differential ($N strings x 2 modes)"
nvocab=0 nvec=0 nref=0
for f in "$MODELS"/ggml-vocab-*.gguf; do
    v=$(basename "$f" .gguf); v=${v#ggml-vocab-}
    nvocab=$((nvocab + 1))
    info=$("$B/mp-tokenize-lines" --info "$f" 2>"$T/info.err"); rc=$?
    model=${info%% *}; pre=${info#* }
    if [ $rc -eq 3 ]; then
        why=$(head -1 "$T/info.err")
        if [[ "$REFUSED_MODELS" == *" $model "* ]]; then
            printf "  %-18s %-7s %-15s %-12s %s\n" "$v" "$model" "$pre" "-" "refused by name: ${why##*: }"
            nref=$((nref + 1))
        else
            printf "  %-18s %-7s %-15s FAIL: refused: %s\n" "$v" "$model" "$pre" "$why"; fail=1
        fi
        continue
    elif [ $rc -ne 0 ]; then
        echo "  $v: FAIL: cannot read it"; cat "$T/info.err"; fail=1; continue
    fi
    vec="(none)"
    if [ -f "$f.inp" ] && [ -f "$f.out" ]; then
        out=$("$B/mp-tokenize-lines" --vectors "$f" 2>&1); rc=$?
        vec=$(echo "$out" | tail -1)
        nvec=$((nvec + 1))
        [ $rc -eq 0 ] || { echo "$out" | head -10; vec="FAIL $vec"; fail=1; }
    fi
    rm -f "$T/d.txt"
    diff_one "$f"
    printf "  %-18s %-7s %-15s %-12s %s\n" "$v" "$model" "$pre" "$vec" "$res"
    [ -f "$T/d.txt" ] && cat "$T/d.txt"
done
echo "  $nvocab vocabularies: $nvec with test vectors, $nref refused by name"

echo "2. pre-tokenizers on another vocabulary (tokenizer.ggml.pre replaced)"
variant() { # PRE BASE [extra --set-pre options]
    local pre=$1 base=$2; shift 2
    local g="$T/v.gguf"
    "$B/mp-tokenize-lines" --set-pre "$MODELS/ggml-vocab-$base.gguf" "$pre" "$g" "$@" ||
        { echo "  FAIL: --set-pre $pre $base $*"; fail=1; return; }
    rm -f "$T/d.txt"
    diff_one "$g"
    printf "  %-26s on %-10s %-22s %s\n" "$pre" "$base" "$*" "$res"
    [ -f "$T/d.txt" ] && cat "$T/d.txt"
}
if [ "${MP_TOK_ALL_PRE:-0}" = 1 ]; then
    names=$("$B/mp-tokenize-lines" --names)
else
    names="deepseek-v3 kimi-k2 glm4 minimax-m2 afmoe superbpe sarvam-moe"
fi
npre=0
for pre in $names; do
    npre=$((npre + 1))
    case $pre in
    gemma4 | granite-embed-multi-311m | sarvam-moe) variant "$pre" gemma-4 --model=gpt2 ;;
    whitespace) # only for tokenizer.ggml.model = whitespace (libllama aborts under gpt2): refused
        "$B/mp-tokenize-lines" --set-pre "$MODELS/ggml-vocab-qwen2.gguf" "$pre" "$T/v.gguf" &&
            ! "$B/mp-tokenize-lines" --info "$T/v.gguf" >/dev/null 2>"$T/info.err" &&
            printf "  %-26s refused by name: %s\n" "$pre" "$(head -1 "$T/info.err" | sed 's/.*tokenizer.ggml.pre/tokenizer.ggml.pre/')" ||
            { echo "  FAIL: pre-tokenizer whitespace not refused"; fail=1; } ;;
    kimi-k2)
        variant "$pre" qwen2 --no-merges
        [ "${MP_TOK_ALL_PRE:-0}" = 1 ] && variant "$pre" qwen2 && variant "$pre" llama-bpe ;;
    deepseek-v3)
        variant "$pre" deepseek-llm
        [ "${MP_TOK_ALL_PRE:-0}" = 1 ] && variant "$pre" qwen2 ;;
    glm4) variant "$pre" llama-bpe ;;
    *) variant "$pre" qwen2 ;;
    esac
done
echo "3. tokenizer models without a vocabulary in models/"
bases=gpt-2
[ "${MP_TOK_ALL_PRE:-0}" = 1 ] && bases="gpt-2 qwen2"
for base in $bases; do
    "$B/mp-tokenize-lines" --make-rwkv "$MODELS/ggml-vocab-$base.gguf" "$T/rwkv.gguf" || { echo "  FAIL: --make-rwkv $base"; fail=1; continue; }
    rm -f "$T/d.txt"
    diff_one "$T/rwkv.gguf"
    printf "  %-26s from %-8s %-22s %s\n" "rwkv" "$base" "" "$res"
    [ -f "$T/d.txt" ] && cat "$T/d.txt"
done
echo "  total: $total tokenizations ($nvocab vocabularies, $npre pre-tokenizer names, rwkv), $totald differences"
exit $fail

# Tokenizer parity with llama.cpp for the pre-tokenizers of the DeepSeek family, Kimi-K2,
# GLM and Qwen2 (issue 11 item 4, issue 12 item 3 in part):
#  1. llama.cpp's own test vectors (models/ggml-vocab-*.gguf.inp/.out in the peer's source)
#     of every vocab there that uses them: deepseek-coder, deepseek-llm, qwen2 (and
#     llama-bpe / gpt-2 beside them): every string must give the .out ids;
#  2. a differential run against libllama (tests/helpers/peer/peer_tokenize.c, built here
#     against the peer): 3000 generated strings (invalid UTF-8 in about half, digit and
#     whitespace runs, emoji, CJK / kana / Hangul, combining marks, mixed scripts, special
#     token texts), each tokenized without and with add_special + parse_special, on
#       deepseek-coder, deepseek-llm, qwen2 (their own vocabs), and, as the peer has no
#       vocab of theirs, deepseek-v3 on the deepseek-llm vocab and on qwen2's, kimi-k2 on
#       qwen2's, on llama-bpe's and on qwen2's without merges (llama.cpp allows that for
#       kimi-k2), glm4 on llama-bpe's (the vocab is copied with tokenizer.ggml.pre replaced:
#       the split rules and BOS handling are what differ);
#     every line must be equal (0 differences).
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
for v in deepseek-coder deepseek-llm qwen2 llama-bpe; do
    [ -f "$MODELS/ggml-vocab-$v.gguf" ] || { echo "SKIP: no $MODELS/ggml-vocab-$v.gguf"; exit 77; }
done
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($CC) to build the peer tokenizer"; exit 77; }
[ -f "$INC/include/llama.h" ] && [ -f "$BINS/libllama.v0.5.0.so" ] ||
    { echo "SKIP: the peer has no llama.h / libllama ($INC, $BINS)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-tok-peer.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

echo "1. llama.cpp's test vectors"
for v in deepseek-coder deepseek-llm qwen2 llama-bpe gpt-2; do
    f="$MODELS/ggml-vocab-$v.gguf"
    [ -f "$f.inp" ] && [ -f "$f.out" ] || { echo "  $v: no .inp/.out (left out)"; continue; }
    out=$("$B/mp-tokenize-lines" --vectors "$f" 2>&1); rc=$?
    printf "  %-16s %s strings match\n" "$v" "$(echo "$out" | tail -1)"
    [ $rc -eq 0 ] || { echo "$out" | head -20; echo "FAIL: $v test vectors"; fail=1; }
done

echo "2. differential run against libllama"
PT="$T/peer-tokenize"
if ! "$CC" -O1 -std=gnu11 -I"$INC/include" -I"$INC/ggml/include" -o "$PT" "$S/tests/helpers/peer/peer_tokenize.c" \
        -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
    echo "FAIL: cannot build the peer tokenizer:"; cat "$T/cc.err"; exit 1
fi
N=${MP_TOK_DIFF_N:-3000}
"$B/mp-tokenize-lines" --gen "$N" 1 "$T/strings.bin" || { echo "FAIL: string generation"; exit 1; }
total=0
diff_one() { # LABEL VOCAB
    "$PT" "$2" "$T/strings.bin" >"$T/p.txt" 2>"$T/p.err" || { echo "FAIL: libllama on $1:"; tail -3 "$T/p.err"; fail=1; return; }
    "$B/mp-tokenize-lines" "$2" "$T/strings.bin" >"$T/e.txt" 2>"$T/e.err" || { echo "FAIL: engine on $1:"; cat "$T/e.err"; fail=1; return; }
    local nl nd
    nl=$(wc -l <"$T/p.txt")
    nd=$(diff "$T/p.txt" "$T/e.txt" | grep -c '^<')
    [ "$nl" -eq $((2 * N)) ] && [ "$(wc -l <"$T/e.txt")" -eq $((2 * N)) ] || { echo "FAIL: $1: $nl lines, expected $((2 * N))"; fail=1; }
    printf "  %-34s %5d tokenizations, %d differ\n" "$1" "$nl" "$nd"
    total=$((total + nl))
    if [ "$nd" -ne 0 ]; then
        fail=1
        diff "$T/p.txt" "$T/e.txt" | head -6
    fi
}
for v in deepseek-coder deepseek-llm qwen2; do diff_one "$v" "$MODELS/ggml-vocab-$v.gguf"; done
variant() { # PRE BASE [x: without merges]
    local nm=${3:-}
    local f="$T/v-$1-$2$nm.gguf"
    "$B/mp-tokenize-lines" --set-pre "$MODELS/ggml-vocab-$2.gguf" "$1" "$f" ${nm:+--no-merges} ||
        { echo "FAIL: --set-pre $1 $2"; fail=1; return; }
    diff_one "$1 (on $2${nm:+, no merges})" "$f"
}
variant deepseek-v3 deepseek-llm
variant deepseek-v3 qwen2
variant kimi-k2 qwen2
variant kimi-k2 llama-bpe
variant kimi-k2 qwen2 x
variant glm4 llama-bpe
echo "  total: $total tokenizations of $N strings, $([ $fail -eq 0 ] && echo "0 differences" || echo "differences above")"
exit $fail

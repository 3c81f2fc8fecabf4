# Chat-template parity against the live peer (issue 15, "Template parity"): builds
# tests/helpers/peer/peer_chat_template.cpp against llama.cpp's libllama-common (its
# common_chat_templates_init + common_chat_templates_apply, Jinja on), renders every
# template of tests/data/chat/templates/ (copies of the peer's models/templates/) for every
# conversation of tests/data/chat/conversations.txt, and checks
#  1. the peer's renderings equal the committed goldens (tests/data/chat/golden/), so the
#     always-on test_chat_parity compares against what llama.cpp really renders;
#  2. our interpreter equals those fresh renderings (test_chat_parity on them);
#  3. a differential run: 60 seeded random conversations (random role orders with system,
#     user, assistant and tool turns, contents mixing whitespace runs, newlines, quotes,
#     Jinja-looking text, think tags, CJK and emoji, empty ones), rendered by the peer and by
#     us with every template and built-in: every rendering equal (or refused by both).
# MP_CHAT_GOLDEN_UPDATE=1 copies the fresh renderings over the goldens instead of step 1.
# Skips (77) without the peer (its source, libllama-common) or a C++ compiler.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
. "$S/tests/helpers/parity.sh" || exit 1
PEER=$(mp_find_peer) || { echo "SKIP: no built llama.cpp peer (set MP_PEER)"; exit 77; }
SRC="$PEER/build/llama.cpp-src"
BINS="$PEER/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
[ -f "$SRC/common/chat.h" ] && [ -f "$BINS/libllama-common.so" ] ||
    { echo "SKIP: the peer has no common/chat.h or libllama-common.so ($SRC, $BINS)"; exit 77; }
CXX=${CXX:-c++}
command -v "$CXX" >/dev/null 2>&1 || { echo "SKIP: no C++ compiler ($CXX) to build the peer harness"; exit 77; }
[ -x "$B/test_chat_parity" ] || { echo "FAIL: $B/test_chat_parity not built"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-chat-peer.XXXXXX")
trap 'rm -rf "$T"' EXIT
H="$T/peer-chat-template"
if ! "$CXX" -std=c++17 -O1 -rdynamic -I"$SRC/common" -I"$SRC/include" -I"$SRC/ggml/include" -I"$SRC/vendor" \
        -o "$H" "$S/tests/helpers/peer/peer_chat_template.cpp" -L"$BINS" -l:libllama-common.so \
        -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" 2>"$T/cc.err"; then
    echo "FAIL: cannot build the peer harness:"; cat "$T/cc.err"; exit 1
fi
mkdir -p "$T/golden"
for f in "$S"/tests/data/chat/templates/*.jinja; do
    n=$(basename "$f" .jinja)
    TZ=UTC "$H" "$f" "$S/tests/data/chat/conversations.txt" "$T/golden" "$n" >/dev/null 2>"$T/h.err" ||
        { echo "FAIL: the peer harness failed on $n:"; cat "$T/h.err"; exit 1; }
done
# the built-in templates against llama_chat_apply_template's named formats
mkdir -p "$T/golden-builtin"
for n in $("$B/test_chat_parity" --builtin-names); do
    "$H" "builtin:$n" "$S/tests/data/chat/conversations.txt" "$T/golden-builtin" "$n" >/dev/null 2>"$T/h.err" ||
        { echo "FAIL: the peer harness failed on built-in $n:"; cat "$T/h.err"; exit 1; }
done
# the snippets (one construct each) on their conversation
mkdir -p "$T/golden-snippets"
for f in "$S"/tests/data/chat/snippets/*.jinja; do
    TZ=UTC "$H" "$f" "$S/tests/data/chat/snippet-conversations.txt" "$T/golden-snippets" "$(basename "$f" .jinja)" \
        >/dev/null 2>"$T/h.err" || { echo "FAIL: the peer harness failed on snippet $f:"; cat "$T/h.err"; exit 1; }
done
fail=0
for g in golden golden-builtin golden-snippets; do
    if [ "${MP_CHAT_GOLDEN_UPDATE:-0}" = 1 ]; then
        mkdir -p "$S/tests/data/chat/$g"
        rm -f "$S/tests/data/chat/$g"/*
        cp "$T/$g"/* "$S/tests/data/chat/$g/"
        echo "$g updated: $(ls "$T/$g" | wc -l) files"
    elif diff -r -q "$T/$g" "$S/tests/data/chat/$g" >"$T/diff"; then
        echo "1. the peer renders the committed tests/data/chat/$g: $(ls "$T/$g" | wc -l) files equal"
    else
        echo "FAIL: the peer's renderings differ from tests/data/chat/$g (regenerate with MP_CHAT_GOLDEN_UPDATE=1):"
        head -20 "$T/diff"; fail=1
    fi
done
echo "2. ours against the fresh renderings"
"$B/test_chat_parity" "$S/tests/data/chat/templates" "$T/golden" "$T/golden-builtin" || fail=1
"$B/test_chat_parity" "$S/tests/data/chat/snippets" "$T/golden-snippets" - "$S/tests/data/chat/snippet-conversations.txt" ||
    fail=1
echo "3. random conversations"
RANDOM=20261206
frags=("Hello" "  two  spaces  " "\\n" "line\\nbreak" "<think>x</think>" "{{ not jinja }}" "{% if %}" "'single'"
       "\"double\"" "日本語" "🚀" "back\\\\slash" "tab	inside" "" "trailing " " leading" "<|im_end|>" "[INST]")
{
    echo "# random conversations (test_chat_parity_peer.sh)"
    for i in $(seq 1 60); do
        n=$((1 + RANDOM % 6))
        gen=$([ $((RANDOM % 5)) = 0 ] && echo "-nogen")
        echo "= r$i$gen"
        if [ $((RANDOM % 2)) = 0 ]; then echo "system	${frags[RANDOM % ${#frags[@]}]}${frags[RANDOM % ${#frags[@]}]}"; fi
        for k in $(seq 1 $n); do
            case $((RANDOM % 10)) in
                0) role=tool ;; 1) role=user ;; 2|3|4) role=$([ $((k % 2)) = 1 ] && echo user || echo assistant) ;;
                *) role=$([ $((k % 2)) = 1 ] && echo user || echo assistant) ;;
            esac
            echo "$role	${frags[RANDOM % ${#frags[@]}]} ${frags[RANDOM % ${#frags[@]}]}${frags[RANDOM % ${#frags[@]}]}"
        done
    done
} >"$T/random.txt"
mkdir -p "$T/rgolden" "$T/rgolden-builtin"
for f in "$S"/tests/data/chat/templates/*.jinja; do
    TZ=UTC "$H" "$f" "$T/random.txt" "$T/rgolden" "$(basename "$f" .jinja)" >/dev/null 2>>"$T/h.err" || fail=1
done
for n in $("$B/test_chat_parity" --builtin-names); do
    "$H" "builtin:$n" "$T/random.txt" "$T/rgolden-builtin" "$n" >/dev/null 2>>"$T/h.err" || fail=1
done
echo "   $(ls "$T/rgolden" | grep -c '\.txt$') renderings and $(ls "$T/rgolden" | grep -c '\.err$') refusals by the peer"
"$B/test_chat_parity" "$S/tests/data/chat/templates" "$T/rgolden" "$T/rgolden-builtin" "$T/random.txt" || fail=1
exit $fail

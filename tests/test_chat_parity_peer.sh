# Chat-template parity against the live peer (issue 15, "Template parity"): builds
# tests/helpers/peer/peer_chat_template.cpp against llama.cpp's libllama-common (its
# common_chat_templates_init + common_chat_templates_apply, Jinja on), renders every
# template of tests/data/chat/templates/ (copies of the peer's models/templates/) for every
# conversation of tests/data/chat/conversations.txt, and checks
#  1. the peer's renderings equal the committed goldens (tests/data/chat/golden/), so the
#     always-on test_chat_parity compares against what llama.cpp really renders;
#  2. our interpreter equals those fresh renderings (test_chat_parity on them).
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
fail=0
for g in golden golden-builtin; do
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
exit $fail

# The official `openai` package from the npm registry against moepager serve
# on 127.0.0.1 (the demo model): a non-streamed and a streamed chat
# completion and a text completion at temperature 0, each equal to
# `moepager run` on the same prompt; /v1/models through the client; an
# unknown model comes back as the client's 404 error.
#
# npm installs the package at test time into $MP_BUILD/npm-openai (kept there
# for later runs; never committed). Skips (77) when node or npm is absent or
# the registry cannot be reached.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm absent"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
NM="$(cd "$B" && pwd)/npm-openai"
if [ ! -d "$NM/node_modules/openai" ]; then
    mkdir -p "$NM"
    if ! timeout 300 npm install --prefix "$NM" --no-audit --no-fund --silent openai >"$NM/install.log" 2>&1; then
        echo "SKIP: npm could not install openai (no registry?):"
        tail -5 "$NM/install.log"
        rm -rf "$NM/node_modules"
        exit 77
    fi
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-openai.XXXXXX")
# shellcheck source=serve_lib.sh
. "$S/tests/serve_lib.sh"
trap 'kill -KILL ${SERVE_PID:-} 2>/dev/null; rm -rf "$T"' EXIT
fail=0
N=20
serve_start "$T/log" -m "$M" -c 1024 --parallel 2
U="http://127.0.0.1:$PORT/v1"

printf '<|im_start|>user\nimport os<|im_end|>\n<|im_start|>assistant\n' >"$T/chatml"
"$B/moepager" run -m "$M" -f "$T/chatml" -n $N --temp 0 --no-display-prompt >"$T/run_chat" 2>/dev/null
"$B/moepager" run -m "$M" -p "def main(" -n $N --temp 0 --no-display-prompt >"$T/run_comp" 2>/dev/null

if ! timeout 120 node "$S/tests/serve_openai_client.mjs" "$NM/node_modules" "$U" demo-stdlib-moe.gguf $N \
    >"$T/out" 2>"$T/err"; then
    echo "FAIL: the openai client failed:"
    cat "$T/err"
    exit 1
fi
cat "$T/out"
python3 - "$T" $N <<'EOF' || fail=1
import json, sys
T, N = sys.argv[1], int(sys.argv[2])
o = json.load(open(f"{T}/out"))
def run(p):
    s = open(p, encoding="utf-8").read()
    return s[:-1] if s.endswith("\n") else s
rc, rp = run(f"{T}/run_chat"), run(f"{T}/run_comp")
bad = 0
def check(c, what):
    global bad
    print(("ok: " if c else "FAIL: ") + what)
    bad |= not c
print(f"openai package {o['version']}")
check(o["models"] == ["demo-stdlib-moe.gguf"], f"models.list: {o['models']}")
check(o["plain"] == rc and o["plain_finish"] == "length" and o["plain_usage"]["completion_tokens"] == N,
      f"chat (not streamed) equals run: {o['plain']!r} vs {rc!r}")
check(o["streamed"] == rc and o["finish"] == "length" and o["chunks"] > 2,
      f"chat (streamed, {o['chunks']} chunks) equals run: {o['streamed']!r}")
check(o["usage"] is not None and o["usage"]["completion_tokens"] == N, f"stream usage: {o['usage']}")
check(o["completion"] == rp, f"completion equals run: {o['completion']!r} vs {rp!r}")
check(o["bad_status"] == 404 and o["bad_type"] == "invalid_request_error",
      f"unknown model: {o['bad_status']} {o['bad_type']}")
sys.exit(bad)
EOF
serve_stop || fail=1
[ $fail -eq 0 ] && echo "test_serve_openai: ok"
exit $fail

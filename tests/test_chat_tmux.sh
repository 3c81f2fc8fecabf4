# moepager chat in a real terminal (tmux): types two turns into the demo
# model at temperature 0 and reads the answers off the screen.
#  - turn 1's answer equals `moepager run` on the ChatML prompt of that turn;
#  - turn 2 reuses the KV cache: all of turn 1 (prompt and answer, but the
#    answer's last token, never evaluated) is kept and only the 73 tokens of
#    the new turn are evaluated; its answer is on the screen. (It need not
#    equal run on the two-turn prompt: the KV of turn 1's answer was
#    computed one token at a time, run computes it in one chunk, and the
#    two orders of summation differ in the last bits, as in llama.cpp.)
#  - Ctrl-C (during or just after an answer) does not end the program: the
#    next turn is answered; /stats prints the cache line; /exit quits.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
command -v tmux >/dev/null || { echo "SKIP: tmux absent"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-chat.XXXXXX")
SOCK="$T/tmux.sock"
trap 'tmux -S "$SOCK" kill-server 2>/dev/null; rm -rf "$T"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
N=16
MP=$(cd "$B" && pwd)/moepager
MF=$(cd "$(dirname "$M")" && pwd)/$(basename "$M")

# a wide window, so that answers do not wrap
tmux -S "$SOCK" new-session -d -x 250 -y 50 -s chat \
    "$MP chat -m $MF --temp 0 -n $N --cache-experts 4 2>$T/err; echo CHAT-EXITED \$?; sleep 30"
screen() { tmux -S "$SOCK" capture-pane -p -J -S -200 -t chat; }
# wait until the screen shows $1 (a grep -E pattern) $2 times, at most 60 s
wait_for() {
    for _ in $(seq 1 600); do
        [ "$(screen | grep -cE -- "$1")" -ge "${2:-1}" ] && return 0
        sleep 0.1
    done
    echo "--- screen"; screen; echo "--- stderr"; cat "$T/err"
    return 1
}
wait_for '^> ' || { bad "no prompt"; exit 1; }

tmux -S "$SOCK" send-keys -t chat 'import os' Enter
wait_for '^> ' 2 || { bad "no answer to turn 1"; exit 1; }
tmux -S "$SOCK" send-keys -t chat 'def main():' Enter
wait_for '^> ' 3 || { bad "no answer to turn 2"; exit 1; }
screen >"$T/screen2"
grep -E '^\[[0-9]+ tokens' "$T/err" >"$T/stats"

# what run says for turn 1's prompt (ChatML: the demo model has no template)
printf '<|im_start|>user\nimport os<|im_end|>\n<|im_start|>assistant\n' >"$T/p1"
"$MP" run -m "$MF" -f "$T/p1" -n $N --temp 0 --no-display-prompt >"$T/r1" 2>/dev/null

# the answers on the screen: what lies between "> TURN" and the next "> "
python3 - "$T" <<'EOF' || fail=1
import sys
T = sys.argv[1]
scr = open(f"{T}/screen2").read()
def ans(turn, nxt):
    i = scr.index("> " + turn + "\n") + len(turn) + 3
    j = scr.index("\n> ", i) if nxt else len(scr)
    return scr[i:j]
def run(p):
    s = open(p).read()
    return s[:-1] if s.endswith("\n") else s
bad = 0
a2 = ans("def main():", True)
print(("ok" if a2.strip() else "FAIL") + f": answer to 'def main():' on screen {a2!r}")
bad |= not a2.strip()
for turn, r in (("import os", f"{T}/r1"),):
    a, want = ans(turn, True), run(r)
    # tmux pads lines and trims trailing blanks: compare without trailing spaces per line
    norm = lambda s: "\n".join(l.rstrip() for l in s.split("\n")).strip("\n")
    good = norm(a) == norm(want)
    print(("ok" if good else "FAIL") + f": answer to {turn!r} on screen {a!r}, run says {want!r}")
    bad |= not good
sys.exit(bad)
EOF
cat "$T/stats"
reused=$(sed -n 2p "$T/stats" | sed -E 's/.*prompt ([0-9]+) tokens, ([0-9]+) reused.*/\2 \1/')
read -r r p <<<"$reused"
# turn 1: 60 prompt tokens + 15 evaluated answer tokens; turn 2 adds 73
[ "${r:-}" = 75 ] && [ "${p:-}" = 148 ] &&
    ok "turn 2 reused $r of its $p prompt tokens from the KV cache" || bad "turn 2 did not reuse the KV cache: $reused"

# Ctrl-C stops a long answer, not the program
tmux -S "$SOCK" send-keys -t chat '/clear' Enter
wait_for 'conversation cleared' || bad "/clear"
tmux -S "$SOCK" send-keys -t chat 'class A:' Enter
sleep 0.2
tmux -S "$SOCK" send-keys -t chat C-c
tmux -S "$SOCK" send-keys -t chat 'x = 1' Enter
answered() { for _ in $(seq 1 600); do [ "$(grep -cE '^\[[0-9]+ tokens' "$T/err")" -ge 4 ] && return 0; sleep 0.1; done; return 1; }
answered && ok "Ctrl-C did not end the program: the next turn was answered" || bad "no answer after Ctrl-C"
tmux -S "$SOCK" send-keys -t chat '/stats' Enter
wait_for 'last answer: ' && ok "/stats" || bad "/stats"
tmux -S "$SOCK" send-keys -t chat '/exit' Enter
wait_for 'CHAT-EXITED 0' && ok "/exit, status 0" || bad "chat did not exit cleanly"
grep -q '^expert cache: ' "$T/err" && ok "/stats printed the cache line" || bad "no cache line"
[ $fail -eq 0 ] && echo "test_chat_tmux: ok"
exit $fail

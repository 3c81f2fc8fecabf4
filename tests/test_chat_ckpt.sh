# Recurrent-state checkpoints in chat and serve (--ctx-checkpoints) on a
# random qwen35moe model (Gated DeltaNet layers), with a template that, like
# Qwen3.5's, opens the answer with "<think>" in the generation prompt but
# renders earlier answers without it (so a later turn's prompt departs from
# what the KV cache holds inside the generation prompt):
#  - chat: turns 2 and 3 reuse the conversation up to the previous turn's
#    generation prompt (a checkpoint there); with --ctx-checkpoints 0 every
#    turn evaluates the whole conversation again;
#  - serve: a second request that repeats the first turn reports those
#    tokens as cached_tokens; with --ctx-checkpoints 0 none;
#  - a bad --ctx-checkpoints value is refused with one line.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
# shellcheck source=serve_lib.sh
. "$S/tests/serve_lib.sh"
serve_test_init mp-ckpt

M="$T/q35.gguf"
"$B/mp-gen" -q --arch qwen35moe --type f32 --n-embd 128 --n-head 4 --n-head-kv 2 --head-dim 32 --n-ff 128 \
    --n-ff-exp 64 --n-ff-shexp 96 --n-layer 4 --n-expert 8 --n-expert-used 2 --seed 9 -o "$M" ||
    { echo "FAIL: mp-gen"; exit 1; }
cat >"$T/think.jinja" <<'EOF'
{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
<think>

</think>

{% endif -%}
EOF

# --- chat: three turns
reused() { grep -o '[0-9]* reused from the KV cache' "$1" | awk '{print $1}' | tr '\n' ' '; }
for k in 2 0; do
    printf 'hello there\nand again\nthird one\n' |
        timeout 120 "$B/moepager" chat -m "$M" -n 6 --temp 0 --chat-template "$T/think.jinja" --ctx-checkpoints $k \
            >"$T/chat$k.out" 2>"$T/chat$k.err"
    rc=$?
    [ $rc -eq 0 ] || bad "chat --ctx-checkpoints $k exited $rc: $(tail -2 "$T/chat$k.err")"
done
r2=$(reused "$T/chat2.err") r0=$(reused "$T/chat0.err")
read -r a1 a2 a3 <<<"$r2"
read -r b1 b2 b3 <<<"$r0"
if [ "${a1:-x}" = 0 ] && [ "${a2:-0}" -gt 0 ] && [ "${a3:-0}" -gt "${a2:-0}" ]; then
    ok "chat with checkpoints reuses: $r2"
else
    bad "chat with checkpoints: reused '$r2'"
fi
[ "$b1 $b2 $b3" = "0 0 0" ] && ok "chat --ctx-checkpoints 0 reuses nothing: $r0" || bad "chat without: reused '$r0'"

# --- serve: the first turn, then the conversation with an answer and a second question
for k in 2 0; do
    serve_start "$T/serve$k.log" -m "$M" -c 1024 --chat-template "$T/think.jinja" --ctx-checkpoints $k
    U="http://127.0.0.1:$PORT"
    curl -sS -m 60 "$U/v1/chat/completions" \
        -d '{"messages":[{"role":"user","content":"hello there"}],"max_tokens":4,"temperature":0}' >"$T/s1-$k"
    curl -sS -m 60 "$U/v1/chat/completions" \
        -d '{"messages":[{"role":"user","content":"hello there"},{"role":"assistant","content":"hi"},{"role":"user","content":"and again"}],"max_tokens":4,"temperature":0}' >"$T/s2-$k"
    serve_stop || fail=1
    eval "c$k=\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"usage\"][\"prompt_tokens_details\"][\"cached_tokens\"])' \"\$T/s2-\$k\" 2>/dev/null)"
done
# shellcheck disable=SC2154
if [ "${c2:-0}" -gt 0 ] 2>/dev/null && [ "${c0:-x}" = 0 ]; then
    ok "serve: cached_tokens $c2 with checkpoints, $c0 without"
else
    bad "serve: cached_tokens '${c2:-}' with checkpoints, '${c0:-}' without ($(head -c 300 "$T/s2-2"))"
fi

# --- flags (the plan's count of the checkpoints: test_state_ckpt)
"$B/moepager" chat --help | grep -q -- '--ctx-checkpoints' && ok "chat --help names --ctx-checkpoints" ||
    bad "chat --help lacks --ctx-checkpoints"
out=$("$B/moepager" serve -m "$M" --ctx-checkpoints 99 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q 'ctx-checkpoints' &&
    ok "--ctx-checkpoints 99 refused: $out" || bad "--ctx-checkpoints 99: rc $rc: $out"
out=$("$B/moepager" chat -m "$M" --ctx-checkpoints -1 </dev/null 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q 'ctx-checkpoints' && ok "--ctx-checkpoints -1 refused" ||
    bad "--ctx-checkpoints -1: rc $rc: $out"
exit $fail

# moepager serve answered by curl on 127.0.0.1, with the committed demo model
# streaming its experts through a small cache (--cache-experts 3, 2 slots):
#  - /v1/completions and /v1/chat/completions at temperature 0, streamed (SSE)
#    and not: the text equals `moepager run` on the same prompt (the chat's
#    prompt is the ChatML text the model's template gives: the demo model has
#    none), with `usage`;
#  - the same chat again reuses the slot's KV (cached_tokens = prompt - 1)
#    and answers the same; the completion's continuation, sent after the
#    chats, finds the other slot where its prompt and answer were kept;
#  - bad requests get a 4xx OpenAI error object: malformed JSON, a wrong
#    type, an unknown model, a prompt longer than the context, a body over
#    --max-body, an unknown endpoint;
#  - a streaming client that disconnects frees its slot at once;
#  - /health, /v1/models, /metrics (the expert cache's hit rate is counted);
#  - SIGTERM stops it (exit 0).
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
# shellcheck source=serve_lib.sh
. "$S/tests/serve_lib.sh"
serve_test_init mp-serve

serve_start "$T/log" -m "$M" -c 8192 --parallel 2 --cache-experts 3 --max-body 64K
U="http://127.0.0.1:$PORT"
echo "serving on $U"

# --- completions, equal to run
N=24
"$B/moepager" run -m "$M" -p "def main(" -n $N --temp 0 --no-display-prompt >"$T/run1" 2>/dev/null
curl -sS -m 60 "$U/v1/completions" -d "{\"prompt\":\"def main(\",\"max_tokens\":$N,\"temperature\":0}" >"$T/c1"
curl -sS -m 60 -N "$U/v1/completions" \
    -d "{\"prompt\":\"def main(\",\"max_tokens\":$N,\"temperature\":0,\"stream\":true}" >"$T/c1s"
printf '<|im_start|>user\nimport os<|im_end|>\n<|im_start|>assistant\n' >"$T/chatml"
"$B/moepager" run -m "$M" -f "$T/chatml" -n $N --temp 0 --no-display-prompt >"$T/run2" 2>/dev/null
CHAT="{\"model\":\"demo-stdlib-moe.gguf\",\"messages\":[{\"role\":\"user\",\"content\":\"import os\"}],\"max_tokens\":$N,\"temperature\":0"
curl -sS -m 60 "$U/v1/chat/completions" -d "$CHAT}" >"$T/h1"
curl -sS -m 60 -N "$U/v1/chat/completions" -d "$CHAT,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$T/h1s"
curl -sS -m 60 "$U/v1/chat/completions" -d "$CHAT}" >"$T/h2"
# the completion's continuation: its slot kept "def main(" and the answer
# while the chats ran in the other slot
python3 -c 'import json,sys; print(json.dumps({"prompt": "def main(" + open(sys.argv[1]).read()[:-1], "max_tokens": 4, "temperature": 0}))' \
    "$T/run1" >"$T/c2.json"
curl -sS -m 60 "$U/v1/completions" --data-binary @"$T/c2.json" >"$T/c2"

python3 - "$T" <<'EOF' || fail=1
import json, sys
T = sys.argv[1]
def run_text(p):
    s = open(p, encoding="utf-8", errors="replace").read()
    return s[:-1] if s.endswith("\n") else s  # run ends with a newline of its own
def sse(p):
    events, text, usage, done = [], "", None, False
    for line in open(p, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.startswith("data: "): continue
        d = line[6:]
        if d == "[DONE]": done = True; continue
        e = json.loads(d); events.append(e)
        if e.get("usage"): usage = e["usage"]
        for c in e["choices"]:
            text += c.get("text") or (c.get("delta") or {}).get("content") or ""
    return text, usage, done, events
bad = 0
def check(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond: bad = 1
r1, r2 = run_text(f"{T}/run1"), run_text(f"{T}/run2")
c1 = json.load(open(f"{T}/c1"))
check(c1["object"] == "text_completion" and c1["choices"][0]["text"] == r1,
      f"completion equals run: {c1['choices'][0]['text']!r} vs {r1!r}")
check(c1["usage"]["completion_tokens"] == 24 and c1["usage"]["total_tokens"] == c1["usage"]["prompt_tokens"] + 24
      and c1["choices"][0]["finish_reason"] == "length", f"completion usage {c1['usage']}")
t, u, done, ev = sse(f"{T}/c1s")
check(t == r1 and done and ev[-1]["choices"][0]["finish_reason"] == "length", f"streamed completion equals run: {t!r}")
h1 = json.load(open(f"{T}/h1"))
check(h1["object"] == "chat.completion" and h1["choices"][0]["message"]["role"] == "assistant"
      and h1["choices"][0]["message"]["content"] == r2, f"chat equals run on the ChatML prompt: {h1['choices'][0]['message']['content']!r} vs {r2!r}")
t, u, done, ev = sse(f"{T}/h1s")
check(t == r2 and done and ev[0]["choices"][0]["delta"].get("role") == "assistant"
      and ev[0]["object"] == "chat.completion.chunk", f"streamed chat equals run: {t!r}")
check(u is not None and u["completion_tokens"] == 24 and ev[-1]["choices"] == [], f"include_usage chunk: {u}")
h2 = json.load(open(f"{T}/h2"))
p = h2["usage"]["prompt_tokens"]
check(h2["usage"]["prompt_tokens_details"]["cached_tokens"] == p - 1,
      f"the same chat again reuses {h2['usage']['prompt_tokens_details']['cached_tokens']} of {p} prompt tokens")
check(h2["choices"][0]["message"]["content"] == r2, "and answers the same")
c2 = json.load(open(f"{T}/c2"))
# 10 prompt tokens + 23 evaluated answer tokens (the 24th was sampled, never evaluated)
check(c2["usage"]["prompt_tokens_details"]["cached_tokens"] == 33 and c2["usage"]["prompt_tokens"] == 34,
      f"the completion's continuation found its slot: {c2['usage']}")
sys.exit(bad)
EOF

# --- bad requests: status, and an OpenAI error object
expect_err() { # STATUS PATH BODY-FILE WHAT [param]
    local code
    code=$(curl -sS -m 30 -o "$T/err" -w '%{http_code}' "$U$2" --data-binary @"$3")
    if [ "$code" = "$1" ] && python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["message"] and e["type"]; assert len(sys.argv) < 3 or e["param"] == sys.argv[2]' "$T/err" ${5:+"$5"}; then
        ok "$4 -> $code $(head -c 160 "$T/err")"
    else
        bad "$4: got $code $(head -c 300 "$T/err"), want $1"
    fi
}
printf '{"prompt": "x", ' >"$T/b1"; expect_err 400 /v1/completions "$T/b1" "malformed JSON"
printf '[1,2]' >"$T/b2"; expect_err 400 /v1/completions "$T/b2" "not an object"
printf '{"prompt":"x","max_tokens":"ten"}' >"$T/b3"; expect_err 400 /v1/completions "$T/b3" "max_tokens a string" max_tokens
printf '{"messages":"hi"}' >"$T/b4"; expect_err 400 /v1/chat/completions "$T/b4" "messages a string" messages
printf '{"messages":[{"role":"user","content":"x"}],"temperature":-1}' >"$T/b5"
expect_err 400 /v1/chat/completions "$T/b5" "negative temperature" temperature
printf '{"prompt":"x","model":"gpt-4"}' >"$T/b6"; expect_err 404 /v1/completions "$T/b6" "unknown model" model
python3 -c 'import json; print(json.dumps({"prompt": "abc " * 2100}))' >"$T/b7"
expect_err 400 /v1/completions "$T/b7" "prompt longer than the context" prompt
python3 -c 'import json; print(json.dumps({"prompt": "a" * 70000}))' >"$T/b8"
expect_err 413 /v1/completions "$T/b8" "body over --max-body"
printf '{}' >"$T/b9"; expect_err 404 /v1/nothing "$T/b9" "unknown endpoint"
printf '{"stop":[1]}' >"$T/b10"; expect_err 400 /v1/completions "$T/b10" "no prompt"

# --- a client that disconnects frees its slot at once (both slots busy with
# streams that would run to the 8192-token context, both clients leave after
# 1 s; then a request must be answered)
pids=
for i in 1 2; do
    curl -sS -N -m 1 "$U/v1/completions" -d '{"prompt":"class A:","max_tokens":100000,"temperature":1,"stream":true}' \
        >"$T/long$i" 2>/dev/null &
    pids="$pids $!"
done
wait $pids
sleep 0.3
busy=$(curl -sS -m 10 "$U/metrics" | awk '/^moepager_requests_processing /{print $2}')
[ "$busy" = 0 ] && ok "both slots free after their clients left" || bad "slots still busy after disconnect: $busy"
grep -q '^data: ' "$T/long1" && ! grep -q '\[DONE\]' "$T/long1" && ok "the long streams were cut mid-answer" ||
    bad "the long stream was not cut mid-answer ($(grep -c '^data: ' "$T/long1") events)"
curl -sS -m 30 "$U/v1/completions" -d '{"prompt":"x","max_tokens":4,"temperature":0}' | grep -q '"finish_reason"' &&
    ok "answers after the disconnects" || bad "no answer after the disconnects"

# --- health, models, metrics
[ "$(curl -sS -m 10 "$U/health")" = '{"status":"ok"}' ] && ok "/health" || bad "/health"
curl -sS -m 10 "$U/v1/models" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["data"][0]["id"]=="demo-stdlib-moe.gguf"' &&
    ok "/v1/models" || bad "/v1/models"
curl -sS -m 10 "$U/metrics" >"$T/metrics"
for m in tokens_predicted_total prompt_tokens_cached_total predicted_tokens_seconds requests_deferred \
         expert_cache_hit_rate expert_mb_read_per_token expert_stall_share prefetch_precision; do
    grep -q "^moepager_$m " "$T/metrics" || bad "/metrics lacks moepager_$m"
done
awk '/^moepager_expert_cache_streamed /{s=$2} /^moepager_expert_cache_hit_rate /{h=$2} /^moepager_expert_bytes_read_total /{b=$2}
     END{exit !(s==1 && h>0 && h<1 && b>0)}' "$T/metrics" &&
    ok "/metrics: $(grep -E '^moepager_expert_(cache_hit_rate|mb_read_per_token) ' "$T/metrics" | tr '\n' ' ')" ||
    { bad "/metrics: the expert cache is not counted"; cat "$T/metrics"; }

serve_stop || fail=1

# --- a long prompt is evaluated a chunk (-b tokens) per step: a short request sent while
# it runs is answered before it ends (one eval of the whole prompt held every slot)
serve_start "$T/logb" -m "$M" -c 4096 -b 16 --parallel 2
U="http://127.0.0.1:$PORT"
python3 -c 'import json; print(json.dumps({"prompt": "def f(x):\n    return x\n" * 100, "max_tokens": 1, "temperature": 0}))' >"$T/longbody"
( curl -sS -m 900 "$U/v1/completions" -d @"$T/longbody" >"$T/longout"; date +%s.%N >"$T/longdone" ) &
lp=$!
for _ in $(seq 1 200); do
    [ "$(curl -sS -m 5 "$U/metrics" | awk '/^moepager_requests_processing /{print $2}')" = 1 ] && break
    sleep 0.02
done
curl -sS -m 900 "$U/v1/completions" -d '{"prompt":"x","max_tokens":2,"temperature":0}' >"$T/shortout"
date +%s.%N >"$T/shortdone"
wait $lp
if [ -s "$T/longdone" ] && grep -q '"finish_reason"' "$T/longout" && grep -q '"finish_reason"' "$T/shortout" &&
    awk -v a="$(cat "$T/shortdone")" -v b="$(cat "$T/longdone")" 'BEGIN{exit !(a < b)}'; then
    ok "a short request finished while a $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["prompt_tokens"])' "$T/longout")-token prompt was evaluated"
else
    bad "the short request waited for the long prompt ($(cat "$T/shortdone" "$T/longdone" 2>/dev/null | tr '\n' ' '))"
fi
serve_stop || fail=1

# --- --host: an IPv6 literal (where the machine has ::1), a name; one line for a bad one
hosts=localhost
if [ -r /proc/net/if_inet6 ] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
    hosts="::1 localhost"
else
    echo "note: no ::1 on this machine, --host ::1 not tested"
fi
for h in $hosts; do
    SERVE_HOST=$h serve_start "$T/log-$h" -m "$M"
    url="http://$h:$PORT"
    [ "$h" = ::1 ] && url="http://[::1]:$PORT"
    grep -qF "on $url " "$T/log-$h" && [ "$(curl -sS -g -m 10 "$url/health")" = '{"status":"ok"}' ] &&
        ok "--host $h answers on $url" || bad "--host $h: $(cat "$T/log-$h")"
    serve_stop || fail=1
done
out=$("$B/moepager" serve -m "$M" --host no.such.host.invalid 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "no.such.host.invalid" &&
    ok "a bad --host is refused: $out" || bad "--host no.such.host.invalid: rc $rc: $out"

[ $fail -eq 0 ] && echo "test_serve_curl: ok"
exit $fail

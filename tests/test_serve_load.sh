# moepager serve under load, on loopback, bounded: 4 concurrent clients send
# 200 requests in all (tests/serve_load.py: streamed and plain chat and
# completions, streams dropped after their first event, malformed JSON,
# wrong types, unknown models, bodies over --max-body), to a server with 2
# slots (so requests queue) whose experts stream through the cache inside
# --mem 36M, run in a memory cgroup limited to the same 36 MiB
# (tests/helpers/cgroup_run.sh).
# Passes when every request got its answer (good ones 200 and a finish
# reason, bad ones their 4xx), none took over 120 s (no hang), the server is
# alive and well after (/health, one more request), stops on SIGTERM with
# status 0, and the cgroup saw no OOM kill with its peak inside the limit.
# Skips (77) without python3 or a memory cgroup, and under ASan (RSS limits
# mean nothing with its shadow memory).
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
CGRUN="$S/tests/helpers/cgroup_run.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
if grep -qs '^MP_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" || nm "$B/moepager" 2>/dev/null | grep -q ' __asan_init'; then
    echo "SKIP: AddressSanitizer build: memory limits do not apply to ASan's shadow memory"
    exit 77
fi
LIMIT=36M
LIMIT_B=$((36 * 1024 * 1024))
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-load.XXXXXX")
# on any exit: moepager (the cgroup wrapper's child) first, then the wrapper
cleanup() {
    if [ -n "${SERVE_PID:-}" ]; then
        for c in $(ps -o pid= --ppid "$SERVE_PID" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$SERVE_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
bash "$CGRUN" "$LIMIT" -- dd if=/dev/zero of=/dev/null bs=64M count=1 status=none 2>"$T/probe"
case $? in
    77) echo "SKIP: $(grep -m1 'cgroup_run:' "$T/probe")"; exit 77 ;;
    0) echo "FAIL: dd of 64 MiB under a $LIMIT limit was not stopped: the limit proves nothing"; exit 1 ;;
esac
fail=0

bash "$CGRUN" "$LIMIT" --evict "$M" -- "$B/moepager" serve --host 127.0.0.1 --port 0 -m "$M" --mem "$LIMIT" \
    --parallel 2 -c 512 -t 2 --max-body 32K >"$T/log" 2>&1 &
SERVE_PID=$!
PORT=
for _ in $(seq 1 300); do
    PORT=$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$T/log" | sed 's/.*://')
    [ -n "$PORT" ] && break
    kill -0 $SERVE_PID 2>/dev/null || { echo "FAIL: serve exited at start:"; cat "$T/log"; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL: serve did not start"; cat "$T/log"; exit 1; }
grep 'memory plan' "$T/log"

timeout 900 python3 "$S/tests/serve_load.py" "$PORT" 200 4 32768 demo-stdlib-moe.gguf || fail=1
[ "$(curl -sS -m 10 "http://127.0.0.1:$PORT/health")" = '{"status":"ok"}' ] && echo "ok: /health after the load" ||
    { echo "FAIL: /health after the load"; fail=1; }
curl -sS -m 60 "http://127.0.0.1:$PORT/v1/completions" -d '{"prompt":"x","max_tokens":3}' | grep -q finish_reason &&
    echo "ok: answers after the load" || { echo "FAIL: no answer after the load"; fail=1; }
curl -sS -m 10 "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
grep -E '^moepager_(requests|tokens|expert_cache_hit|expert_mb|expert_stall|prefetch_prec)' "$T/metrics" | tr '\n' ' '
echo
awk '/^moepager_expert_cache_streamed /{exit !($2 == 1)}' "$T/metrics" && echo "ok: experts streamed" ||
    { echo "FAIL: experts did not stream under --mem $LIMIT"; fail=1; }
awk '/^moepager_requests_deferred_total /{exit !($2 > 0)}' "$T/metrics" && echo "ok: requests queued for a slot" ||
    { echo "FAIL: no request ever waited for a slot (4 clients, 2 slots)"; fail=1; }
# SIGTERM to moepager itself (the cgroup wrapper's child), which must stop
# cleanly; the wrapper then reports the cgroup and exits with its status
SRV=$(ps -o pid= --ppid $SERVE_PID | head -1)
[ -n "$SRV" ] && kill -TERM $SRV
for _ in $(seq 1 300); do kill -0 $SERVE_PID 2>/dev/null || break; sleep 0.1; done
if kill -0 $SERVE_PID 2>/dev/null; then
    echo "FAIL: serve did not stop in 30 s"
    fail=1
else
    wait $SERVE_PID
    rc=$?
    [ $rc -eq 0 ] || { echo "FAIL: serve exited $rc"; tail -5 "$T/log"; fail=1; }
fi
SERVE_PID=
cg=$(grep '^cgroup: ' "$T/log")
echo "$cg"
if [ -z "$cg" ]; then
    echo "FAIL: no cgroup report"
    fail=1
else
    peak=$(echo "$cg" | sed -n 's/.* peak \([0-9]*\).*/\1/p')
    echo "$cg" | grep -q 'oom_kill [1-9]' && { echo "FAIL: OOM kill under $LIMIT"; fail=1; }
    [ -n "$peak" ] && [ "$peak" -le $LIMIT_B ] && echo "ok: peak $peak bytes <= $LIMIT_B" ||
        { echo "FAIL: peak '$peak' above the limit $LIMIT_B"; fail=1; }
fi
[ $fail -eq 0 ] && echo "test_serve_load: ok"
exit $fail

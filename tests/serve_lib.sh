# Helpers for the serve tests (sourced): start `moepager serve` on 127.0.0.1
# with any free port and wait until it listens; stop it.
#   serve_start LOG ARGS...   sets SERVE_PID and PORT, or fails the test
#   serve_stop                SIGTERM, then waits (a hang fails the test)

serve_start() {
    local log=$1
    shift
    "$B/moepager" serve --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 &
    SERVE_PID=$!
    PORT=
    for _ in $(seq 1 300); do
        PORT=$(grep -o 'on http://127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | sed 's/.*://')
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || { echo "FAIL: serve exited at start:"; cat "$log"; exit 1; }
        sleep 0.1
    done
    echo "FAIL: serve did not start in 30 s:"
    cat "$log"
    kill "$SERVE_PID" 2>/dev/null
    exit 1
}

serve_stop() {
    [ -n "${SERVE_PID:-}" ] || return 0
    kill -TERM "$SERVE_PID" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVE_PID" 2>/dev/null; then
        echo "FAIL: serve did not stop in 30 s after SIGTERM"
        kill -KILL "$SERVE_PID" 2>/dev/null
        SERVE_PID=
        return 1
    fi
    wait "$SERVE_PID"
    local rc=$?
    SERVE_PID=
    [ $rc -eq 0 ] || { echo "FAIL: serve exited $rc"; return 1; }
}

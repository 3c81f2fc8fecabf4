# Helpers for the serve tests (sourced after B and S are set): start
# `moepager serve` with any free port and wait until it listens; stop it.
#   serve_test_init NAME      skips (77) without curl or python3; a scratch
#                             directory T removed at exit (with the server
#                             killed), fail=0, ok MSG / bad MSG
#   serve_start LOG ARGS...   on $SERVE_HOST (default 127.0.0.1); sets
#                             SERVE_PID and PORT, or fails the test
#   serve_stop                SIGTERM, then waits (a hang fails the test)

serve_test_init() {
    command -v curl >/dev/null || { echo "SKIP: curl absent"; exit 77; }
    command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
    T=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'kill -KILL ${SERVE_PID:-} 2>/dev/null; rm -rf "$T"' EXIT
    fail=0
}
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

serve_start() {
    local log=$1
    shift
    "$B/moepager" serve --host "${SERVE_HOST:-127.0.0.1}" --port 0 "$@" >"$log" 2>&1 &
    SERVE_PID=$!
    PORT=
    for _ in $(seq 1 300); do
        PORT=$(grep -o 'on http://[^ ]*:[0-9]* ' "$log" 2>/dev/null | sed 's/.*:\([0-9]*\) $/\1/')
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

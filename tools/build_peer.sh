#!/usr/bin/env bash
# Builds the llama.cpp peer (../shared/peers/llamacpp: prebuilt libllama from the npm
# registry + its llama_logits driver + tiny models) into the build tree, for the parity
# tests. tools/test.sh calls it; it prints one line saying what happened.
#
#   tools/build_peer.sh [DEST]     default DEST: build/peer/llamacpp
#
# Exit 0 with the peer ready in DEST (built now, or reused: a copy that starts and was
# made from the same peer sources is not rebuilt, so later runs cost nothing and need no
# network); exit 1 with one line "peer: not built: <why>" otherwise (no peer sources, a
# tool missing, the npm registry not answering, make failing: see DEST.log).
# MP_PEER_SRC overrides the peer's source directory.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEST=${1:-build/peer/llamacpp}
SRC=${MP_PEER_SRC:-$ROOT/../shared/peers/llamacpp}
LOG="$DEST.log"
no() { echo "peer: not built: $*"; exit 1; }

[ -f "$SRC/Makefile" ] || no "no peer sources at $SRC"
# The peer's sources are its top-level files (Makefile, package-lock.json, llama_logits.c,
# make_tiny_gguf.py, ...); their hash says whether an existing copy is still current.
srcsum=$(cd "$SRC" && find . -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
runs() { # the driver starts (127: a shared library is missing) and the tiny models exist
  [ -x "$DEST/build/llama_logits" ] || return 1
  "$DEST/build/llama_logits" -m /nonexistent --ids 1 >/dev/null 2>&1
  [ $? -ne 127 ] && [ -f "$DEST/build/tiny-olmoe.gguf" ]
}
if [ "$(cat "$DEST/.mp-src-sha256" 2>/dev/null)" = "$srcsum" ] && runs; then
  echo "peer: reusing $DEST (built earlier from the same sources)"
  exit 0
fi

for c in node npm git python3 make cc c++; do
  command -v "$c" >/dev/null 2>&1 || no "'$c' not found (tools/install_deps.sh --peer installs it)"
done

t0=$(date +%s)
mkdir -p "$(dirname "$DEST")"
if [ "$(cat "$DEST/.mp-src-sha256" 2>/dev/null)" != "$srcsum" ]; then
  rm -rf "$DEST" && mkdir -p "$DEST" || no "cannot create $DEST"
  find "$SRC" -maxdepth 1 -type f -exec cp {} "$DEST/" \; || no "cannot copy $SRC to $DEST"
  chmod -R u+w "$DEST"
  echo "$srcsum" >"$DEST/.mp-src-sha256"
fi
# `npm ci` without a registry retries for minutes; ask once, quickly, with the peer's .npmrc.
reg=$(cd "$DEST" && npm config get registry 2>/dev/null)
ping=$(cd "$DEST" && timeout 60 npm ping --fetch-retries=1 --fetch-timeout=20000 --fetch-retry-mintimeout=1000 \
         --fetch-retry-maxtimeout=5000 2>&1)
case $? in
  0) ;;
  124) no "the npm registry ($reg) did not answer within 60 s" ;;
  *) no "the npm registry ($reg) did not answer (npm ping: $(echo "$ping" | grep -m1 -E '^npm (error|ERR!) (code|[0-9]{3})' |
          sed -E 's/^npm (error|ERR!) //'))" ;;
esac
if ! timeout 1800 make -C "$DEST" >"$LOG" 2>&1; then
  no "make -C $DEST failed: $(grep -v '^\s*$' "$LOG" | tail -1) (log: $LOG)"
fi
runs || no "$DEST/build/llama_logits does not start after make (log: $LOG)"
echo "peer: built $DEST in $(( $(date +%s) - t0 )) s"

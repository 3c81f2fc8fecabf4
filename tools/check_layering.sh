#!/usr/bin/env bash
# Layering check: fails on an include that points up the component table below.
#
#   tools/check_layering.sh [SRC_ROOT]     (default: the checkout this script is in)
#
# Every `#include "X/..."` or `#include <X/...>` in src/C/*.{c,h}, where X is a folder of
# src/, must name C itself or a component that C's row lists. Every row lists only
# components further down the table, so the arrows point down only and there is no cycle
# (the script checks that too). `moepager/...` (include/moepager/, the public headers) may
# be included from anywhere. cli is the library's first user: it may include only the
# public headers and its own cli/ headers. include/moepager/*.h may include nothing from
# src/. A src/ folder missing from the table is an error (add it to the table first).
# Prints each violation as `file:line: component A includes B (upward)`; exit 1 if any.
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2

# component  may include (each one further down this table)
LAYERS='
cli
runtime    model experts pack tokenizer template sample trace cache io gpu kernels gguf common
model      experts gpu kernels gguf common
experts    pack trace cache io kernels gguf common
pack       cache io gguf common
tokenizer  gguf common
template   common
sample     common
trace      cache common
cache      io common
io         common
gpu        kernels common
kernels    common
gguf       common
common
'
# Where the side components sit, and why:
# - experts (the streamer: the expert providers, mapped and cache-backed; the predictor,
#   which reaches the model's router through a callback; the streaming window and every
#   prefetch) sits between model and the cache: forward.c asks it for experts.
# - pack (the expert-major file format and the cache's verify hook for its blocks) is
#   chosen by runtime (runtime/model_open.c), so the model never knows about packs; the
#   pack writer reads models, so it lives in runtime. It may use
#   the cache and io below it: a pack expert is a byte range read into a cache slot, and
#   pack supplies the cache's verify hook (xxh3, lz4 in place).
# - tokenizer, template (the chat-template interpreter) and sample are used by runtime only.
# - trace (routing traces, Belady replay) sits above cache because the replay drives the
#   replacement policies; the predictor reads traces for the oracle.
# - gpu (the CUDA device API, the compute backends cpu/sim/cuda and the VRAM tier:
#   placement plan, VRAM expert cache, cost model) sits just above the kernels, which
#   its CPU backend wraps; the model and the runtime use it.
# - gguf is a reader/writer with no dependency but common.

declare -A rank=() allow=()
r=0 bad=0
while read -r comp deps; do
  [ -n "$comp" ] || continue
  rank[$comp]=$r
  allow[$comp]=" $comp $deps "
  r=$((r + 1))
done <<<"$LAYERS"
# the table itself: every listed dependency exists and sits below its user
for c in "${!allow[@]}"; do
  for d in ${allow[$c]}; do
    [ "$d" = "$c" ] && continue
    if [ -z "${rank[$d]:-}" ]; then echo "check_layering: table: $c lists unknown component $d"; bad=1
    elif [ "${rank[$d]}" -le "${rank[$c]}" ]; then echo "check_layering: table: $c lists $d, which is not below it"; bad=1; fi
  done
done

# includes FILE: "line:dir/name.h" for each include with a folder part ("../x/" counts as x/)
includes() {
  grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<](\.\./)*[A-Za-z0-9_]+/' "$1" |
    sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*["<](\.\.\/)*([^">]+)[">].*/\1:\3/'
}

n_files=0
for dir in src/*/; do
  comp=$(basename "$dir")
  if [ -z "${rank[$comp]:-}" ]; then
    echo "src/$comp: component $comp is not in the layering table of tools/check_layering.sh"
    bad=1
    continue
  fi
  for f in "$dir"*.c "$dir"*.h; do
    [ -f "$f" ] || continue
    n_files=$((n_files + 1))
    # line:target for every include with a folder part; system headers (<sys/...>) fall
    # out below because their folder is not a component
    while IFS=: read -r line target; do
      inc=${target%%/*}
      [ "$inc" = moepager ] && continue
      [ -n "${rank[$inc]:-}" ] || continue
      if [ "$comp" = cli ]; then
        [ "$inc" = cli ] && continue
        echo "${f#./}:$line: component cli includes $inc (past the public API: cli may include only include/moepager/*.h and cli/)"
        bad=1
      elif [[ "${allow[$comp]}" != *" $inc "* ]]; then
        if [ "${rank[$inc]}" -lt "${rank[$comp]}" ]; then how=upward
        else how="not allowed: $comp may include only$(for d in ${allow[$comp]}; do [ "$d" = "$comp" ] || printf ' %s' "$d"; done)"; fi
        echo "${f#./}:$line: component $comp includes $inc ($how)"
        bad=1
      fi
    done < <(includes "$f")
  done
done
# the public headers stand alone
for f in include/moepager/*.h; do
  [ -f "$f" ] || continue
  while IFS=: read -r line target; do
    inc=${target%%/*}
    [ -n "${rank[$inc]:-}" ] || continue
    echo "$f:$line: public header includes src/$inc (the public headers may include only moepager/ and system headers)"
    bad=1
  done < <(includes "$f")
done
[ $n_files -gt 0 ] || { echo "check_layering: no source files under src/"; exit 2; }
if [ $bad = 0 ]; then echo "check_layering: ok ($n_files files)"; fi
exit $bad

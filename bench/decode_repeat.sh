#!/usr/bin/env bash
# The same moepager run N times, each cold, to show how steady the speed is:
# one line per run (prompt and decode tok/s, user and system CPU seconds,
# cgroup peak), then min, median, max and the spread (max / min - 1) of the
# decode speed.
#
#   bench/decode_repeat.sh [-r N] [--limit SIZE] [--label TEXT] -- MOEPAGER_ARGS...
#
#   -r N          runs (default 10)
#   --limit SIZE  run each inside a fresh memory cgroup of SIZE (e.g. 8G;
#                 tests/helpers/cgroup_run.sh; needs root or a delegated cgroup)
#   --label TEXT  printed in front of every line (e.g. "before", "-t 4")
#   MOEPAGER_ARGS the arguments of `moepager` (e.g. run -m big.gguf -p hi -n 64
#                 --mem 7600M -t 2); the model given with -m is evicted from
#                 the page cache before every run
# Environment: MP (the moepager binary; default <repo>/build/moepager).
# Needs GNU time (/usr/bin/time, Debian package `time`).
# A benchmark, not a test: it prints numbers and judges nothing. Run it on a
# quiet machine.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
MP=${MP:-$here/build/moepager}
runs=10 limit= label=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    -r) runs=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --label) label="$2 "; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "${1:-}" = "--" ] || { echo "error: give the moepager arguments after --" >&2; exit 2; }
shift
[ -x "$MP" ] || { echo "error: $MP is not executable (set MP)" >&2; exit 2; }
model=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "-m" ] && model=${args[$((i + 1))]:-}
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
speeds=()
for ((r = 1; r <= runs; r++)); do
  wrap=()
  if [ -n "$limit" ]; then
    wrap=(bash "$here/tests/helpers/cgroup_run.sh" "$limit")
    [ -n "$model" ] && wrap+=(--evict "$model")
    wrap+=(--)
  elif [ -n "$model" ]; then
    dd if="$model" iflag=nocache count=0 status=none 2>/dev/null
  fi
  start=$(date +%s.%N)
  /usr/bin/time -f 'time: user %U sys %S' "${wrap[@]}" "$MP" "${args[@]}" >/dev/null 2>"$log"
  rc=$?
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  pp=$(sed -n 's/.*prompt: [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$log" | tail -1)
  tg=$(sed -n 's/.*generation: [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$log" | tail -1)
  cpu=$(sed -n 's/^time: //p' "$log" | tail -1)
  peak=$(sed -n 's/^cgroup: limit [0-9]* peak \([0-9]*\).*/\1/p' "$log" | tail -1)
  printf '%srun %2d: prompt %6s tok/s  decode %6s tok/s  %s  wall %.1f s%s%s\n' "$label" "$r" "${pp:--}" \
    "${tg:--}" "${cpu:--}" "$wall" "${peak:+  peak $((peak / 1048576)) MiB}" "$([ $rc -ne 0 ] && echo "  exit $rc")"
  [ -n "$tg" ] && speeds+=("$tg")
done
if [ ${#speeds[@]} -gt 0 ]; then
  printf '%s\n' "${speeds[@]}" | sort -g | awk -v l="$label" '{ v[NR] = $1 } END {
    med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%sdecode tok/s over %d runs: min %.2f  median %.2f  max %.2f  spread %.1f%%\n", l, NR, v[1], med, v[NR],
      100 * (v[NR] / v[1] - 1) }'
fi

#!/usr/bin/env bash
# The disk's random-read bandwidth as the expert cache sees it: 3 MiB O_DIRECT
# reads (one expert tensor of the bench model) at queue depth 16 through
# io_uring into huge-page buffers, once with the CPU idle and once with every
# core running a busy loop, as it is while the forward pass computes. On the
# 2-core VM of 2026-11-22 the second figure was 30-40% below the first.
#
# usage: bench/disk_bandwidth.sh FILE [BUILD_DIR]
set -u
FILE=${1:?usage: disk_bandwidth.sh FILE [BUILD_DIR]}
B=${2:-build}/bench_io
[ -x "$B" ] || { echo "disk_bandwidth.sh: $B is not built" >&2; exit 1; }
echo "idle CPU: $("$B" "$FILE" -b 3 -t 3 -q 16 -k io_uring | tail -1)"
pids=()
for _ in $(seq "$(nproc)"); do
  timeout 5 sh -c 'while :; do :; done' &
  pids+=($!)
done
sleep 0.3
echo "every core busy: $("$B" "$FILE" -b 3 -t 3 -q 16 -k io_uring | tail -1)"
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
exit 0

#!/usr/bin/env bash
# Runs one command under a hard memory limit in a fresh memory cgroup and
# reports what the cgroup saw.
#
#   cgroup_run.sh LIMIT [--evict FILE]... -- COMMAND [ARGS...]
#
# LIMIT is bytes or a number with K/M/G (binary units). --evict drops FILE's
# clean pages from the page cache first (posix_fadvise DONTNEED): pages
# already cached were charged to whichever cgroup read them, so a limited run
# would otherwise get them for free.
#
# A child cgroup is made below this process's own memory cgroup (so it works
# inside a container that owns a delegated subtree), given the limit (cgroup
# v1: memory.limit_in_bytes, and memsw when present; v2: memory.max and
# memory.swap.max = 0), the command is started inside it, and the child is
# removed when the command ends, whatever happens.
#
# Output: the command's own stdout/stderr, then on stderr one line
#   cgroup: limit BYTES peak BYTES failcnt N oom_kill N
# (peak: memory.max_usage_in_bytes / memory.peak; failcnt: times usage hit
# the limit; oom_kill: processes the OOM killer ended in the cgroup, "n/a"
# where the kernel does not say).
# Exit: the command's status (137 when the OOM killer ended it); 77 when no
# memory cgroup can be made here (the reason on stderr); 2 for bad usage.
set -u

usage() { echo "usage: $0 LIMIT [--evict FILE]... -- COMMAND [ARGS...]" >&2; exit 2; }
skip() { echo "cgroup_run: $*" >&2; exit 77; }

[ $# -ge 3 ] || usage
limit_arg=$1
shift
case "$limit_arg" in
  *[Kk]) limit=$(( ${limit_arg%?} * 1024 )) ;;
  *[Mm]) limit=$(( ${limit_arg%?} * 1024 * 1024 )) ;;
  *[Gg]) limit=$(( ${limit_arg%?} * 1024 * 1024 * 1024 )) ;;
  *) limit=$limit_arg ;;
esac 2>/dev/null
[[ $limit =~ ^[0-9]+$ ]] && [ "$limit" -gt 0 ] || { echo "cgroup_run: bad limit '$limit_arg'" >&2; usage; }

evict=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --evict) [ $# -ge 2 ] || usage; evict+=("$2"); shift 2 ;;
    *) usage ;;
  esac
done
[ "${1:-}" = "--" ] || usage
shift
[ $# -ge 1 ] || usage

for f in ${evict[@]+"${evict[@]}"}; do
  dd if="$f" iflag=nocache count=0 status=none || { echo "cgroup_run: cannot evict $f" >&2; exit 1; }
done

# Our own memory cgroup: v1 "N:...memory...:/path" with the controller's
# mount point, else v2 "0::/path" with memory enabled in its parent.
parent=""
ver=""
if line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup 2>/dev/null); then
  rel=${line#*:*:}
  mnt=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
  [ -n "$mnt" ] && parent="$mnt$rel" && ver=1
fi
if [ -z "$parent" ] && rel=$(grep -E '^0::' /proc/self/cgroup 2>/dev/null | cut -d: -f3-); then
  mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  if [ -n "$mnt" ] && grep -qw memory "$mnt$rel/cgroup.subtree_control" 2>/dev/null; then
    parent="$mnt$rel"
    ver=2
  fi
fi
[ -n "$parent" ] || skip "no memory cgroup controller (v1 or v2 with memory delegated) in /proc/self/cgroup"
[ -d "$parent" ] && [ -w "$parent" ] || skip "cgroup $parent is not writable (needs root or a delegated cgroup)"

child="$parent/mp-test.$$"
mkdir "$child" 2>/dev/null || skip "cannot create $child"
cleanup() {
  # Anything still inside goes back to the parent, then the child goes.
  if [ -f "$child/cgroup.procs" ]; then
    while read -r p; do echo "$p" >"$parent/cgroup.procs" 2>/dev/null; done <"$child/cgroup.procs"
    rmdir "$child" 2>/dev/null || echo "cgroup_run: could not remove $child" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ver" = 1 ]; then
  echo "$limit" >"$child/memory.limit_in_bytes" || skip "cannot set memory.limit_in_bytes in $child"
  # No swapping around the limit where the kernel accounts swap.
  [ -e "$child/memory.memsw.limit_in_bytes" ] && echo "$limit" >"$child/memory.memsw.limit_in_bytes" 2>/dev/null
  got=$(cat "$child/memory.limit_in_bytes")
else
  echo "$limit" >"$child/memory.max" || skip "cannot set memory.max in $child"
  [ -e "$child/memory.swap.max" ] && echo 0 >"$child/memory.swap.max" 2>/dev/null
  got=$(cat "$child/memory.max")
fi
# v1 rounds the limit down to whole pages.
[ "$got" -le "$limit" ] && [ "$got" -gt $((limit - 4096 * 16)) ] ||
  skip "the limit did not take: asked $limit, memory cgroup says $got"

# The shell moves itself into the child, then becomes the command, so the
# command and all its children are charged there from their first page.
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$child" "$@"
rc=$?

if [ "$ver" = 1 ]; then
  peak=$(cat "$child/memory.max_usage_in_bytes")
  failcnt=$(cat "$child/memory.failcnt")
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$child/memory.oom_control" 2>/dev/null)
else
  peak=$(cat "$child/memory.peak" 2>/dev/null || echo n/a)
  failcnt=$(awk '$1 == "max" { print $2 }' "$child/memory.events" 2>/dev/null)
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$child/memory.events" 2>/dev/null)
fi
echo "cgroup: limit $got peak $peak failcnt ${failcnt:-n/a} oom_kill ${oom:-n/a}" >&2
exit $rc

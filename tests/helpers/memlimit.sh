# Shared by the tests that run moepager under a hard memory limit
# (test_memlimit.sh, test_pack_memlimit.sh, test_budget_auto.sh). Source it
# after setting CGRUN (tests/helpers/cgroup_run.sh), LIMIT (e.g. 64M),
# LIMIT_B (the same in bytes), OUT (the test's directory) and a function
# bad MESSAGE that counts a failure.

# The limit bites: dd touches a 128 MiB buffer inside it. Exits 77 (after
# removing OUT) when no memory cgroup can be made here.
memlimit_probe() {
  bash "$CGRUN" "$LIMIT" -- dd if=/dev/zero of=/dev/null bs=128M count=1 status=none 2>"$OUT/probe.log"
  local rc=$?
  if [ $rc -eq 77 ]; then
    echo "SKIP: $(grep -m1 'cgroup_run:' "$OUT/probe.log")"
    rm -rf "$OUT"
    exit 77
  fi
  [ $rc -ne 0 ] || bad "dd of 128 MiB under a $LIMIT limit was not stopped: $(cat "$OUT/probe.log")"
}

# memlimit_check TAG RC LOG: a `moepager ... --mem LIMIT` run that exited RC
# with its stderr in LOG was not OOM-killed, succeeded, planned no more than
# the limit ("memory plan: ... = 62.46 MiB (budget 64 MiB)") and streamed
# experts. Returns 1 (after bad) when it failed or was killed, else 0.
memlimit_check() {
  local tag=$1 rc=$2 log=$3 total
  if [ "$rc" -eq 137 ] || grep -q 'oom_kill [1-9]' "$log"; then
    bad "$tag: OOM-killed under $LIMIT: $(grep -m1 '^cgroup:' "$log")"
    return 1
  fi
  if [ "$rc" -ne 0 ]; then
    bad "$tag: exit $rc: $(grep -m1 'error' "$log")"
    return 1
  fi
  total=$(sed -n 's/^moepager: memory plan: .* = \([0-9.]*\) \([KMG]iB\).*/\1 \2/p' "$log")
  if [ -z "$total" ]; then
    bad "$tag: no plan total in: $(grep 'memory plan' "$log")"
  elif ! awk -v t="$total" -v lim="$LIMIT_B" 'BEGIN {
           split(t, a, " "); m = a[2] == "KiB" ? 1024 : a[2] == "MiB" ? 1048576 : 1073741824;
           exit !(a[1] * m <= lim) }'; then
    bad "$tag: plan total $total is above the limit $LIMIT"
  fi
  grep -q 'memory plan: .*expert cache' "$log" || bad "$tag: experts are not streamed under --mem"
  return 0
}

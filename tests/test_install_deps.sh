# tools/install_deps.sh decides right what to install, checked without installing
# anything (MP_APT_DRY=1 prints the apt-get commands instead of running them; a made-up
# package name stands for a missing one, coreutils for one that is present):
#   - nothing missing: "all present", and no apt-get at all (not even update);
#   - a missing package: one update, one install of exactly that package, with
#     --no-install-recommends and DEBIAN_FRONTEND=noninteractive;
#   - a missing peer command: a separate install of its package (a failure there is
#     not fatal), none when the command exists;
#   - not root with something missing: exit 1 and a line naming the package and the
#     command to run (only checked when this runs as root and setpriv exists).
# Skips (77) where dpkg-query is absent (not Debian).
set -u
S=${MP_SRC:-..}
D="$(cd "$S" && pwd)/tools/install_deps.sh"
command -v dpkg-query >/dev/null || { echo "SKIP: no dpkg-query (not a Debian system)"; exit 77; }
dpkg-query -W -f='${Status}' coreutils 2>/dev/null | grep -q 'install ok installed' ||
    { echo "SKIP: coreutils is not a dpkg package here"; exit 77; }
fail=0
bad() { echo "FAIL: $*"; fail=1; }
NOPKG=mp-no-such-package-xyz

out=$(MP_APT_DRY=1 MP_DEPS_LIST="coreutils" MP_PEER_CMDS_LIST="sh:dash" bash "$D" --peer 2>&1) || bad "all present: exit $?: $out"
[ "$out" = "deps: all present" ] || bad "all present: unexpected output: $out"

out=$(MP_APT_DRY=1 MP_DEPS_LIST="coreutils $NOPKG" MP_PEER_CMDS_LIST="sh:dash" bash "$D" --peer 2>&1) || bad "one missing: exit $?: $out"
[ "$(echo "$out" | grep -c 'would run: DEBIAN_FRONTEND=noninteractive apt-get .* update')" = 1 ] || bad "one missing: not one update: $out"
echo "$out" | grep -qE "would run: DEBIAN_FRONTEND=noninteractive apt-get .* install -y -q --no-install-recommends $NOPKG\$" ||
    bad "one missing: no install of exactly $NOPKG: $out"
echo "$out" | grep -E 'install' | grep -qE 'coreutils|dash' && bad "one missing: installs a present package: $out"

out=$(MP_APT_DRY=1 MP_DEPS_LIST="coreutils" MP_PEER_CMDS_LIST="sh:dash mp-no-such-cmd:$NOPKG" bash "$D" --peer 2>&1) ||
    bad "peer cmd missing: exit $?: $out"
echo "$out" | grep -qE "install -y -q --no-install-recommends $NOPKG\$" || bad "peer cmd missing: no install of $NOPKG: $out"
out=$(MP_APT_DRY=1 MP_DEPS_LIST="coreutils" MP_PEER_CMDS_LIST="mp-no-such-cmd:$NOPKG" bash "$D" 2>&1) || bad "no --peer: exit $?"
[ "$out" = "deps: all present" ] || bad "without --peer the peer's commands were looked at: $out"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    out=$(cd /tmp && MP_DEPS_LIST="coreutils $NOPKG" setpriv --reuid=65534 --regid=65534 --clear-groups bash "$D" 2>&1)
    rc=$?
    [ $rc = 1 ] || bad "not root, missing package: exit $rc (expected 1): $out"
    echo "$out" | grep -q "missing Debian packages: $NOPKG" || bad "not root: package not named: $out"
    echo "$out" | grep -q "apt-get install -y --no-install-recommends $NOPKG" || bad "not root: no command to run: $out"
else
    echo "note: not root or no setpriv: the not-root message was not checked"
fi
[ $fail = 0 ] && echo "test_install_deps: ok"
exit $fail

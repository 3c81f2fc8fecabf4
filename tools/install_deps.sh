#!/usr/bin/env bash
# Installs the Debian packages moepager needs, only those missing, so the README's two
# commands work alone on a bare Debian 12 (run as root):
#
#   tools/install_deps.sh          build + test packages (a failure is fatal: exit 1)
#   tools/install_deps.sh --peer   also the tools that build the llama.cpp peer
#                                  (node, npm, git, python3, make, g++; a failure there
#                                  prints one line and still exits 0: the tests then use
#                                  the golden logits instead of the peer)
#
# Idempotent: `dpkg-query` decides what is present; when nothing is missing neither
# `apt-get update` nor `apt-get install` runs. The peer's tools are looked up as commands,
# not packages, because node and npm often come from elsewhere (NodeSource's nodejs ships
# npm and conflicts with Debian's npm package).
#
# MP_APT_DRY=1 prints the apt-get commands instead of running them (and does not need root).
# For tests/test_install_deps.sh: MP_DEPS_LIST="pkg ..." replaces the package list and
# MP_PEER_CMDS_LIST="cmd:pkg ..." the peer's command list.
set -uo pipefail
exec 3>&1   # the dry run's "would run" lines go here even while apt output goes to a log

# python3: test_bench parses the json/csv writers with it; curl, tmux: the serve and chat tests
read -r -a MP_DEPS <<<"${MP_DEPS_LIST:-build-essential cmake pkg-config liburing-dev liblz4-dev libxxhash-dev libpcre2-dev libmicrohttpd-dev libjansson-dev python3 curl tmux}"
# command:package, for the peer (see ../shared/peers/llamacpp/README.md)
read -r -a MP_PEER_CMDS <<<"${MP_PEER_CMDS_LIST:-node:nodejs npm:npm git:git python3:python3 make:make g++:g++}"

peer=0
for a in "$@"; do
  case "$a" in
    --peer) peer=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_deps: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${MP_DEPS[@]}"; do installed "$p" || missing+=("$p"); done
fi
peer_missing=()
if [ $peer = 1 ]; then
  for cp in "${MP_PEER_CMDS[@]}"; do
    c=${cp%%:*} p=${cp#*:}
    command -v "$c" >/dev/null 2>&1 && continue
    case " ${missing[*]} ${peer_missing[*]} " in *" $p "*) ;; *) peer_missing+=("$p") ;; esac
  done
fi

[ ${#missing[@]} -eq 0 ] && [ ${#peer_missing[@]} -eq 0 ] && { echo "deps: all present"; exit 0; }

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "deps: this is not a Debian-like system (no apt-get/dpkg-query); install by hand:" \
       "a C11 compiler, cmake, pkg-config, liburing, liblz4, libxxhash, libpcre2-8, libmicrohttpd, jansson, python3, curl, tmux" >&2
  exit 1
fi

dry=${MP_APT_DRY:-0}
if [ "$dry" != 1 ] && [ "$(id -u)" != 0 ]; then
  all=("${missing[@]}" "${peer_missing[@]}")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: missing Debian packages: ${all[*]}" >&2
    echo "deps: not root, so not installing them; run as root:" \
         "apt-get update && apt-get install -y --no-install-recommends ${all[*]}" >&2
    exit 1
  fi
  echo "deps: peer tools missing (${peer_missing[*]}) and not root: the llama.cpp peer will not be built"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (another job on the machine) instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
run_apt() {
  if [ "$dry" = 1 ]; then echo "deps: would run: DEBIAN_FRONTEND=noninteractive ${APT[*]} $*" >&3; return 0; fi
  "${APT[@]}" "$@"
}

all=("${missing[@]}" "${peer_missing[@]}")
echo "deps: installing ${all[*]}"
log=$(mktemp "${TMPDIR:-/tmp}/mp-apt.XXXXXX")
trap 'rm -f "$log"' EXIT
if ! run_apt update -qq >"$log" 2>&1; then
  # An update that fails (a mirror down) may still leave usable lists: try the install anyway.
  echo "deps: apt-get update failed: $(grep -v '^\s*$' "$log" | tail -1)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! run_apt install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "deps: apt-get install ${missing[*]} failed (output above)" >&2
    exit 1
  fi
fi
if [ ${#peer_missing[@]} -gt 0 ]; then
  if ! run_apt install -y -q --no-install-recommends "${peer_missing[@]}" >"$log" 2>&1; then
    echo "deps: peer tools not installed (apt-get install ${peer_missing[*]}: $(tail -1 "$log"));" \
         "the llama.cpp peer will not be built"
  fi
fi
echo "deps: done"
exit 0

#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run runs exactly this). On a bare
# Debian 12, as root, it needs nothing else:
#   1. installs the Debian packages that are missing (tools/install_deps.sh --peer; no
#      apt-get at all when everything is there);
#   2. builds the llama.cpp peer from ../shared/peers/llamacpp into build/peer/llamacpp
#      (tools/build_peer.sh: prebuilt llama.cpp from the npm registry; reused on later
#      runs) and exports MP_PEER, so the llama.cpp parity tests run. When it cannot be
#      built (no registry, no peer sources) it says why in one line and goes on: the
#      parity tests then skip, and test_parity_golden still checks the engine against
#      logits the peer wrote earlier (tests/golden/);
#   3. builds and runs ctest in three configurations:
#        build/         the normal build (runtime SIMD dispatch)
#        build-asan/    MP_SANITIZE=ON (AddressSanitizer + UndefinedBehaviorSanitizer)
#        build-scalar/  MP_FORCE_SCALAR=ON (reference kernels only)
#      and says for each whether the llama.cpp parity tests ran.
# Environment: MP_TEST_QUICK=1 runs the normal build only; MP_PEER=DIR uses that built
# peer instead of building one; MP_NO_PEER=1 builds no peer (golden logits only).
# Exit 0 when every configuration built and passed.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
jobs=$(nproc 2>/dev/null || echo 2)
elapsed() { local s=$(( $(date +%s) - t0 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

echo "== deps"
tools/install_deps.sh --peer || { echo "== FAILED: the build dependencies are missing (above)"; exit 1; }

echo "== peer ($(elapsed))"
peer_note=
if [ -n "${MP_PEER:-}" ]; then
  echo "peer: using MP_PEER=$MP_PEER"
elif [ "${MP_NO_PEER:-0}" = 1 ]; then
  peer_note="MP_NO_PEER=1"
  echo "peer: not built (MP_NO_PEER=1)"
else
  echo "peer: building it in build/peer/llamacpp unless built already (first time: a few minutes;" \
       "log: build/peer/llamacpp.log)"
  if line=$(tools/build_peer.sh build/peer/llamacpp); then
    export MP_PEER="$PWD/build/peer/llamacpp"
  else
    peer_note=${line#peer: not built: }
  fi
  echo "$line"
fi
if [ -n "${MP_PEER:-}" ]; then
  echo "peer: the llama.cpp parity tests run against $MP_PEER"
else
  echo "peer: none, so the llama.cpp parity tests will SKIP; test_parity_golden checks the" \
       "engine against the committed golden logits instead"
fi

failed=() summary=()
run() {
  local dir=$1; shift
  echo "== configure $dir ($*) ($(elapsed))"
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"; failed+=("$dir (configure)"); return
  fi
  if ! cmake --build "$dir" -j"$jobs"; then failed+=("$dir (build)"); return; fi
  echo "== test $dir ($(elapsed))"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 1800) 2>&1 | tee "$dir/ctest.log"
  [ "${PIPESTATUS[0]}" = 0 ] || failed+=("$dir (tests)")
  # one line per parity test: Passed / ***Skipped / ***Failed, from ctest's result lines
  local p
  p=$(grep -oE 'test_parity_[a-z0-9_]+ \.+ *[*]*[A-Za-z]+' "$dir/ctest.log" | sed -E 's/ \.+ */ /; s/[*]//g' |
      sort | paste -sd, - | sed 's/,/, /g')
  summary+=("$dir: ${p:-no parity test ran}")
  echo "== parity in $dir: ${p:-no parity test ran}"
}
run build
if [ "${MP_TEST_QUICK:-0}" != 1 ]; then
  # The sanitizer and scalar builds run every test too, but the two widest differential
  # runs on a sample (they check the same code paths as in build/, where they run in
  # full): 300 strings per vocabulary instead of 3000, and two of the five
  # llama-quantize types. That keeps the three builds inside CI's time on 2 cores.
  export MP_TOK_DIFF_N=${MP_TOK_DIFF_N:-300} MP_PEERQUANT_FTYPES=${MP_PEERQUANT_FTYPES:-q3_K_M iq4_xs}
  run build-asan -DMP_SANITIZE=ON -DMP_GEN_DEMO=OFF
  run build-scalar -DMP_FORCE_SCALAR=ON -DMP_GEN_DEMO=OFF
fi

echo "== summary ($(elapsed))"
if [ -n "${MP_PEER:-}" ]; then
  echo "llama.cpp parity: RAN against the peer at $MP_PEER"
else
  echo "llama.cpp parity: SKIPPED (no peer: ${peer_note:-none found}); golden logits checked instead"
fi
for s in "${summary[@]}"; do echo "  $s"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (after $(elapsed))"
  exit 1
fi
echo "all passed in $(elapsed)"

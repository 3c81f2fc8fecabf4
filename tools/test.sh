#!/usr/bin/env bash
# The whole test suite: builds and runs ctest in three configurations:
#   build/       the normal build (runtime SIMD dispatch)
#   build-asan/  MP_SANITIZE=ON (AddressSanitizer + UndefinedBehaviorSanitizer)
#   build-scalar/ MP_FORCE_SCALAR=ON (reference kernels only)
# Set MP_TEST_QUICK=1 to run the normal build only.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
run() {
  local dir=$1; shift
  echo "== configure $dir ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900)
}
run build
if [ "${MP_TEST_QUICK:-0}" != 1 ]; then
  run build-asan -DMP_SANITIZE=ON -DMP_GEN_DEMO=OFF
  run build-scalar -DMP_FORCE_SCALAR=ON -DMP_GEN_DEMO=OFF
fi

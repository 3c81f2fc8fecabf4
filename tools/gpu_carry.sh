#!/usr/bin/env bash
# Prepares .gpu-carry/ (in .gitignore) for tools/gpu_check.sh on the device machine:
# the binaries it runs, built here (this build must have CUDA: nvcc was found at
# configure time), and the shared libraries a bare device image may lack (liburing,
# lz4, xxhash, pcre2). The CUDA runtime is linked statically; the device brings the
# driver. Then call the device tool from the checkout that holds this tree with
#   carry: [".gpu-carry"]   command: "bash tools/gpu_check.sh"   timeout_s: 540
#
#   tools/gpu_carry.sh [BUILD_DIR=build]
# Optional: a llama.cpp CUDA build for the speed comparison, in .gpu-carry/peer/
# (llama-bench and its libraries; see tools/gpu_check.sh, "llama.cpp").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$root/build}
C=$root/.gpu-carry
rc=0
"$B/test_gpu_kernels" >/dev/null 2>&1 || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "gpu_carry: $B/test_gpu_kernels does not run (rc $rc)" >&2; exit 1; fi
if "$B/test_gpu_kernels" 2>&1 | grep -q 'this build has no CUDA'; then
    echo "gpu_carry: $B was built without CUDA (configure with nvcc on PATH or -DMP_CUDA=ON)" >&2
    exit 1
fi
rm -rf "${C:?}/bin" "${C:?}/lib"
mkdir -p "$C/bin" "$C/lib"
for b in moepager mp-gen mp-cmp-logits bench_engine test_gpu_kernels test_gpu_dequant test_gpu_tier test_gpu_backend; do
    [ -x "$B/$b" ] || { echo "gpu_carry: $B/$b is not built" >&2; exit 1; }
    strip -o "$C/bin/$b" "$B/$b"
done
for lib in liburing.so.2 liblz4.so.1 libxxhash.so.0 libpcre2-8.so.0; do
    p=$(ldd "$B/moepager" | awk -v l="$lib" '$1 == l { print $3 }')
    [ -n "$p" ] && cp -L "$p" "$C/lib/$lib"
done
# .gitignore ignores /.gpu-carry/ (the device tool sends ignored paths only when carried)
du -sh "$C"

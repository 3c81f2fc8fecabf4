# A file whose matrix uses a weight type moepager does not implement is refused
# with one line naming the file, the tensor and the type, and no crash. An mp-gen
# llama-moe model with q3_K experts gets the type id of blk.1.ffn_down_exps.weight
# rewritten to iq3_s (21), which has Q3_K's block geometry (256 elements in 110
# bytes), so the file stays well formed and only the type is unknown to the
# kernels; then the same for a dense matrix (blk.0.attn_q.weight).
# Exit 0 pass, 1 fail, 77 without the tools or python3.
set -u
B=${MP_BUILD:-.}
for exe in moepager mp-gen; do [ -x "$B/$exe" ] || { echo "SKIP: $B/$exe not built"; exit 77; }; done
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3 to patch the GGUF header"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-refusal.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$B/mp-gen" --arch llama-moe --type q3_K --n-embd 256 --n-head 4 --n-head-kv 4 --n-ff 256 --n-layer 2 \
    --n-expert 4 --n-expert-used 2 --n-vocab 384 --seed 3 -q -o "$T/m.gguf" || { echo "FAIL: mp-gen"; exit 1; }
"$B/moepager" logits -m "$T/m.gguf" --ids 1,5,6 -n 2 -o "$T/ok.f32" >/dev/null 2>"$T/ok.err" ||
    { echo "FAIL: the unpatched q3_K model does not run:"; cat "$T/ok.err"; exit 1; }

# patch NAME NEW_TYPE IN OUT: rewrites the type of tensor NAME in the GGUF tensor infos
patch() {
    python3 - "$@" <<'PY'
import struct, sys
name, new_type, src, dst = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3], sys.argv[4]
b = bytearray(open(src, 'rb').read())
key = struct.pack('<Q', len(name)) + name
i = b.find(key)
assert i > 0, 'tensor not found'
j = i + len(key)
n_dims = struct.unpack_from('<I', b, j)[0]
j += 4 + 8 * n_dims
assert struct.unpack_from('<I', b, j)[0] == 11, 'not q3_K'
struct.pack_into('<I', b, j, new_type)
open(dst, 'wb').write(b)
PY
}
fail=0
for t in blk.1.ffn_down_exps.weight blk.0.attn_q.weight; do
    patch "$t" 21 "$T/m.gguf" "$T/bad.gguf" || { echo "FAIL: patching $t"; fail=1; continue; }
    "$B/moepager" logits -m "$T/bad.gguf" --ids 1,5,6 -n 2 -o "$T/bad.f32" >"$T/out" 2>"$T/err"
    rc=$?
    msg=$(grep -v '^\s*$' "$T/err" | head -3)
    echo "$t -> iq3_s: rc=$rc: $msg"
    if [ $rc -eq 0 ] || [ $rc -gt 128 ]; then echo "FAIL: $t: exit $rc (want a clean error)"; fail=1; fi
    case "$msg" in
        *"$t"*iq3_s*) ;;
        *) echo "FAIL: $t: the error does not name the tensor and the type"; fail=1 ;;
    esac
    case "$msg" in *bad.gguf*) ;; *) echo "FAIL: $t: the error does not name the file"; fail=1 ;; esac
done
exit $fail

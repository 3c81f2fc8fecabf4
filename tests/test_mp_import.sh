# mp-import (tools/mp_import.c), the writer of the trained demo model, on a tiny model
# that python3 writes here in train_demo.py's export format (manifest.txt + weights.bin
# of little-endian f32): 2 layers, n_embd 32, 4 experts top-2, the 258-token byte vocab.
#  - --type f32: the file's tensor data is weights.bin byte for byte (every tensor is a
#    multiple of the 32-byte alignment, so no padding in between), moepager inspects it
#    as a llama MoE and tokenizes text to BOS + bytes;
#  - --type q8_0: moepager runs it, mapped and streaming (1 expert per layer cached);
#  - bad input: a truncated weights.bin, a NaN, a malformed manifest, a wrong tensor
#    count: exit 1 with one line naming the file (and tensor and offset), no file left.
set -u
B=${MP_BUILD:-.}
for exe in mp-import moepager; do [ -x "$B/$exe" ] || { echo "FAIL: $B/$exe not built"; exit 1; }; done
command -v python3 >/dev/null || { echo "SKIP: no python3 to write the test weights"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-import.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir "$T/w"
python3 - "$T/w" <<'PY' || { echo "FAIL: python3 could not write the weights"; exit 1; }
import random, struct, sys
d = sys.argv[1]; rng = random.Random(7); E, F, X, L, V = 32, 32, 4, 2, 258
ts = [("token_embd.weight", [E, V], 0.5)]
for i in range(L):
    p = f"blk.{i}."
    ts += [(p + "attn_norm.weight", [E], None), (p + "attn_q.weight", [E, E], 0.2), (p + "attn_k.weight", [E, E], 0.2),
           (p + "attn_v.weight", [E, E], 0.2), (p + "attn_output.weight", [E, E], 0.2), (p + "ffn_norm.weight", [E], None),
           (p + "ffn_gate_inp.weight", [E, X], 0.3), (p + "ffn_gate_exps.weight", [E, F, X], 0.2),
           (p + "ffn_down_exps.weight", [F, E, X], 0.2), (p + "ffn_up_exps.weight", [E, F, X], 0.2)]
ts += [("output_norm.weight", [E], None), ("output.weight", [E, V], 0.2)]
off = 0
with open(d + "/weights.bin", "wb") as w, open(d + "/manifest.txt", "w") as m:
    m.write("n_vocab 258\nbos 256\neos 257\nn_layer 2\nn_embd 32\nn_head 2\nn_head_kv 2\nn_expert 4\n"
            "n_expert_used 2\nn_ff 32\nn_ctx 256\nrope_base 10000.0\neps 1e-05\n")
    for name, ne, std in ts:
        n = 1
        for x in ne: n *= x
        vals = [1.0 + 0.1 * rng.uniform(-1, 1) if std is None else rng.gauss(0, std) for _ in range(n)]
        w.write(struct.pack("<%df" % n, *vals))
        m.write(f"tensor {name} {off} {len(ne)} {' '.join(map(str, ne))}\n")
        off += 4 * n
PY
fail=0
"$B/mp-import" --weights "$T/w" --type f32 -o "$T/f32.gguf" || { echo "FAIL: mp-import f32"; exit 1; }
n=$(stat -c %s "$T/w/weights.bin")
tail -c "$n" "$T/f32.gguf" | cmp -s - "$T/w/weights.bin" || { echo "FAIL: the f32 file's tensor data is not weights.bin"; fail=1; }
info=$("$B/moepager" inspect -m "$T/f32.gguf" 2>&1)
echo "$info" | grep -q 'experts: *4 per layer, 2 used per token' || { echo "FAIL: inspect:"; echo "$info"; fail=1; }
ids=$("$B/moepager" tokenize -m "$T/f32.gguf" -p $'ab\tc')
[ "$ids" = "256 97 98 9 99" ] || { echo "FAIL: tokenize gave '$ids', want '256 97 98 9 99'"; fail=1; }

"$B/mp-import" --weights "$T/w" --type q8_0 -o "$T/q8.gguf" || { echo "FAIL: mp-import q8_0"; exit 1; }
for flags in --mmap "--cache-experts 1"; do
    "$B/moepager" logits -m "$T/q8.gguf" -p "def f(x):" -o "$T/l.f32" -n 4 -t 1 $flags >"$T/out" 2>&1 ||
        { echo "FAIL: moepager logits $flags:"; cat "$T/out"; fail=1; }
    [ "$(stat -c %s "$T/l.f32" 2>/dev/null)" = $((258 * 4)) ] || { echo "FAIL: $flags: no logits"; fail=1; }
done

# bad input: one error line, exit 1, no output file
bad() { # NAME EXPECTED-SUBSTRING
    local out rc
    out=$("$B/mp-import" --weights "$T/b" -o "$T/b.gguf" 2>&1); rc=$?
    if [ $rc -ne 1 ] || [ "$(echo "$out" | wc -l)" -ne 1 ] || ! echo "$out" | grep -qF -- "$2" || ls "$T"/b.gguf* >/dev/null 2>&1; then
        echo "FAIL: $1: rc $rc, output '$out' (want one line with '$2' and no file)"; fail=1
    else
        echo "ok: $1: $out"
    fi
}
mkdir "$T/b"
cp "$T/w/manifest.txt" "$T/b/"; head -c 50000 "$T/w/weights.bin" >"$T/b/weights.bin"
bad "truncated weights" "short read"
cp "$T/w/weights.bin" "$T/b/"; printf '\x00\x00\xc0\x7f' | dd of="$T/b/weights.bin" bs=1 seek=40000 conv=notrunc 2>/dev/null
bad "NaN" "is not finite"
cp "$T/w/weights.bin" "$T/b/"; sed 's/^n_embd 32/n_embd thirty-two/' "$T/w/manifest.txt" >"$T/b/manifest.txt"
bad "malformed manifest" "manifest.txt:5"
grep -v 'blk.1.ffn_up_exps' "$T/w/manifest.txt" >"$T/b/manifest.txt"
bad "missing tensor" "22 tensors, a llama MoE of 2 layers has 23"
exit $fail

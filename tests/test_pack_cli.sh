#!/usr/bin/env bash
# moepager pack from the command line: packs mp-gen models of three
# architectures, `moepager logits` gives byte-identical logits (and greedy
# tokens) on the GGUF and on the pack (also one with lz4 blocks, with and
# without a cache budget), `inspect` and `run` accept the pack, a flipped
# byte in the expert blocks makes `logits` exit nonzero with a checksum error
# naming layer/expert/offset and no output file (preloaded or budgeted), a truncated
# or header-corrupted pack is refused at open, bad command lines are
# refused. Exit 0 pass, 1 fail, 77 when mp-gen or moepager is not built.
set -u

BUILD=${MP_BUILD:-.}
GEN="$BUILD/mp-gen"
MP="$BUILD/moepager"
[ -x "$GEN" ] && [ -x "$MP" ] || { echo "SKIP: mp-gen or moepager not built"; exit 77; }
OUT="$BUILD/pack-cli-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1

fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

MODELS=(
  "llama-moe|--arch llama-moe --type q8_0 --n-embd 64 --n-ff 64 --n-layer 2 --n-expert 4"
  "qwen3moe|--arch qwen3moe --type q4_K --n-embd 256 --n-ff 256 --n-head 4 --n-expert 6"
  "olmoe|--arch olmoe --type f16 --n-embd 64 --n-ff 64 --n-head 4 --n-head-kv 4 --n-expert 8"
)
IDS=1,17,42,99,7,250,3,64

for m in "${MODELS[@]}"; do
  name=${m%%|*}
  opts=${m#*|}
  # shellcheck disable=SC2086
  "$GEN" $opts --seed 11 -q -o "$OUT/$name.gguf" || { bad "$name: mp-gen"; continue; }
  if ! "$MP" pack "$OUT/$name.gguf" -o "$OUT/$name.moepack" -t 2 >"$OUT/$name.pack.out" 2>"$OUT/$name.pack.err"; then
    bad "$name: pack failed: $(cat "$OUT/$name.pack.err")"
    continue
  fi
  grep -q "^experts: [0-9]* blocks, [0-9]* lz4-compressed" "$OUT/$name.pack.out" || bad "$name: no summary"
  grep -q "% saved" "$OUT/$name.pack.out" || bad "$name: no saving in the summary"
  grep -q "packing.*100.0%" "$OUT/$name.pack.err" || bad "$name: no progress on stderr"
  ! ls "$OUT" | grep -q "tmp\|resident" || bad "$name: temp file left"
  a=$("$MP" logits -m "$OUT/$name.gguf" --ids $IDS --all -n 4 -o "$OUT/$name.gguf.bin" 2>&1) || bad "$name: logits on gguf: $a"
  b=$("$MP" logits -m "$OUT/$name.moepack" --ids $IDS --all -n 4 -o "$OUT/$name.pack.bin" 2>&1) || bad "$name: logits on pack: $b"
  cmp -s "$OUT/$name.gguf.bin" "$OUT/$name.pack.bin" || bad "$name: logits differ"
  [ "$(echo "$a" | grep gen_ids)" = "$(echo "$b" | grep gen_ids)" ] || bad "$name: greedy tokens differ"
  "$MP" inspect -m "$OUT/$name.moepack" >"$OUT/$name.inspect" 2>&1 || bad "$name: inspect on pack"
  "$MP" inspect -m "$OUT/$name.gguf" >"$OUT/$name.inspect.gguf" 2>&1
  [ "$(grep '^parameters' "$OUT/$name.inspect")" = "$(grep '^parameters' "$OUT/$name.inspect.gguf")" ] ||
    bad "$name: inspect counts differ between gguf and pack"
done

# run on a pack (built-in vocabulary of mp-gen)
"$MP" run -m "$OUT/llama-moe.moepack" -p "hello" -n 4 >"$OUT/run.out" 2>&1 || bad "run on a pack: $(cat "$OUT/run.out")"
# --no-compress, and the same logits
"$MP" pack "$OUT/llama-moe.gguf" -o "$OUT/raw.moepack" --no-compress -q >"$OUT/raw.out" 2>&1 || bad "--no-compress"
grep -q " 0 lz4-compressed" "$OUT/raw.out" || bad "--no-compress compressed something"
"$MP" logits -m "$OUT/raw.moepack" --ids $IDS --all -n 4 -o "$OUT/raw.bin" >/dev/null 2>&1 &&
  cmp -s "$OUT/raw.bin" "$OUT/llama-moe.gguf.bin" || bad "--no-compress logits differ"

# lz4 blocks (random weights never compress: mp-compressible makes the odd
# experts compressible): the same logits as the GGUF, with and without a
# budget, and with the pread backend
COMP="$BUILD/mp-compressible"
if [ -x "$COMP" ]; then
  "$COMP" "$OUT/qwen3moe.gguf" "$OUT/lz4.gguf" || bad "mp-compressible"
  "$MP" pack "$OUT/lz4.gguf" -o "$OUT/lz4.moepack" -q >"$OUT/lz4.out" 2>&1 || bad "pack lz4: $(cat "$OUT/lz4.out")"
  read -r nb nz <<<"$(sed -n 's/^experts: \([0-9]*\) blocks, \([0-9]*\) lz4-compressed.*/\1 \2/p' "$OUT/lz4.out")"
  [ -n "${nz:-}" ] && [ "$nz" -gt 0 ] && [ "$nz" -lt "$nb" ] || bad "lz4 and raw blocks: $(grep '^experts' "$OUT/lz4.out")"
  "$MP" logits -m "$OUT/lz4.gguf" --ids $IDS --all -n 4 -o "$OUT/lz4.gguf.bin" >/dev/null 2>&1 || bad "logits lz4.gguf"
  for opt in "" "--cache-experts 2" "--cache-experts 2 --io pread" "--cache-experts 1 --prefetch none"; do
    rm -f "$OUT/lz4.bin"
    # shellcheck disable=SC2086
    o=$("$MP" logits -m "$OUT/lz4.moepack" --ids $IDS --all -n 4 $opt -o "$OUT/lz4.bin" 2>&1) || bad "lz4 pack $opt: $o"
    cmp -s "$OUT/lz4.gguf.bin" "$OUT/lz4.bin" || bad "lz4 pack $opt: logits differ from the GGUF's"
  done
else
  bad "$COMP not built"
fi

# corruption: a flipped byte in every expert block of the data section
P="$OUT/llama-moe.moepack"
size=$(stat -c %s "$P")
data_off=$(od -An -t u8 -j 72 -N 8 "$P" | tr -d ' ')   # mp_pack_header.data_offset
cp "$P" "$OUT/flip.moepack"
for ((off = data_off + 100; off < size; off += 4096)); do
  printf '\x5a' | dd of="$OUT/flip.moepack" bs=1 seek=$off conv=notrunc status=none
done
rm -f "$OUT/flip.bin"
if "$MP" logits -m "$OUT/flip.moepack" --ids $IDS -o "$OUT/flip.bin" >"$OUT/flip.out" 2>&1; then
  bad "a corrupt expert block was used"
fi
grep -q "error: .*flip.moepack: checksum mismatch in expert block layer [0-9]* expert [0-9]* at offset [0-9]*" "$OUT/flip.out" ||
  bad "checksum error message: $(cat "$OUT/flip.out")"
[ ! -e "$OUT/flip.bin" ] || bad "logits were written from a corrupt pack"
# the same through a cache of 2 experts per layer (demand loads and
# prefetches, no preload): one error line, no logits
if "$MP" logits -m "$OUT/flip.moepack" --ids $IDS --cache-experts 2 -o "$OUT/flip.bin" >"$OUT/flip2.out" 2>&1; then
  bad "a corrupt expert block was used by a budgeted run"
fi
[ "$(grep -c "error: .*flip.moepack: checksum mismatch in expert block layer [0-9]* expert [0-9]* at offset [0-9]*" \
      "$OUT/flip2.out")" = 1 ] || bad "budgeted checksum error: $(cat "$OUT/flip2.out")"
[ ! -e "$OUT/flip.bin" ] || bad "logits were written from a corrupt pack (budgeted)"

# truncation and a corrupted header: refused at open, before any compute
head -c $((size - 4096 - 100)) "$P" >"$OUT/trunc.moepack"
out=$("$MP" logits -m "$OUT/trunc.moepack" --ids 1 2>&1) && bad "truncated pack accepted"
echo "$out" | grep -q "runs past the end of the file\|truncated" || bad "truncated: $out"
head -c 5000 "$P" >"$OUT/trunc2.moepack"
out=$("$MP" inspect -m "$OUT/trunc2.moepack" 2>&1) && bad "truncated pack accepted by inspect"
echo "$out" | grep -q "truncated" || bad "truncated at 5000: $out"
cp "$P" "$OUT/hdr.moepack"
printf '\x07' | dd of="$OUT/hdr.moepack" bs=1 seek=20 conv=notrunc status=none
out=$("$MP" run -m "$OUT/hdr.moepack" -p hi -n 1 2>&1) && bad "corrupt header accepted"
echo "$out" | grep -q "header checksum mismatch" || bad "corrupt header: $out"

# command-line errors
"$MP" pack >/dev/null 2>&1 && bad "pack without arguments"
"$MP" pack "$OUT/llama-moe.gguf" >/dev/null 2>&1 && bad "pack without -o"
"$MP" pack "$OUT/llama-moe.gguf" -o "$OUT/x.moepack" --bogus >/dev/null 2>&1 && bad "unknown option accepted"
out=$("$MP" pack "$OUT/nope.gguf" -o "$OUT/x.moepack" 2>&1) && bad "missing input accepted"
echo "$out" | grep -q "nope.gguf" || bad "missing input: $out"
[ ! -e "$OUT/x.moepack" ] || bad "output left after a failure"
"$MP" pack --help | grep -q "moepack" || bad "pack --help"

if [ "$fail" -ne 0 ]; then
  echo "$fail failure(s)"
  exit 1
fi
echo "ok"

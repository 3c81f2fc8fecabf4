#!/usr/bin/env bash
# Flags the public params added: --io-timeout SECONDS (a positive number;
# anything else is one clear error line), --mmap and --mem 0 (map the whole
# file: the plan says so and the logits equal the default run's); chat and serve
# refuse an unusable --chat-template at start (exit 1, one error line).
# Exit 0 pass, 1 fail, 77 when the tools are not built.
set -u
BUILD=${MP_BUILD:-.}
MP="$BUILD/moepager"
GEN="$BUILD/mp-gen"
[ -x "$MP" ] || { echo "SKIP: $MP not built"; exit 77; }
[ -x "$GEN" ] || { echo "SKIP: $GEN not built"; exit 77; }
OUT="$BUILD/cli-flags-test"
rm -rf "$OUT" && mkdir -p "$OUT" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
M="$OUT/tiny.gguf"
"$GEN" -q --arch llama-moe --type q8_0 --n-embd 128 --n-ff 128 --n-layer 2 --n-expert 4 --n-expert-used 2 \
  --seed 3 -o "$M" || { echo "FAIL: mp-gen"; exit 1; }
L=(logits -m "$M" --ids 1,2,3 -t 1)

for v in abc 0 -1 1e9; do
  timeout 60 "$MP" "${L[@]}" --io-timeout "$v" >"$OUT/bad.log" 2>&1
  rc=$?
  [ $rc -eq 1 ] || bad "--io-timeout $v: exit $rc, expected 1"
  [ "$(grep -c '^error: --io-timeout: ' "$OUT/bad.log")" -eq 1 ] || bad "--io-timeout $v: $(head -2 "$OUT/bad.log")"
done
timeout 60 "$MP" "${L[@]}" --io-timeout 2.5 --cache-experts 2 -o "$OUT/t.bin" >"$OUT/t.log" 2>&1 ||
  bad "--io-timeout 2.5: exit $?: $(grep error "$OUT/t.log")"
timeout 60 "$MP" "${L[@]}" -o "$OUT/ref.bin" >"$OUT/ref.log" 2>&1 || bad "default run: exit $?"
for f in "--mmap" "--mem 0"; do
  # shellcheck disable=SC2086
  timeout 60 "$MP" "${L[@]}" $f -o "$OUT/m.bin" >"$OUT/m.log" 2>&1 || bad "$f: exit $?: $(grep error "$OUT/m.log")"
  grep -q 'memory plan: all weights mapped' "$OUT/m.log" || bad "$f: not mapped: $(grep 'memory plan' "$OUT/m.log")"
  cmp -s "$OUT/m.bin" "$OUT/ref.bin" || bad "$f: logits differ from the default run"
done
cmp -s "$OUT/t.bin" "$OUT/ref.bin" || bad "--io-timeout 2.5 --cache-experts 2: logits differ from the mapped run"
"$MP" run --help | grep -q -- '--io-timeout SECONDS' || bad "run --help: no --io-timeout"
"$MP" run --help | grep -q -- '--mmap' || bad "run --help: no --mmap"
printf '{%% for x in %%}' >"$OUT/bad.jinja"
for t in nosuch-template "$OUT/bad.jinja"; do
  for cmd in chat serve; do
    [ $cmd = serve ] && port=(--port 0) || port=()
    timeout 60 "$MP" $cmd -m "$M" "${port[@]}" --chat-template "$t" </dev/null >"$OUT/tmpl.log" 2>&1
    rc=$?
    [ $rc -eq 1 ] || bad "$cmd --chat-template $t: exit $rc, expected 1"
    [ "$(grep -c '^error: chat template: ' "$OUT/tmpl.log")" -eq 1 ] || bad "$cmd --chat-template $t: $(cat "$OUT/tmpl.log")"
  done
done
[ $fail -eq 0 ] && { rm -rf "$OUT"; echo "test_cli_flags: ok"; }
[ $fail -eq 0 ]

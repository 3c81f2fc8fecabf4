# The trained routing predictor and the hidden-state records it is trained on,
# through the CLI, on the committed demo model and its committed predictor
# (models/demo-stdlib-moe.predictor.gguf, tools/train_predictor.py):
#  - `run --predictor FILE` streams with the nets guessing and writes the same
#    text as `--prefetch none` (a guess never changes what the model computes);
#    the plan counts the nets' bytes, and the run says the nets were used;
#  - a predictor saved beside the model (MODEL.predictor.gguf) is used without
#    --predictor, but not with --no-predictor, --prefetch none or
#    --routing-trace; a bad one there fails the run naming it;
#  - `run --hidden-out FILE` writes the header and one record per token and
#    MoE layer, whose picks are those `--trace-out` records for the same run;
#  - a file that is not a predictor, a truncated one, and an unwritable
#    --hidden-out path each give one error line and a nonzero exit.
# No timing.
set -u
B=${MP_BUILD:-.}
S=${MP_SRC:-..}
M="$S/models/demo-stdlib-moe.gguf"
P="$S/models/demo-stdlib-moe.predictor.gguf"
[ -x "$B/moepager" ] || { echo "FAIL: $B/moepager not built"; exit 1; }
[ -f "$M" ] && [ -f "$P" ] || { echo "FAIL: $M or $P missing (both are committed)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mp-pred.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
run=("$B/moepager" run -m "$M" -p "def fibonacci(n):" -n 48 --temp 0 --cache-experts 2 -t 2 --no-display-prompt)

"${run[@]}" --prefetch none >"$T/none.txt" 2>"$T/none.err" || { echo "FAIL: the run without prefetch failed"; cat "$T/none.err"; exit 1; }
"${run[@]}" --predictor "$P" --prefetch-timing off >"$T/pred.txt" 2>"$T/pred.err" ||
    { echo "FAIL: the run with --predictor failed"; cat "$T/pred.err"; exit 1; }
cat "$T/pred.err"
cmp -s "$T/none.txt" "$T/pred.txt" || { echo "FAIL: --predictor changed the text"; fail=1; }
grep -q "predictor .*: 12 trained nets" "$T/pred.err" || { echo "FAIL: no line about the predictor's nets"; fail=1; }
grep -q "prefetch: [1-9][0-9]* loads" "$T/pred.err" || { echo "FAIL: the nets prefetched nothing"; fail=1; }
o_none=$(grep -o "overhead [0-9.]* MiB" "$T/none.err" | head -1 | awk '{print $2}')
o_pred=$(grep -o "overhead [0-9.]* MiB" "$T/pred.err" | head -1 | awk '{print $2}')
python3 -c "import sys; sys.exit(0 if float('$o_pred') - float('$o_none') >= 0.75 else 1)" ||
    { echo "FAIL: the plan's overhead grew from $o_none to $o_pred MiB, not by the nets' 0.80 MiB"; fail=1; }

# hidden-state records against the routing trace of the same run
"${run[@]}" --prefetch none --hidden-out "$T/h.bin" --trace-out "$T/t.jsonl" >/dev/null 2>"$T/h.err" ||
    { echo "FAIL: --hidden-out failed"; cat "$T/h.err"; exit 1; }
python3 - "$T/h.bin" "$T/t.jsonl" <<'PY' || fail=1
import json, struct, sys
data = open(sys.argv[1], "rb").read()
if data[:8] != b"MPHIDDEN":
    sys.exit("FAIL: no MPHIDDEN header")
version, n_embd, k, n_moe = struct.unpack_from("<4I", data, 8)
if (version, n_embd, k, n_moe) != (1, 128, 2, 6):
    sys.exit(f"FAIL: header {version, n_embd, k, n_moe}, want (1, 128, 2, 6)")
rec = 4 * (2 + k + n_embd)
if (len(data) - 24) % rec:
    sys.exit("FAIL: a partial record")
trace = {}
for line in open(sys.argv[2]):
    o = json.loads(line)
    trace[(o["layer"], o["token_idx"])] = o["experts"]
n = (len(data) - 24) // rec
seen = {}
for i in range(n):
    off = 24 + i * rec
    layer, pos = struct.unpack_from("<2I", data, off)
    picks = list(struct.unpack_from(f"<{k}i", data, off + 8))
    h = struct.unpack_from(f"<{n_embd}f", data, off + 8 + 4 * k)
    seen[(layer, pos)] = picks
    if not any(abs(x) > 0 for x in h):
        sys.exit(f"FAIL: record {i} has a zero hidden state")
if seen != trace:
    sys.exit(f"FAIL: {len(seen)} hidden records and {len(trace)} trace records disagree")
print(f"hidden-state records: {n}, the same picks as the routing trace")
PY

# a predictor beside the model: the default, unless told otherwise
cp "$M" "$T/m.gguf"
cp "$P" "$T/m.predictor.gguf"
beside=("$B/moepager" run -m "$T/m.gguf" -p "def fibonacci(n):" -n 16 --temp 0 --cache-experts 2 -t 2 --no-display-prompt)
"${beside[@]}" >"$T/b.txt" 2>"$T/b.err" && grep -q "predictor $T/m.predictor.gguf (beside the model.*: 12 trained nets" "$T/b.err" ||
    { echo "FAIL: the predictor beside the model was not used"; cat "$T/b.err"; fail=1; }
for opt in --no-predictor "--prefetch none" "--routing-trace $T/t.jsonl"; do
    # shellcheck disable=SC2086 # opt holds a flag and its value
    "${beside[@]}" $opt >/dev/null 2>"$T/b2.err" && ! grep -q "predictor" "$T/b2.err" ||
        { echo "FAIL: $opt: the predictor beside the model was loaded (or the run failed)"; cat "$T/b2.err"; fail=1; }
done
head -c 3000 "$P" >"$T/m.predictor.gguf"
"${beside[@]}" >/dev/null 2>"$T/b3.err"
rc=$?
{ [ $rc -ne 0 ] && [ "$(grep -c . "$T/b3.err")" -eq 1 ] && grep -q "m.predictor.gguf" "$T/b3.err"; } ||
    { echo "FAIL: a truncated predictor beside the model: exit $rc,"; cat "$T/b3.err"; fail=1; }

# the training tool, tiny, when Debian's python3-torch is there: its GGUF loads here
if /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
    if /usr/bin/python3 "$S/tools/train_predictor.py" --model "$M" --moepager "$B/moepager" --out "$T/tiny.gguf" \
        --windows 6 --held-windows 3 --gen-windows 4 --gen-tokens 8 --prev-picks 1 --distance 2 --epochs 3 --hidden 16 >"$T/train.out" 2>&1; then
        tail -3 "$T/train.out"
        "${run[@]}" --predictor "$T/tiny.gguf" >"$T/tiny.txt" 2>"$T/tiny.err" &&
            grep -q "12 trained nets" "$T/tiny.err" && cmp -s "$T/none.txt" "$T/tiny.txt" ||
            { echo "FAIL: the predictor train_predictor.py wrote does not run"; cat "$T/tiny.err"; fail=1; }
    else
        echo "FAIL: tools/train_predictor.py failed"; cat "$T/train.out"; fail=1
    fi
else
    echo "note: no python3-torch: tools/train_predictor.py not run"
fi

# bad input: one line, nonzero exit
check_bad() { # label, want, command...
    local label=$1 want=$2
    shift 2
    "$@" >/dev/null 2>"$T/bad.err"
    local rc=$?
    local lines
    lines=$(grep -c . "$T/bad.err")
    if [ $rc -eq 0 ] || ! grep -q -- "$want" "$T/bad.err" || [ "$lines" -ne 1 ]; then
        echo "FAIL: $label: exit $rc, $lines lines:"; cat "$T/bad.err"; fail=1
    else
        echo "ok: $label: $(cat "$T/bad.err")"
    fi
}
check_bad "the model as a predictor" "not a predictor file" "${run[@]}" --predictor "$M"
head -c 3000 "$P" >"$T/trunc.gguf"
check_bad "a truncated predictor" "trunc.gguf" "${run[@]}" --predictor "$T/trunc.gguf"
check_bad "a missing predictor" "nope.gguf" "${run[@]}" --predictor "$T/nope.gguf"
check_bad "an unwritable --hidden-out" "cannot create" "${run[@]}" --hidden-out "$T/no/such/dir/h.bin"
[ $fail -eq 0 ] && echo "PASS"
exit $fail

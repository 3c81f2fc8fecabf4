#!/usr/bin/env bash
# Records the routing of the trained demo model (models/demo-stdlib-moe.gguf) on four
# held-out prompts (beginnings of functions from stdlib files the model never trained
# on: filecmp.py, json/encoder.py, uuid.py, fileinput.py), 128 sampled tokens each
# (--temp 0.7, seed 1..4; all weights mapped: routing does not depend on streaming),
# into tests/data/traces/demo-stdlib-*.jsonl (docs/TRACE_FORMAT.md). Deterministic for a
# given build and CPU. Usage: tools/record_demo_traces.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
M=models/demo-stdlib-moe.gguf
O=tests/data/traces
prompts=(
    $'def _do_cmp(f1, f2):\n    bufsize = BUFSIZE\n    with open(f1, \'rb\') as fp1, open(f2, \'rb\') as fp2:\n'
    $'    def encode(self, o):\n        """Return a JSON string representation of a Python data structure.\n'
    $'def _ifconfig_getnode():\n    """Get the hardware address on Unix by running ifconfig."""\n'
    $'def nextfile():\n    """\n    Close the current file so that the next iteration will read the first\n'
)
names=(filecmp json-encoder uuid fileinput)
for i in 0 1 2 3; do
    f="$O/demo-stdlib-${names[$i]}.jsonl"
    "$B/moepager" run -m "$M" -p "${prompts[$i]}" -n 128 --temp 0.7 --seed $((i + 1)) --mmap -t 2 \
        --trace-out "$f" >/dev/null 2>"$f.err" || { cat "$f.err" >&2; rm -f "$f.err"; exit 1; }
    rm -f "$f.err"
    echo "$f: $(wc -l <"$f") records, $(wc -c <"$f") bytes"
done

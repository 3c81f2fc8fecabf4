#!/usr/bin/python3
"""How good a routing predictor's nets are on one run, without the engine's timing.

Lookahead gains only where a layer's whole set of experts changes from the token before
and the guess gets the whole new set right: a layer whose set repeats costs no read, and
a layer with one miss waits for that read as long as one with two
(docs/measurements/prefetch-room-2026-12-07.md). So for each net of a predictor
(tools/train_predictor.py) this prints, on the records of one run:

  - whole: the share of tokens whose k experts are the net's top k, over all tokens and
    over the changed ones (the layer's set differs from the previous position's);
  - top k+1, top k+2: the share of changed layers whose set lies within the net's top
    k+1 or k+2 (what more picks per layer could cover, at the price of wrong reads);
  - at 85%: how many changed layers a bar could let through with at least 85% of them
    right, ranking the net's guesses by the top-k probability mass (the engine's bucket)
    or by the margin between the k-th and the (k+1)-th probability. The best threshold
    is chosen after the fact: an upper bound for a bar of either kind.

Then the whole-set accuracy of all nets' guesses by margin.

The records come from the engine:
  build/moepager run -m models/demo-stdlib-moe.gguf -p "def fibonacci(n):" -n 256 \\
      --temp 0 --hidden-out /tmp/demo.hid
  /usr/bin/python3 bench/predictor_report.py models/demo-stdlib-moe.predictor.gguf /tmp/demo.hid --from 18
(--from: the first position counted, e.g. the prompt's length to count only decode
tokens; default 1). numpy only.
  /usr/bin/python3 bench/predictor_report.py PREDICTOR.gguf HIDDEN [--from POS]"""
import argparse
import struct
import sys

import numpy as np

PROG = "predictor_report"


def fail(msg):
    sys.exit(f"{PROG}: {msg}")


class Reader:
    def __init__(self, path, data):
        self.path, self.data, self.at = path, data, 0

    def take(self, n, what):
        if self.at + n > len(self.data):
            fail(f"{self.path}: truncated at offset {self.at} (reading {what})")
        b = self.data[self.at:self.at + n]
        self.at += n
        return b

    def u(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, self.take(size, what))[0]

    def string(self, what):
        n = self.u("Q", what)
        if n > 1 << 20:
            fail(f"{self.path}: a string of {n} bytes at offset {self.at - 8} ({what})")
        return self.take(n, what).decode("utf-8", "replace")


SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def read_value(r, t, what, depth=0):
    if t in SCALAR:
        return r.u(SCALAR[t], what)
    if t == 8:
        return r.string(what)
    if t == 9 and depth == 0:
        et, n = r.u("I", what), r.u("Q", what)
        if n > 1 << 24:
            fail(f"{r.path}: an array of {n} values ({what})")
        return [read_value(r, et, what, 1) for _ in range(n)]
    fail(f"{r.path}: value type {t} at offset {r.at} ({what})")


def slurp(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")


def read_predictor(path):
    """(kv, {name: float32 array shaped [ne1, ne0]}) of a predictor GGUF."""
    data = slurp(path)
    r = Reader(path, data)
    if r.take(4, "magic") != b"GGUF":
        fail(f"{path}: not a GGUF file")
    version = r.u("I", "version")
    if version not in (2, 3):
        fail(f"{path}: GGUF version {version}")
    n_t, n_kv = r.u("Q", "tensor count"), r.u("Q", "key count")
    if n_t > 1 << 16 or n_kv > 1 << 16:
        fail(f"{path}: {n_t} tensors, {n_kv} keys")
    kv = {}
    for _ in range(n_kv):
        key = r.string("a key")
        kv[key] = read_value(r, r.u("I", key), key)
    if kv.get("general.architecture") != "moepager-predictor":
        fail(f"{path}: architecture {kv.get('general.architecture')!r}, not a moepager predictor")
    infos = []
    for _ in range(n_t):
        name = r.string("a tensor name")
        nd = r.u("I", name)
        if nd < 1 or nd > 4:
            fail(f"{path}: tensor {name}: {nd} dimensions")
        ne = [r.u("Q", name) for _ in range(nd)]
        t, off = r.u("I", name), r.u("Q", name)
        if t != 0:
            fail(f"{path}: tensor {name}: type {t} (a predictor's nets are f32)")
        infos.append((name, ne, off))
    align = kv.get("general.alignment", 32)
    if not isinstance(align, int) or align < 1:
        fail(f"{path}: general.alignment {align!r}")
    base = (r.at + align - 1) // align * align
    tensors = {}
    for name, ne, off in infos:
        n = 1
        for x in ne:
            n *= x  # Python ints: no overflow
        if base + off + 4 * n > len(data):
            fail(f"{path}: tensor {name}: data at offset {base + off} runs past the end of the file")
        a = np.frombuffer(data, dtype="<f4", count=n, offset=base + off)
        tensors[name] = a.reshape(ne[::-1]) if len(ne) > 1 else a
    return kv, tensors


def read_hidden(path):
    data = slurp(path)
    if len(data) < 24 or data[:8] != b"MPHIDDEN":
        fail(f"{path}: not a hidden-state file (docs/TRACE_FORMAT.md)")
    version, n_embd, k, n_moe = struct.unpack_from("<4I", data, 8)
    if version != 1:
        fail(f"{path}: version {version} (this reads 1)")
    if n_embd == 0 or k == 0 or n_moe == 0 or n_embd > 1 << 16 or k > 64:
        fail(f"{path}: n_embd {n_embd}, k {k}, {n_moe} MoE layers")
    rec = 4 * (2 + k + n_embd)
    if (len(data) - 24) % rec:
        fail(f"{path}: a truncated record at offset {24 + (len(data) - 24) // rec * rec}")
    body = np.frombuffer(data, dtype="<u4", offset=24).reshape(-1, rec // 4)
    if len(body) == 0:
        fail(f"{path}: no records")
    return n_embd, k, n_moe, body


def nets_of(path, kv, tensors, n_embd, k):
    for key in ("predictor.n_embd", "predictor.n_expert", "predictor.n_expert_used",
                "predictor.src", "predictor.dst", "predictor.ahead"):
        if key not in kv:
            fail(f"{path}: no {key}")
    if kv["predictor.n_embd"] != n_embd or kv["predictor.n_expert_used"] != k:
        fail(f"{path}: n_embd {kv['predictor.n_embd']}, k {kv['predictor.n_expert_used']}; "
             f"the records have {n_embd} and {k}")
    X = kv["predictor.n_expert"]
    prev_h = kv.get("predictor.prev_h", 0)
    if prev_h not in (0, 1):
        fail(f"{path}: predictor.prev_h {prev_h!r} (0 or 1)")
    src, dst, ahead = kv["predictor.src"], kv["predictor.dst"], kv["predictor.ahead"]
    if not (len(src) == len(dst) == len(ahead)) or not src:
        fail(f"{path}: predictor.src, dst and ahead differ in length or are empty")
    nets = []
    for i, (s, d, a) in enumerate(zip(src, dst, ahead)):
        w = {}
        for part in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
            name = f"net.{i}.{part}"
            if name not in tensors:
                fail(f"{path}: no tensor {name}")
            w[part] = tensors[name]
        h = w["fc1.bias"].shape[0]
        n_in = w["fc1.weight"].shape[1] if w["fc1.weight"].ndim == 2 else -1
        want = (2 * n_embd,) if prev_h else (n_embd, n_embd + X)
        if (w["fc1.weight"].shape != (h, n_in) or n_in not in want
                or w["fc2.weight"].shape != (X, h) or w["fc2.bias"].shape != (X,)):
            fail(f"{path}: net {i}: tensor shapes do not fit n_embd {n_embd}, {X} experts")
        nets.append((s, d, a, w, "h" if prev_h else "picks" if n_in != n_embd else None))
    return X, nets


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("predictor")
    ap.add_argument("hidden")
    ap.add_argument("--from", dest="first", type=int, default=1,
                    help="the first position counted (default 1: all but the first token)")
    a = ap.parse_args()
    n_embd, k, n_moe, body = read_hidden(a.hidden)
    kv, tensors = read_predictor(a.predictor)
    X, nets = nets_of(a.predictor, kv, tensors, n_embd, k)
    layer, pos = body[:, 0].astype(np.int64), body[:, 1].astype(np.int64)
    picks = body[:, 2:2 + k].view("<i4")
    if (picks < 0).any() or (picks >= X).any() or (layer >= n_moe).any():
        fail(f"{a.hidden}: an expert or layer out of range for {X} experts, {n_moe} MoE layers")
    hs = body[:, 2 + k:].view("<f4")
    at = {(int(l), int(p)): i for i, (l, p) in enumerate(zip(layer, pos))}
    sets = {key: frozenset(picks[i].tolist()) for key, i in at.items()}
    print(f"{a.hidden}: {len(body)} records, {n_moe} MoE layers, k {k}; "
          f"{a.predictor}: {len(nets)} nets of {X} experts; positions from {a.first}")
    print(f"{'net':<14} {'tokens':>6} {'whole':>7} {'changed':>7} {'whole':>7} "
          f"{'top ' + str(k + 1):>7} {'top ' + str(k + 2):>7} {'at 85%, mass':>13} {'at 85%, margin':>15}")
    all_rows = []
    tot = [0, 0, 0, 0]
    for s, d, ah, w, prev in nets:
        rows = []
        for (l, p), i in at.items():
            t = p + ah
            if l != s or t < a.first or (d, t) not in at or (d, t - 1) not in at:
                continue
            h = hs[i].astype(np.float64)
            x = h / np.sqrt((h * h).mean() + 1e-5)
            if prev == "picks":  # the flags of dst's picks on the token before
                flags = np.zeros(X)
                flags[list(sets[(d, t - 1)])] = 1.0
                x = np.concatenate([x, flags])
            elif prev == "h":  # dst's residual on the token before
                g = hs[at[(d, t - 1)]].astype(np.float64)
                x = np.concatenate([x, g / np.sqrt((g * g).mean() + 1e-5)])
            z = w["fc2.weight"] @ np.maximum(w["fc1.weight"] @ x + w["fc1.bias"], 0.0) + w["fc2.bias"]
            pr = np.exp(z - z.max())
            pr /= pr.sum()
            order = np.argsort(-pr, kind="stable")
            truth = sets[(d, t)]
            changed = truth != sets[(d, t - 1)]
            ok = frozenset(order[:k].tolist()) == truth
            cover = [truth <= frozenset(order[:k + j].tolist()) for j in (1, 2)]
            margin = pr[order[k - 1]] - (pr[order[k]] if k < X else 0.0)
            rows.append((ok, changed, cover, pr[order[:k]].sum(), margin))
        name = f"{s} -> {d}" + (" (next)" if ah else "")
        if not rows:
            print(f"{name:<14} {0:>6}")
            continue
        ch = [r for r in rows if r[1]]
        best = []
        for col in (3, 4):
            right, b = 0, 0
            for j, r in enumerate(sorted(ch, key=lambda r: -r[col])):
                right += r[0]
                if right >= 0.85 * (j + 1):
                    b = right
            best.append(b)
        pct = lambda n, m: f"{100.0 * n / m:6.1f}%" if m else "      -"
        print(f"{name:<14} {len(rows):>6} {pct(sum(r[0] for r in rows), len(rows))} {len(ch):>7} "
              f"{pct(sum(r[0] for r in ch), len(ch))} {pct(sum(r[2][0] for r in ch), len(ch))} "
              f"{pct(sum(r[2][1] for r in ch), len(ch))} {best[0]:>13} {best[1]:>15}")
        tot[0] += len(ch)
        tot[1] += sum(r[0] for r in ch)
        tot[2] += best[0]
        tot[3] += best[1]
        all_rows += rows
    print(f"changed layers over all nets: {tot[0]}, right {tot[1]}; through a bar at 85% precision: "
          f"{tot[2]} by mass, {tot[3]} by margin")
    print("whole set right by margin (all nets): margin  tokens  all  changed")
    edges = [0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 1.01]
    for lo, hi in zip(edges, edges[1:]):
        sel = [r for r in all_rows if lo <= r[4] < hi]
        sch = [r for r in sel if r[1]]
        if sel:
            print(f"  [{lo:.2f}, {min(hi, 1.0):.2f}) {len(sel):>7} {100.0 * sum(r[0] for r in sel) / len(sel):5.1f}% "
                  f"{(100.0 * sum(r[0] for r in sch) / len(sch)) if sch else 0.0:6.1f}%")


if __name__ == "__main__":
    main()

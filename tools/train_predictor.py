#!/usr/bin/python3
"""Train a routing predictor for moepager's lookahead (--predictor FILE).

The router of layer L+1 applied to the hidden state of layer L (what lookahead
does without a predictor) guesses a small model's whole set of experts for the
next layer only a third to a half of the time, and its confidence says little
about when it is right. A small net trained on the model's own hidden states
does better, and its top-k probability mass says when to trust it
(docs/measurements/prefetch-room-2026-12-07.md).

CPU only, Debian's python3-torch (apt-get install python3-torch; run with
/usr/bin/python3). Steps:
  1. windows of text (128 bytes from random line starts; by default the Python
     standard library split exactly as tools/train_demo.py splits it, seed
     1234, so the held-out files stay held out) run through the engine:
     `moepager run -m MODEL -f WINDOW -n 1 --hidden-out FILE` writes, for every
     token and MoE layer, the residual entering the layer's FFN and the layer's
     picks (docs/TRACE_FORMAT.md, "Hidden-state records"); and, because
     lookahead runs on what the model writes, not on what people wrote, more
     windows (48 bytes) as prompts after which the engine writes 128 tokens,
     greedy and at temperature 0.7 in turns (`-n 128`): nets trained on the
     stdlib alone got a whole layer right about a third less often on the
     demo's own greedy text;
  2. for each pair of consecutive MoE layers (L -> L+1, the same token) and
     from the last MoE layer to the first of the next token (ahead 1), an MLP
        probs = softmax(W2 relu(W1 x + b1) + b2),  x = h / rms(h)
     (with --prev-picks 1, x = [h / rms(h), last], where `last` flags the
     experts the predicted layer used on the token before: surer of whole
     layers on held-out text, 77.0% against 73.5% for layer 0 -> 1, but no
     faster on the demo, since it mostly learns the sets that repeat, which
     cost no read anyway; with --prev-h 1, x = [h / rms(h), g / rms(g)], g the
     residual the predicted layer had on the token before, which carries the
     context at that layer: layer 0 -> 1 on held-out text 86.0% against
     71.0%), trained with cross-entropy on the k picks (1/k
     each), Adam on shuffled minibatches;
  3. written as a GGUF of architecture moepager-predictor
     (src/runtime/predictor_file.h) with each net's held-out accuracy printed:
     the share of tokens whose whole set of k experts is the net's top k, over
     all tokens and over the half it is surest of.

The demo model's predictor (models/demo-stdlib-moe.predictor.gguf):
  /usr/bin/python3 tools/train_predictor.py --model models/demo-stdlib-moe.gguf \\
      --out models/demo-stdlib-moe.predictor.gguf
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def stdlib_split(seed, heldout_frac):
    """train_demo.py's corpus and split: (train bytes, held-out bytes)."""
    sys.path.insert(0, HERE)
    import train_demo  # noqa: E402 (same directory)
    files = train_demo.corpus_files(train_demo.find_stdlib())
    order = list(range(len(files)))
    random.Random(seed).shuffle(order)
    n_held = max(1, int(round(len(files) * heldout_frac)))
    held = set(order[:n_held])
    train = b"".join(files[i][1] for i in range(len(files)) if i not in held)
    held_buf = b"".join(files[i][1] for i in sorted(held))
    return train, held_buf


def windows(buf, n, size, rng):
    starts = [i + 1 for i, b in enumerate(buf) if b == 10 and i + 1 < len(buf) - 8]
    out = []
    while len(out) < n:
        s = rng.choice(starts)
        w = buf[s:s + size].decode("utf-8", "replace")
        if "\0" not in w and w.strip():
            out.append(w)
    return out


def read_hidden(path):
    """Records of one --hidden-out file: dict (moe_layer, pos) -> (picks, h)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24 or data[:8] != b"MPHIDDEN":
        sys.exit(f"train_predictor: {path}: not a hidden-state file")
    version, n_embd, k, n_moe = struct.unpack_from("<4I", data, 8)
    if version != 1:
        sys.exit(f"train_predictor: {path}: version {version} (this reads 1)")
    rec = 4 * (2 + k + n_embd)
    body = np.frombuffer(data, dtype="<u4", offset=24)
    if body.size * 4 % rec:
        sys.exit(f"train_predictor: {path}: a truncated record")
    body = body.reshape(-1, rec // 4)
    return n_embd, k, n_moe, body


def collect(mp, model, texts, threads, tmp, label, gen=1):
    """Runs the engine on every window: n_embd, k, n_moe and one array of records per window.
    gen > 1: the window is a prompt and the engine writes gen tokens after it, greedy for
    even windows and at temperature 0.7 (seeded) for odd ones."""
    per_run = []
    n_embd = k = n_moe = None
    t0 = time.time()
    for i, text in enumerate(texts):
        wpath = os.path.join(tmp, "w.txt")
        hpath = os.path.join(tmp, "h.bin")
        with open(wpath, "w", encoding="utf-8") as f:
            f.write(text)
        temp = "0" if gen == 1 or i % 2 == 0 else "0.7"
        r = subprocess.run([mp, "run", "-m", model, "-f", wpath, "-n", str(gen), "--temp", temp, "--seed", str(i),
                            "-t", str(threads), "--hidden-out", hpath],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"train_predictor: {mp} failed on a {label} window: {r.stderr.strip().splitlines()[-1:]}")
        n_embd, k, n_moe, body = read_hidden(hpath)
        per_run.append(body)
        if (i + 1) % 50 == 0:
            print(f"  {label}: {i + 1}/{len(texts)} windows, {time.time() - t0:.0f} s", flush=True)
    return n_embd, k, n_moe, per_run


def pairs(per_run, k, src, dst, ahead, n_expert=0, prev_h=False):
    """(inputs, picks) for a net: h at (src, p), picks at (dst, p + ahead); with
    n_expert > 0 the inputs also hold n_expert flags of the picks at (dst, p + ahead - 1)
    (the net's prev_picks input), after h, which rms_norm leaves alone; with prev_h, the
    residual at (dst, p + ahead - 1), already divided by its rms (the net's prev_h input)."""
    xs, ys = [], []
    for body in per_run:
        layer = body[:, 0].astype(np.int64)
        pos = body[:, 1].astype(np.int64)
        picks = body[:, 2:2 + k].astype(np.int64)
        h = body[:, 2 + k:].view("<f4")
        at = {(int(l), int(p)): i for i, (l, p) in enumerate(zip(layer, pos))}
        for (l, p), i in at.items():
            if l != src or p == 0:  # position 0 is BOS, the same for every window
                continue
            j = at.get((dst, p + ahead))
            jp = at.get((dst, p + ahead - 1))
            if j is None or ((n_expert or prev_h) and jp is None):
                continue
            if prev_h:
                g = h[jp].astype(np.float32)
                xs.append(np.concatenate([h[i], g / np.sqrt((g * g).mean() + 1e-5)]))
            elif n_expert:
                flags = np.zeros(n_expert, dtype=np.float32)
                flags[picks[jp]] = 1.0
                xs.append(np.concatenate([h[i], flags]))
            else:
                xs.append(h[i])
            ys.append(picks[j])
    return np.array(xs, dtype=np.float32), np.array(ys, dtype=np.int64)


def rms_norm(x, n_embd=None):
    """h / rms(h) over the first n_embd columns (all by default); the rest as they are."""
    h = x[:, :n_embd]
    return np.concatenate([h / np.sqrt((h * h).mean(-1, keepdims=True) + 1e-5), x[:, h.shape[1]:]], 1)


def accuracy(logits, picks, k):
    top = np.argsort(-logits, 1)[:, :k]
    whole = (np.sort(top, 1) == np.sort(picks, 1)).all(1)
    p = torch.softmax(torch.tensor(logits), 1).numpy()
    mass = np.sort(p, 1)[:, -k:].sum(1)
    sure = mass >= np.median(mass)
    return whole.mean(), whole[sure].mean()


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kv, tensors):
    """A GGUF v3 file: kv is a list of (key, type, value) with type 'u32',
    'str' or 'i32[]'; tensors a list of (name, f32 array in ggml ne order,
    i.e. a torch [out, in] weight as it is)."""
    align = 32
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv) + 1))
    kv = [("general.alignment", "u32", align)] + kv
    for key, typ, val in kv:
        out += gguf_string(key)
        if typ == "u32":
            out += struct.pack("<II", 4, val)
        elif typ == "str":
            out += struct.pack("<I", 8) + gguf_string(val)
        elif typ == "i32[]":
            out += struct.pack("<IIQ", 9, 5, len(val)) + struct.pack(f"<{len(val)}i", *val)
        else:
            raise ValueError(typ)
    offset = 0
    blobs = []
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        ne = list(reversed(arr.shape))  # ggml: ne0 is the fastest dimension
        out += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", 0, offset)  # type F32
        blobs.append(arr.tobytes())
        offset += (arr.nbytes + align - 1) // align * align
    out += b"\0" * ((-len(out)) % align)
    for b in blobs:
        out += b + b"\0" * ((-len(b)) % align)
    with open(path, "wb") as f:
        f.write(out)


def collect_all(a, train_buf, held_buf, rng):
    """The engine's records: n_embd, k, n_moe, training runs, held-out runs."""
    with tempfile.TemporaryDirectory() as tmp:
        n_embd, k, n_moe, tr = collect(a.moepager, a.model, windows(train_buf, a.windows, a.window_bytes, rng),
                                       a.threads, tmp, "train")
        _, _, _, he = collect(a.moepager, a.model, windows(held_buf, a.held_windows, a.window_bytes, rng),
                              a.threads, tmp, "held-out")
        if a.gen_windows > 0:
            tr += collect(a.moepager, a.model, windows(train_buf, a.gen_windows, a.gen_prompt_bytes, rng),
                          a.threads, tmp, "train, generated", a.gen_tokens)[3]
            he += collect(a.moepager, a.model,
                          windows(held_buf, max(1, a.gen_windows * a.held_windows // max(1, a.windows)),
                                  a.gen_prompt_bytes, rng), a.threads, tmp, "held-out, generated", a.gen_tokens)[3]
    return n_embd, k, n_moe, tr, he


def save_records(path, n_embd, k, n_moe, tr, he):
    arrs = {f"tr{i}": b for i, b in enumerate(tr)}
    arrs.update({f"he{i}": b for i, b in enumerate(he)})
    np.savez(path, shape=np.array([n_embd, k, n_moe, len(tr), len(he)]), **arrs)


def load_records(path):
    z = np.load(path)
    n_embd, k, n_moe, ntr, nhe = (int(v) for v in z["shape"])
    return n_embd, k, n_moe, [z[f"tr{i}"] for i in range(ntr)], [z[f"he{i}"] for i in range(nhe)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--moepager", default=os.path.join(HERE, "..", "build", "moepager"))
    ap.add_argument("--windows", type=int, default=400, help="training windows (default 400)")
    ap.add_argument("--held-windows", type=int, default=100)
    ap.add_argument("--window-bytes", type=int, default=128)
    ap.add_argument("--gen-windows", type=int, default=300,
                    help="also train on text the model writes after this many prompts (default 300; 0: none)")
    ap.add_argument("--gen-tokens", type=int, default=128, help="tokens written after each prompt (default 128)")
    ap.add_argument("--gen-prompt-bytes", type=int, default=48)
    ap.add_argument("--hidden", type=int, default=128, help="hidden units, a multiple of 16 (default 128)")
    ap.add_argument("--prev-picks", type=int, default=0, choices=(0, 1),
                    help="1: each net also sees the picks its layer made last (the token before); 0 (default): h only")
    ap.add_argument("--prev-h", type=int, default=0, choices=(0, 1),
                    help="1: each net also sees the residual its predicted layer had on the token before "
                         "(kept by the engine from the last token): it knows the context at that layer "
                         "(layer 0 -> 1 on held-out text: 86.0%% of whole sets right against 71.0%%); 0: h only")
    ap.add_argument("--distance", type=int, default=2,
                    help="nets for the layers up to D ahead (default 2: L -> L+1 and L -> L+2, so that "
                         "lookahead 2, moepager's default, queues reads a layer earlier; 1: L -> L+1 only)")
    ap.add_argument("--records", help="keep the engine's hidden-state records in this file (numpy .npz) and "
                                      "reuse them when it exists, to train variants without rerunning the engine")
    ap.add_argument("--epochs", type=int, default=40, help="passes over the training tokens (default 40)")
    ap.add_argument("--batch", type=int, default=2048, help="tokens per step (default 2048)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    a = ap.parse_args()
    if a.hidden < 16 or a.hidden % 16:
        sys.exit("train_predictor: --hidden must be a positive multiple of 16")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    train_buf, held_buf = stdlib_split(a.seed, a.heldout_frac)
    if a.prev_h and a.prev_picks:
        sys.exit("train_predictor: --prev-h and --prev-picks cannot be combined")
    if a.distance < 1:
        sys.exit("train_predictor: --distance must be at least 1")
    if a.records and os.path.exists(a.records):
        n_embd, k, n_moe, tr, he = load_records(a.records)
        print(f"read {len(tr)} training and {len(he)} held-out runs from {a.records}", flush=True)
    else:
        n_embd, k, n_moe, tr, he = collect_all(a, train_buf, held_buf, rng)
        if a.records:
            save_records(a.records, n_embd, k, n_moe, tr, he)
    n_expert = expert_count(a.moepager, a.model)
    # L -> L+d for d = 1..D, past the last MoE layer the next token's layers (the engine
    # reaches those only before L itself: d < n_moe)
    nets = [(l, l + d, 0) if l + d < n_moe else (l, l + d - n_moe, 1)
            for d in range(1, min(a.distance, n_moe - 1) + 1) for l in range(n_moe)]
    tensors, src, dst, ahead = [], [], [], []
    for i, (s, d, ah) in enumerate(nets):
        xtr, ytr = pairs(tr, k, s, d, ah, n_expert if a.prev_picks else 0, bool(a.prev_h))
        xte, yte = pairs(he, k, s, d, ah, n_expert if a.prev_picks else 0, bool(a.prev_h))
        if len(ytr) == 0 or len(yte) == 0:
            sys.exit(f"train_predictor: no tokens for MoE layer {s} -> {d}")
        if a.prev_picks or a.prev_h:  # the engine knows neither in a prompt: a tenth of the tokens train without
            xtr[np.random.default_rng(a.seed + i).random(len(xtr)) < 0.1, n_embd:] = 0.0
        x = torch.tensor(rms_norm(xtr, n_embd))
        target = torch.zeros(len(ytr), n_expert)
        target[torch.arange(len(ytr)).unsqueeze(1), torch.tensor(ytr)] = 1.0 / k
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], a.hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(a.hidden, n_expert))
        opt = torch.optim.Adam(net.parameters(), lr=a.lr, weight_decay=1e-4)
        t0 = time.time()
        for _ in range(a.epochs):
            for idx in torch.randperm(len(x)).split(a.batch):
                opt.zero_grad()
                loss = -(target[idx] * torch.log_softmax(net(x[idx]), 1)).sum(1).mean()
                loss.backward()
                opt.step()
        with torch.no_grad():
            lte = net(torch.tensor(rms_norm(xte, n_embd))).numpy()
        whole, sure = accuracy(lte, yte, k)
        print(f"net {i}: MoE layer {s} -> {d}{' of the next token' if ah else ''}: {len(ytr)} train / {len(yte)} "
              f"held-out tokens, held-out whole set right {100 * whole:.1f}% (the surer half {100 * sure:.1f}%), "
              f"loss {loss.item():.3f}, {time.time() - t0:.0f} s", flush=True)
        tensors += [(f"net.{i}.fc1.weight", net[0].weight.detach().numpy()),
                    (f"net.{i}.fc1.bias", net[0].bias.detach().numpy()),
                    (f"net.{i}.fc2.weight", net[2].weight.detach().numpy()),
                    (f"net.{i}.fc2.bias", net[2].bias.detach().numpy())]
        src.append(s)
        dst.append(d)
        ahead.append(ah)
    kv = [("general.architecture", "str", "moepager-predictor"),
          ("general.name", "str", os.path.basename(a.model) + " routing predictor"),
          ("predictor.n_embd", "u32", n_embd), ("predictor.n_expert", "u32", n_expert),
          ("predictor.n_expert_used", "u32", k),
          ("predictor.src", "i32[]", src), ("predictor.dst", "i32[]", dst), ("predictor.ahead", "i32[]", ahead)]
    if a.prev_h:
        kv.append(("predictor.prev_h", "u32", 1))
    write_gguf(a.out, kv, tensors)
    print(f"wrote {a.out}: {len(src)} nets of {a.hidden} hidden units", flush=True)


def expert_count(mp, model):
    """The model's experts per layer, from `moepager inspect`."""
    r = subprocess.run([mp, "inspect", "-m", model], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("experts:"):
            return int(line.split()[1])
    sys.exit(f"train_predictor: {model}: no expert count in `moepager inspect`")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Train moepager's demo model: a small Mixtral-style MoE on Python's stdlib.

CPU only, Debian's python3-torch (apt-get install python3-torch; run with
/usr/bin/python3). The text is the Python standard library's source that every
Debian machine has (/usr/lib/python3.N/**/*.py, without test directories and
site-/dist-packages), split by file into train and held-out with a seeded
shuffle of the sorted file list.

Tokens are bytes: ids 0..255 are the bytes themselves, 256 is BOS, 257 EOS
(the GGUF tokenizer is GPT-2 byte-level BPE with no merges, so llama.cpp and
moepager map every byte of valid UTF-8 to one token: see docs/demo-model.md).
Each training sequence is [BOS] + ctx bytes starting at a random line start,
which is what `moepager run -p "def f(...):"` feeds the model.

The model is llama.cpp's `llama` architecture with experts (Mixtral): RMSNorm,
attention with RoPE on adjacent pairs (ggml's NORM mode, so no q/k permute is
needed on export), softmax router -> top-k -> renormalised weights, SwiGLU
experts. Parameters are stored in GGUF order (torch [out, in] row-major is
ggml's ne = {in, out}), so export writes them as they are.

Output (--out DIR): weights.bin (every tensor as little-endian f32, in the
order of the manifest), manifest.json and manifest.txt (hyperparameters, tensor
names, shapes in ggml ne order, byte offsets; the .txt is what tools/mp-import
reads), train_log.tsv, heldout_files.txt, and run.json (steps, losses, bits per
byte, wall and CPU time).

The demo model (docs/demo-model.md):
  nice -n 10 /usr/bin/python3 tools/train_demo.py --out DIR --batch 32 --lr 4e-3 --max-minutes 32
  (stopped after 1669 steps; `--steps 1669` instead reproduces it), then
  build/mp-import --weights DIR --type q8_0 -o models/demo-stdlib-moe.gguf
"""
import argparse
import glob
import json
import math
import os
import random
import resource
import sys
import time

# Debian's torch calls the system BLAS (install libopenblas0-pthread: the
# reference BLAS is ~10x slower). One BLAS thread and one torch thread: on a
# loaded 2-core machine two threads (OpenMP or OpenBLAS) spin at every barrier
# while the other is descheduled, measured 7-15x slower per step than one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BOS, EOS, N_VOCAB = 256, 257, 258


def corpus_files(root):
    """Sorted stdlib .py files under root, test directories left out."""
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, root)
        if any(part in skip for part in rel.split(os.sep)[:-1]):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
            data.decode("utf-8")  # byte-level tokens are lossless only on valid UTF-8
        except (OSError, UnicodeDecodeError):
            continue
        if data:
            out.append((rel, data))
    return out


def find_stdlib():
    for d in sorted(glob.glob("/usr/lib/python3.*"), reverse=True):
        if os.path.isfile(os.path.join(d, "os.py")):
            return d
    sys.exit("train_demo: no Python standard library found under /usr/lib/python3.*")


class Config:
    def __init__(self, a):
        self.n_layer, self.n_embd, self.n_head = a.n_layer, a.n_embd, a.n_head
        self.n_expert, self.n_expert_used, self.n_ff = a.n_expert, a.n_expert_used, a.n_ff
        self.ctx, self.rope_base, self.eps = a.ctx, 10000.0, 1e-5
        self.head_dim = a.n_embd // a.n_head


class MoE(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, D, H, X = c.n_embd, c.head_dim, c.n_ff, c.n_expert

        def lin(o, i, scale=1.0):
            return torch.nn.Parameter(torch.randn(o, i) * (scale / math.sqrt(i)))

        self.tok_embd = torch.nn.Parameter(torch.randn(N_VOCAB, E) * 0.5)
        self.layers = torch.nn.ModuleList()
        resid = 1.0 / math.sqrt(2 * c.n_layer)
        for _ in range(c.n_layer):
            L = torch.nn.Module()
            L.attn_norm = torch.nn.Parameter(torch.ones(E))
            L.wq, L.wk, L.wv = lin(E, E), lin(E, E), lin(E, E)
            L.wo = lin(E, E, resid)
            L.ffn_norm = torch.nn.Parameter(torch.ones(E))
            L.gate_inp = lin(X, E, 0.1)
            L.gate_exps = torch.nn.Parameter(torch.randn(X, H, E) / math.sqrt(E))
            L.up_exps = torch.nn.Parameter(torch.randn(X, H, E) / math.sqrt(E))
            L.down_exps = torch.nn.Parameter(torch.randn(X, E, H) * (resid / math.sqrt(H)))
            self.layers.append(L)
        self.output_norm = torch.nn.Parameter(torch.ones(E))
        self.output = lin(N_VOCAB, E)
        # RoPE on adjacent pairs (x[2j], x[2j+1]), theta_j = pos * base^(-2j/D).
        inv = c.rope_base ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)
        ang = torch.arange(c.ctx + 1, dtype=torch.float32)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos(), persistent=False)  # [T, D/2]
        self.register_buffer("sin", ang.sin(), persistent=False)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c.eps) * w

    def rope(self, x):  # x [B, nh, T, D]
        T = x.shape[2]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        cos, sin = self.cos[:T], self.sin[:T]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def moe(self, L, x):
        """x [N, E] -> ([N, E], load-balancing loss). Softmax over all experts,
        keep the top k, renormalise: llama.cpp's build_moe_ffn with norm_w."""
        c = self.c
        logits = x @ L.gate_inp.t()  # [N, X]
        probs = logits.softmax(-1)
        w, idx = probs.topk(c.n_expert_used, dim=-1)  # [N, k]
        w = w / w.sum(-1, keepdim=True)
        flat_idx = idx.reshape(-1)  # [N*k]
        flat_w = w.reshape(-1)
        # Sort the N*k (token, expert) pairs by expert: one gather, one
        # contiguous slice per expert, one scatter-add back.
        order = flat_idx.argsort(stable=True)
        tok = order.div(c.n_expert_used, rounding_mode="floor")
        counts = torch.bincount(flat_idx, minlength=c.n_expert).tolist()
        xs = x[tok]  # [N*k, E]
        outs = []
        o = 0
        for e, n in enumerate(counts):
            if n:
                xe = xs[o:o + n]
                h = F.silu(F.linear(xe, L.gate_exps[e])) * F.linear(xe, L.up_exps[e])
                outs.append(F.linear(h, L.down_exps[e]))
            o += n
        ys = torch.cat(outs) * flat_w[order, None]
        out = torch.zeros_like(x).index_add_(0, tok, ys)
        # Switch-style balance: fraction routed x mean probability, per expert.
        frac = torch.zeros(c.n_expert, device=x.device).index_add_(
            0, flat_idx, torch.ones_like(flat_w)) / flat_idx.numel()
        aux = c.n_expert * (frac * probs.mean(0)).sum()
        return out, aux

    def forward(self, ids):
        c = self.c
        B, T = ids.shape
        x = self.tok_embd[ids]
        aux = 0.0
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for L in self.layers:
            h = self.rms(x, L.attn_norm)
            q = (h @ L.wq.t()).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
            k = (h @ L.wk.t()).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
            v = (h @ L.wv.t()).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
            q, k = self.rope(q), self.rope(k)
            att = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(c.head_dim)).masked_fill_(mask, float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + y @ L.wo.t()
            h = self.rms(x, L.ffn_norm)
            m, a = self.moe(L, h.reshape(B * T, -1))
            x = x + m.view(B, T, -1)
            aux = aux + a
        x = self.rms(x, self.output_norm)
        return x @ self.output.t(), aux / c.n_layer

    def gguf_tensors(self):
        """(name, tensor) in GGUF order; torch shape reversed is ggml's ne."""
        out = [("token_embd.weight", self.tok_embd)]
        for i, L in enumerate(self.layers):
            p = f"blk.{i}."
            out += [(p + "attn_norm.weight", L.attn_norm), (p + "attn_q.weight", L.wq),
                    (p + "attn_k.weight", L.wk), (p + "attn_v.weight", L.wv),
                    (p + "attn_output.weight", L.wo), (p + "ffn_norm.weight", L.ffn_norm),
                    (p + "ffn_gate_inp.weight", L.gate_inp),
                    (p + "ffn_gate_exps.weight", L.gate_exps),
                    (p + "ffn_down_exps.weight", L.down_exps),
                    (p + "ffn_up_exps.weight", L.up_exps)]
        out += [("output_norm.weight", self.output_norm), ("output.weight", self.output)]
        return out


def line_starts(buf):
    """Offsets just after each newline (and 0): where training windows begin."""
    t = torch.frombuffer(bytearray(buf), dtype=torch.uint8)
    nl = (t == 10).nonzero(as_tuple=True)[0] + 1
    return torch.cat((torch.zeros(1, dtype=torch.long), nl.long())), t.long()


def eval_only(a, model, held_buf):
    """Held-out bits per byte of a finished run's exported weights: every
    consecutive ctx-byte window of the held-out text (BOS first), and with
    --gguf the same for 64 windows spread over it, torch f32 against the
    quantised file run by moepager (`logits --all`)."""
    import subprocess
    import tempfile
    with open(os.path.join(a.eval_only, "manifest.json")) as f:
        man = json.load(f)
    with open(os.path.join(a.eval_only, "weights.bin"), "rb") as f:
        raw = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    with torch.no_grad():
        for (name, p), t in zip(model.gguf_tensors(), man["tensors"]):
            if name != t["name"] or list(reversed(p.shape)) != t["ne"]:
                sys.exit(f"train_demo: {a.eval_only}: tensor {t['name']} {t['ne']} does not fit {name}")
            o = t["offset"] // 4
            p.copy_(raw[o:o + p.numel()].view(p.shape))
    model.eval()
    t = torch.frombuffer(bytearray(held_buf), dtype=torch.uint8).long()
    nw = len(t) // a.ctx
    ev = torch.cat((torch.full((nw, 1), BOS, dtype=torch.long), t[:nw * a.ctx].view(nw, a.ctx)), 1)
    tot = 0.0
    with torch.no_grad():
        for i in range(0, nw, 64):
            b = ev[i:i + 64]
            logits, _ = model(b[:, :-1])
            tot += F.cross_entropy(logits.reshape(-1, N_VOCAB), b[:, 1:].reshape(-1), reduction="sum").item()
    print(f"held-out, all {nw} windows of {a.ctx} bytes ({nw * a.ctx} bytes): "
          f"{tot / (nw * a.ctx) / math.log(2):.4f} bits/byte (torch, f32)", flush=True)
    if not a.gguf:
        return
    tt = tg = 0.0
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        out = os.path.join(tmp, "l.f32")
        for w in range(64):
            b = ev[w * nw // 64][None, :]
            logits, _ = model(b[:, :-1])
            tt += F.cross_entropy(logits[0], b[0, 1:], reduction="sum").item()
            ids = ",".join(str(int(x)) for x in b[0, :-1])
            subprocess.run([a.moepager, "logits", "-m", a.gguf, "--ids", ids, "--all", "-o", out, "-t", "1",
                            "--mmap"], check=True, capture_output=True)
            g = torch.frombuffer(bytearray(open(out, "rb").read()), dtype=torch.float32).view(-1, N_VOCAB)
            tg += F.cross_entropy(g, b[0, 1:], reduction="sum").item()
    n = 64 * a.ctx
    print(f"held-out, 64 spread windows ({n} bytes): torch f32 {tt / n / math.log(2):.4f} bits/byte, "
          f"{os.path.basename(a.gguf)} through moepager {tg / n / math.log(2):.4f} bits/byte", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stdlib", default=None)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--ema", type=float, default=0.99, help="weight averaging decay")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop after this much training time")
    ap.add_argument("--aux", type=float, default=0.01, help="load-balancing loss weight")
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-expert", type=int, default=8)
    ap.add_argument("--n-expert-used", type=int, default=2)
    ap.add_argument("--n-ff", type=int, default=256, help="expert FFN width")
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    ap.add_argument("--eval-windows", type=int, default=512)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--time-steps", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--eval-only", metavar="DIR", help="evaluate DIR/weights.bin (a finished run of the same "
                    "seed and shape) on every held-out window, and with --gguf also the GGUF through moepager")
    ap.add_argument("--gguf", help="with --eval-only: this model file, run by --moepager on 64 spread windows")
    ap.add_argument("--moepager", default="build/moepager")
    a = ap.parse_args()

    t_start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.out, exist_ok=True)

    root = a.stdlib or find_stdlib()
    files = corpus_files(root)
    order = list(range(len(files)))
    random.Random(a.seed).shuffle(order)
    n_held = max(1, int(round(len(files) * a.heldout_frac)))
    held = sorted(order[:n_held])
    held_set = set(held)
    train_buf = b"".join(files[i][1] for i in range(len(files)) if i not in held_set)
    held_buf = b"".join(files[i][1] for i in held)
    print(f"corpus {root}: {len(files)} files, train {len(files) - n_held} files {len(train_buf)} bytes, "
          f"held-out {n_held} files {len(held_buf)} bytes", flush=True)
    with open(os.path.join(a.out, "heldout_files.txt"), "w") as f:
        f.write("".join(files[i][0] + "\n" for i in held))

    starts, train = line_starts(train_buf)
    starts = starts[starts <= len(train) - a.ctx]
    # Held-out windows: consecutive ctx-byte chunks from the start of the held-out text.
    _, held_t = line_starts(held_buf)
    n_eval = min(a.eval_windows, len(held_t) // a.ctx)
    ev = held_t[: n_eval * a.ctx].view(n_eval, a.ctx)
    ev = torch.cat((torch.full((n_eval, 1), BOS, dtype=torch.long), ev), 1)

    c = Config(a)
    model = MoE(c)
    if a.eval_only:
        return eval_only(a, model, held_buf)
    n_params = sum(p.numel() for p in model.parameters())
    n_exp = sum(p.numel() for n, p in model.gguf_tensors() if "_exps" in n)
    print(f"model: {n_params} parameters, {n_exp} in experts ({100.0 * n_exp / n_params:.1f}%)", flush=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(a.seed)

    # The schedule does not depend on the run's length (linear warmup, then
    # inverse square root), and the exported weights are an exponential
    # moving average of the iterates: a run stopped by --max-minutes after N
    # steps is exactly the run `--steps N` gives, and is already "annealed".
    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        return a.lr * math.sqrt(a.warmup / (step + 1))

    ema_params = [p.detach().clone() for p in model.parameters()]

    def ema_update(step):
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema_params, model.parameters()):
                e.mul_(d).add_(p.detach(), alpha=1 - d)

    def swap_ema():
        with torch.no_grad():
            for e, p in zip(ema_params, model.parameters()):
                tmp = p.detach().clone()
                p.copy_(e)
                e.copy_(tmp)

    @torch.no_grad()
    def evaluate(n_win):
        model.eval()
        tot, n = 0.0, 0
        for i in range(0, n_win, 16):
            b = ev[i:i + 16]
            logits, _ = model(b[:, :-1])
            tot += F.cross_entropy(logits.reshape(-1, N_VOCAB), b[:, 1:].reshape(-1), reduction="sum").item()
            n += b[:, 1:].numel()
        model.train()
        return tot / n / math.log(2)

    log = open(os.path.join(a.out, "train_log.tsv"), "w")
    log.write("step\tseconds\tlr\ttrain_loss_nats\taux\theldout_bpb\n")
    steps = a.time_steps or a.steps
    t0 = time.time()
    ema = None
    bpb = float("nan")
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pick = starts[torch.randint(len(starts), (a.batch,), generator=gen)]
        seq = train[pick[:, None] + torch.arange(a.ctx)[None, :]]
        seq = torch.cat((torch.full((a.batch, 1), BOS, dtype=torch.long), seq), 1)
        logits, aux = model(seq[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, N_VOCAB), seq[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        (loss + a.aux * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(step)
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        out_of_time = a.max_minutes and time.time() - t0 > 60 * a.max_minutes
        last = step == steps - 1 or out_of_time
        if a.time_steps:
            print(f"step {step} {time.time() - t0:.1f}s loss {loss.item():.3f}", flush=True)
            continue
        if (step + 1) % a.eval_every == 0 or last:
            bpb = evaluate(min(n_eval, 128))
        if step % 10 == 0 or last or (step + 1) % a.eval_every == 0:
            hb = f"{bpb:.4f}" if (step + 1) % a.eval_every == 0 or last else ""
            log.write(f"{step}\t{time.time() - t0:.1f}\t{lr_at(step):.2e}\t{loss.item():.4f}\t{float(aux):.4f}\t{hb}\n")
            log.flush()
            if step % 50 == 0 or hb:
                print(f"step {step} {time.time() - t0:.0f}s loss {loss.item():.3f} (ema {ema:.3f}, "
                      f"{ema / math.log(2):.3f} bits/byte) aux {float(aux):.3f} {('held-out ' + hb + ' bpb') if hb else ''}",
                      flush=True)
        if last:
            break
    steps_done = step + 1
    if a.time_steps:
        return
    train_s = time.time() - t0
    bpb_raw = evaluate(n_eval)
    swap_ema()  # the model now holds the averaged weights, which are exported
    bpb = evaluate(n_eval)
    print(f"trained {steps_done} steps in {train_s:.0f}s; held-out {n_eval * a.ctx} bytes: "
          f"{bpb_raw:.4f} bits/byte (last iterate), {bpb:.4f} (EMA, exported)", flush=True)

    # Export: every tensor f32 little-endian, GGUF order, ggml ne = reversed torch shape.
    man = {"arch": "llama", "n_vocab": N_VOCAB, "bos": BOS, "eos": EOS, "n_layer": c.n_layer,
           "n_embd": c.n_embd, "n_head": c.n_head, "n_head_kv": c.n_head, "n_expert": c.n_expert,
           "n_expert_used": c.n_expert_used, "n_ff": c.n_ff, "n_ctx": 4096, "rope_base": c.rope_base,
           "eps": c.eps, "tensors": []}
    off = 0
    with open(os.path.join(a.out, "weights.bin"), "wb") as f:
        for name, p in model.gguf_tensors():
            t = p.detach().float().contiguous()
            b = t.numpy().astype("<f4").tobytes()
            f.write(b)
            man["tensors"].append({"name": name, "ne": list(reversed(t.shape)), "offset": off})
            off += len(b)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    # Plain-text manifest for the C importer: header keys, then one tensor a line.
    with open(os.path.join(a.out, "manifest.txt"), "w") as f:
        for k in ("n_vocab", "bos", "eos", "n_layer", "n_embd", "n_head", "n_head_kv", "n_expert",
                  "n_expert_used", "n_ff", "n_ctx"):
            f.write(f"{k} {man[k]}\n")
        f.write(f"rope_base {c.rope_base!r}\neps {c.eps!r}\n")
        for t in man["tensors"]:
            f.write(f"tensor {t['name']} {t['offset']} {len(t['ne'])} {' '.join(map(str, t['ne']))}\n")
    run = {"seed": a.seed, "steps": steps_done, "steps_requested": a.steps,
           "stopped_by_time": bool(steps_done < a.steps), "max_minutes": a.max_minutes, "warmup": a.warmup,
           "ema": a.ema, "aux": a.aux, "batch": a.batch, "ctx": a.ctx, "lr": a.lr, "threads": a.threads,
           "n_params": n_params, "n_expert_params": n_exp, "train_bytes": len(train_buf),
           "heldout_bytes": len(held_buf), "heldout_files": n_held, "eval_bytes": n_eval * a.ctx,
           "heldout_bpb": bpb, "heldout_bpb_last_iterate": bpb_raw, "final_train_loss_ema_nats": ema, "train_seconds": train_s,
           "total_seconds": time.time() - t_start,
           "cpu_seconds": (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)), "torch": torch.__version__, "stdlib": root,
           "argv": sys.argv}
    with open(os.path.join(a.out, "run.json"), "w") as f:
        json.dump(run, f, indent=1)
    print(json.dumps(run), flush=True)


if __name__ == "__main__":
    main()

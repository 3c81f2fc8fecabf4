#!/usr/bin/python3
"""How well a routing trace (docs/TRACE_FORMAT.md) predicts itself without
hidden states: each (token, MoE layer)'s experts guessed, online (counts from
the trace so far only, the sequences in order), from

  - affinity d: the experts the same token took d layers earlier (the guess
    for f: sum over those e of n(e at L-d, f at L) / sum of n(e at L-d));
  - the previous token: the experts the previous token of the sequence took
    at the same layer (what a cache keeps);
  - popularity: the layer's most used experts so far.

Prints, for each guess, how often its i-th ranked expert is among the k the
token used (i = 1..k) and how often its top k are exactly the k used (the
whole set: a layer's read time is saved only when all of its misses were
read early). Guesses with no evidence yet are left out of that guess's rows.
  /usr/bin/python3 bench/routing_affinity.py TRACE.jsonl [MAX_D]   (default 3)"""
import collections
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    max_d = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tokens = collections.defaultdict(dict)  # (sequence, token) -> layer -> experts
    for n, line in enumerate(open(sys.argv[1]), 1):
        try:
            r = json.loads(line)
            tokens[(r["problem_id"], r["token_idx"])][r["layer"]] = r["experts"]
        except (ValueError, KeyError, TypeError) as e:
            sys.exit(f"{sys.argv[1]}:{n}: not a routing record ({e!r})")
    if not tokens:
        sys.exit(f"{sys.argv[1]}: no routing records")
    layers = sorted({layer for t in tokens.values() for layer in t})
    k = len(next(iter(next(iter(tokens.values())).values())))
    n_expert = 1 + max(e for t in tokens.values() for s in t.values() for e in s)

    pair = collections.defaultdict(collections.Counter)  # (L-d, L, e) -> Counter of f
    seen = collections.Counter()                         # (L-d, L, e) -> tokens
    pop = collections.defaultdict(collections.Counter)   # L -> Counter of e
    rank_hits = collections.defaultdict(lambda: [0] * k)
    whole = collections.Counter()
    events = collections.Counter()

    def score(name, ranked, used):
        events[name] += 1
        for i, e in enumerate(ranked[:k]):
            rank_hits[name][i] += e in used
        whole[name] += set(ranked[:k]) == used

    prev_seq, prev = None, {}
    for seq, tok in sorted(tokens):
        t = tokens[(seq, tok)]
        if seq != prev_seq:
            prev_seq, prev = seq, {}
        for layer in layers:
            if layer not in t:
                continue
            used = set(t[layer])
            for d in range(1, max_d + 1):
                src = layer - d
                if src not in t:
                    continue
                s = collections.Counter()
                den = 0
                for e in t[src]:
                    s.update(pair[(src, layer, e)])
                    den += seen[(src, layer, e)]
                if den:
                    score(f"affinity d={d}", [f for f, _ in s.most_common()], used)
                for e in t[src]:  # then learn from this token (no other guess reads these counts)
                    pair[(src, layer, e)].update(used)
                    seen[(src, layer, e)] += 1
            if layer in prev:
                score("previous token", list(prev[layer]), used)
            if pop[layer]:
                score("popularity", [e for e, _ in pop[layer].most_common()], used)
            pop[layer].update(used)
        prev = t

    print(f"{sys.argv[1]}: {len(tokens)} tokens, {len(layers)} MoE layers, {n_expert} experts, k {k}")
    print("| guess | events | " + " | ".join(f"rank {i + 1}" for i in range(k)) + " | whole set |")
    print("|---|--:|" + "--:|" * (k + 1))
    names = [f"affinity d={d}" for d in range(1, max_d + 1)] + ["previous token", "popularity"]
    for name in names:
        n = events[name]
        if not n:
            continue
        cells = " | ".join(f"{100 * h / n:.1f}%" for h in rank_hits[name])
        print(f"| {name} | {n} | {cells} | {100 * whole[name] / n:.1f}% |")


if __name__ == "__main__":
    main()

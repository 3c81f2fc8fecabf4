#!/usr/bin/python3
"""Upper bounds for a per-layer expert cache of C slots on a routing trace
(docs/TRACE_FORMAT.md): once a token's k experts are loaded, a cache of C holds
them and C - k others, so any policy (no bypass, no prefetch) hits
|S(t+1) & S(t)| plus what its C - k extras catch. Here the extras are chosen
freely (even experts never loaded) by a frequency known in advance: the
whole sequence's counts (future included), or the whole trace's. No
frequency-ranked policy can beat these.
A sequence's first token is counted as all hits (the best any cache could
do with what the sequence before left), so the bounds hold for every access
the replay counts.
With --bypass, a cache that may also read a needed expert without keeping it
(a policy with admission control; the engine would need room for the bypassed
reads outside the cache): Belady's optimum with bypass, a fixed set of the C
experts the sequence uses most (known in advance), and an online admission
rule (keep a missed expert only if its count in the sequence so far, decayed
by 0.97 a token, plus 10 x its layer's trace-wide rate so far, beats the
coldest kept one's), and an online transition rule (keep the C experts, of those
kept and those needed now, most likely to be needed by the next token: the
layer's transition counts so far from each expert needed now to each expert
the token after needed, averaged over the k needed now and smoothed towards the
layer's rate, plus 0.05 x the decayed count and the layer's rate), all counting
every access, the cache carried from one sequence to the next. Bypassed reads
need a buffer outside the C slots, so compare with a C + 1 cache without bypass.
  /usr/bin/python3 bench/cache_bounds.py [--bypass] TRACE.jsonl [C ...]   (C >= k; default 8 16)"""
import collections
import json
import sys


def bypass_bounds(seqs, k, n_expert, caps):
    layers = sorted({layer for _, layer in seqs})
    probs = sorted({p for p, _ in seqs})
    for c in caps:
        out = []
        for name in ("Belady with bypass", "the sequence's top C (known in advance)", "online admission",
                     "online transition"):
            hits = total = 0
            for layer in layers:
                cache, seen, n_tok = set(), collections.Counter(), 0
                trans, n_from = collections.defaultdict(collections.Counter), collections.Counter()
                for p in probs:
                    d = seqs.get((p, layer), {})
                    ts = sorted(d)
                    seq_count = collections.Counter(e for s in d.values() for e in s)
                    top = set(sorted(range(n_expert), key=lambda e: -seq_count[e])[:c])
                    recent = collections.Counter()
                    prev = None
                    for i, t in enumerate(ts):
                        need = d[t]
                        hits += sum(e in cache for e in need)
                        total += len(need)
                        if name.startswith("Belady"):
                            nxt = {}
                            for j in range(len(ts) - 1, i, -1):
                                for e in d[ts[j]]:
                                    nxt[e] = j
                            cache = set(sorted(cache | set(need), key=lambda e: nxt.get(e, 1 << 30))[:c])
                        elif name.startswith("the sequence"):
                            cache = top
                        elif name == "online transition":
                            if prev is not None:
                                for a in prev:
                                    n_from[a] += 1
                                    trans[a].update(need)
                            for e in list(recent):
                                recent[e] *= 0.97
                            for e in need:
                                recent[e] += 1
                            n_tok += 1
                            rate = lambda e: (seen[e] + need.count(e)) / n_tok
                            nxt = lambda b: sum((trans[a][b] + rate(b)) / (n_from[a] + 1) for a in need) / len(need)
                            score = lambda e: nxt(e) + 0.05 * recent[e] + rate(e)
                            cache = set(sorted(cache | set(need), key=lambda e: (-score(e), e))[:c])
                            prev = need
                        else:
                            for e in list(recent):
                                recent[e] *= 0.97
                            for e in need:
                                recent[e] += 1
                            n_tok += 1
                            score = lambda e: recent[e] + 10.0 * seen[e] / n_tok
                            for e in need:
                                if e in cache:
                                    continue
                                if len(cache) < c:
                                    cache.add(e)
                                    continue
                                v = min(cache, key=score)
                                if score(e) >= score(v):
                                    cache.discard(v)
                                    cache.add(e)
                        for e in need:
                            seen[e] += 1
            out.append(f"{name} {100 * hits / total:.2f}%")
        print(f"C {c}, bypass: " + ", ".join(out))


def main():
    args = sys.argv[1:]
    bypass = "--bypass" in args
    args = [a for a in args if a != "--bypass"]
    if not args:
        sys.exit(__doc__)
    trace = args[0]
    caps = [int(c) for c in args[1:]] or [8, 16]
    seqs = collections.defaultdict(dict)
    for n, line in enumerate(open(trace), 1):
        try:
            r = json.loads(line)
            seqs[(r["problem_id"], r["layer"])][r["token_idx"]] = r["experts"]
        except (ValueError, KeyError, TypeError) as e:
            sys.exit(f"{trace}:{n}: not a routing record ({e!r})")
    if not seqs:
        sys.exit(f"{trace}: no routing records")
    k = len(next(iter(next(iter(seqs.values())).values())))
    n_expert = 1 + max(e for d in seqs.values() for s in d.values() for e in s)
    trace_count = collections.Counter((layer, e) for (p, layer), d in seqs.items() for s in d.values() for e in s)
    same = total = 0
    for d in seqs.values():
        ts = sorted(d)
        for a, b in zip(ts, ts[1:]):
            same += len(set(d[a]) & set(d[b]))
            total += k
    print(f"{trace}: k {k}, {n_expert} experts; the previous token's set alone: {100 * same / total:.2f}%")
    for c in caps:
        if c < k:
            print(f"C {c}: smaller than k, left out")
            continue
        for name in ("sequence", "trace"):
            hits = total = 0
            for (p, layer), d in seqs.items():
                hits += k  # the first token: all hits
                total += k
                seq_count = collections.Counter(e for s in d.values() for e in s)
                ts = sorted(d)
                for a, b in zip(ts, ts[1:]):
                    cur = set(d[a])
                    rest = [e for e in range(n_expert) if e not in cur]
                    rest.sort(key=lambda e: -(seq_count[e] if name == "sequence" else trace_count[(layer, e)]))
                    hits += len((cur | set(rest[:c - k])) & set(d[b]))
                    total += k
            print(f"C {c}: extras by the {name}'s frequency, known in advance: {100 * hits / total:.2f}%")
    if bypass:
        bypass_bounds(seqs, k, n_expert, caps)


if __name__ == "__main__":
    main()

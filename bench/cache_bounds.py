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
  /usr/bin/python3 bench/cache_bounds.py TRACE.jsonl [C ...]   (C >= k; default 8 16)"""
import collections
import json
import sys


def main():
    trace = sys.argv[1]
    caps = [int(c) for c in sys.argv[2:]] or [8, 16]
    seqs = collections.defaultdict(dict)
    for line in open(trace):
        r = json.loads(line)
        seqs[(r["problem_id"], r["layer"])][r["token_idx"]] = r["experts"]
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


if __name__ == "__main__":
    main()

"""Load for moepager serve (tests/test_serve_load.sh): W concurrent clients send
N requests in all to 127.0.0.1:PORT, a fixed random mix (seeded) of
  - streamed chat and completion requests (most),
  - non-streamed ones,
  - streams the client drops after the first event (the slot must free),
  - malformed JSON, wrong types, unknown models (must get 4xx + an error object),
  - bodies over --max-body (must get 413).
Every request must end within TIMEOUT seconds. Prints one summary line (JSON)
and exits 1 on any failure.
    python3 serve_load.py PORT N W MAX_BODY MODEL
"""
import http.client
import json
import random
import sys
import threading
import time

PORT, N, W, MAX_BODY, MODEL = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
TIMEOUT = 120
rng = random.Random(7)
PROMPTS = ["def main(", "import os", "class A:", "for i in range(", "# a comment", "x = [", "return None"]


def plan():
    jobs = []
    for i in range(N):
        r = rng.random()
        chat = rng.random() < 0.5
        body = {"max_tokens": rng.randint(1, 24), "temperature": rng.choice([0, 0.7, 1.0]), "seed": i}
        if chat:
            body["messages"] = [{"role": "user", "content": rng.choice(PROMPTS)}]
            if rng.random() < 0.3:  # a follow-up turn: shares a prefix with an earlier request
                body["messages"] += [{"role": "assistant", "content": "ok"},
                                     {"role": "user", "content": rng.choice(PROMPTS)}]
        else:
            body["prompt"] = rng.choice(PROMPTS)
        if rng.random() < 0.2:
            body["stop"] = ["\n"]
        path = "/v1/chat/completions" if chat else "/v1/completions"
        if r < 0.60:
            body["stream"] = True
            jobs.append(("stream", path, json.dumps(body).encode()))
        elif r < 0.75:
            jobs.append(("plain", path, json.dumps(body).encode()))
        elif r < 0.80:
            body["stream"] = True
            body["max_tokens"] = 400
            jobs.append(("drop", path, json.dumps(body).encode()))
        elif r < 0.87:
            bad = rng.choice([b'{"prompt": "x", ', b'{"prompt": 5}', b'[]', b'{"messages": [{"role": 1}]}',
                              b'\xff\xfe{}', b'{"prompt":"x","max_tokens":-1}', b'{"prompt":"x","stream":"yes"}'])
            jobs.append(("malformed", "/v1/completions" if b"prompt" in bad else "/v1/chat/completions", bad))
        elif r < 0.92:
            jobs.append(("unknown_model", path, json.dumps(dict(body, model="gpt-4")).encode()))
        else:
            jobs.append(("oversized", path, json.dumps({"prompt": "a" * (MAX_BODY + 10)}).encode()))
    return jobs


JOBS = plan()
lock = threading.Lock()
next_job = 0
stats = {"ok": 0, "fail": 0, "by_kind": {}, "tokens": 0, "max_s": 0.0}
failures = []


def record(kind, good, why=""):
    with lock:
        d = stats["by_kind"].setdefault(kind, [0, 0])
        d[0 if good else 1] += 1
        stats["ok" if good else "fail"] += 1
        if not good:
            failures.append(f"{kind}: {why}")


def one(kind, path, body):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    t0 = time.time()
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if kind in ("malformed", "unknown_model", "oversized"):
            data = r.read()
            want = {"malformed": 400, "unknown_model": 404, "oversized": 413}[kind]
            err = json.loads(data).get("error", {})
            record(kind, r.status == want and bool(err.get("message")), f"status {r.status} {data[:200]!r}")
        elif kind == "plain":
            data = json.loads(r.read())
            ch = data["choices"][0]
            good = r.status == 200 and ch["finish_reason"] in ("stop", "length") and data["usage"]["completion_tokens"] >= 0
            with lock:
                stats["tokens"] += data["usage"]["completion_tokens"]
            record(kind, good, f"status {r.status} {str(data)[:200]}")
        elif kind == "drop":
            line = r.readline()  # the first event, then hang up
            record(kind, r.status == 200 and line.startswith(b"data: "), f"status {r.status} {line[:100]!r}")
            c.sock.close()
        else:
            done, finish, n = False, None, 0
            for raw in r:
                line = raw.decode().rstrip("\n")
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                e = json.loads(line[6:])
                if "error" in e:
                    break
                for ch in e["choices"]:
                    finish = ch.get("finish_reason") or finish
                if e.get("usage"):
                    n = e["usage"]["completion_tokens"]
            with lock:
                stats["tokens"] += n
            record(kind, r.status == 200 and done and finish in ("stop", "length"), f"status {r.status} done {done} finish {finish}")
    except Exception as ex:  # a hang (timeout), a reset, a crash
        record(kind, False, f"{type(ex).__name__}: {ex}")
    finally:
        c.close()
        with lock:
            stats["max_s"] = max(stats["max_s"], time.time() - t0)


def worker():
    global next_job
    while True:
        with lock:
            if next_job >= len(JOBS):
                return
            job = JOBS[next_job]
            next_job += 1
        one(*job)


t0 = time.time()
threads = [threading.Thread(target=worker) for _ in range(W)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stats["seconds"] = round(time.time() - t0, 2)
stats["max_s"] = round(stats["max_s"], 2)
print(json.dumps(stats))
for f in failures[:20]:
    print("FAIL:", f)
sys.exit(1 if stats["fail"] or stats["ok"] != N else 0)

"""Scale benchmark, driven by benchsuite/scale.sh (standard library only).

A synthetic corpus (the LDA generative process with TRUE_TOPICS topics over VOCAB words; the
model then fits TOPICS topics) is trained on 127.0.0.1 by a master, 4 servers each started with
--max-memory-mb, and the driver with 1 and then 2 worker processes (`--no-loglik` during the
run: the driver's log-likelihood would pull the whole model every iteration). Measured:
  * tokens/s per iteration (the driver's metrics.jsonl) and its median per configuration;
  * bytes over the loopback interface (/proc/net/dev, every process's traffic, each byte once)
    between the first and the last iteration boundary, per token per iteration;
  * peak RSS (VmHWM) of every server, worker and the driver;
  * the model's memory per server (its Prometheus endpoint, ps_shard_memory_bytes).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from common import listen, run


def lo_bytes():
    for line in open("/proc/net/dev"):
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])  # received bytes (equal to transmitted on loopback)
    return 0


def peak_rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def scrape(addr, name):
    try:
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def metrics_lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def one_run(a, corpus, workers, tokens):
    procs = []
    try:
        master, addr = listen([a.glint, "master", "--bind", "127.0.0.1:0"])
        procs.append(("master", master))
        servers = []
        for i in range(4):
            port = 19500 + i
            s, _ = listen([a.glint, "server", "--master", addr, "--bind", "127.0.0.1:0",
                           "--max-memory-mb", str(a.max_memory_mb),
                           "--metrics-addr", f"127.0.0.1:{port}"])
            procs.append((f"server {i}", s))
            servers.append((s, f"127.0.0.1:{port}"))
        out = os.path.join(a.work, f"model-w{workers}")
        job = f"scale{workers}"
        ws = [subprocess.Popen([a.glint, "-q", "worker", "--master", addr, "--job", job, "--corpus", corpus,
                                "--index", str(i), "--threads", str(a.worker_threads), "--wait-secs", "1200"])
              for i in range(workers)]
        for i, w in enumerate(ws):
            procs.append((f"worker {i}", w))
        t0 = time.time()
        driver = subprocess.Popen([a.glint, "-q", "train", "--master", addr, "--servers", "4", "--workers",
                                   str(workers), "--job", job, "--corpus", corpus, "--topics", str(a.topics),
                                   "--iterations", str(a.iterations), "--no-loglik", "--sampler", "mh",
                                   "--out", out, "--stall-secs", "3600"])
        procs.append(("driver", driver))
        # Loopback bytes at every iteration boundary the driver logs.
        boundaries = {}
        mem = {}
        rss = {}
        path = os.path.join(out, "metrics.jsonl")
        while driver.poll() is None:
            n = len(metrics_lines(path))
            if n not in boundaries:
                boundaries[n] = lo_bytes()
            for name, p in procs:
                r = peak_rss(p.pid)
                if r:
                    rss[name] = max(rss.get(name, 0), r)
            for i, (_, maddr) in enumerate(servers):
                v = scrape(maddr, "ps_shard_memory_bytes")
                if v is not None:
                    mem[i] = max(mem.get(i, 0), v)
            time.sleep(0.2)
        if driver.returncode != 0:
            raise SystemExit(f"the driver failed ({driver.returncode})")
        for w in ws:
            w.wait(timeout=600)
        wall = time.time() - t0
        lines = metrics_lines(path)
        first, last = 1, len(lines)
        sampled = None
        if first in boundaries and last in boundaries and last > first:
            sampled = (boundaries[last] - boundaries[first]) / (tokens * (last - first))
        return {"workers": workers, "wall": wall,
                "tokens_per_s": [l["tokens_per_s"] for l in lines],
                "iteration_seconds": [l["seconds"] for l in lines],
                "bytes_per_token_iteration": sampled, "rss": rss, "server_memory": mem}
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    for name, typ in [("glint", str), ("work", str), ("report", str), ("docs", int), ("mean-len", int),
                      ("vocab", int), ("topics", int), ("true-topics", int), ("iterations", int),
                      ("max-memory-mb", int), ("worker-threads", int), ("command", str)]:
        ap.add_argument(f"--{name}", type=typ, required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    corpus = os.path.join(a.work, "corpus")
    manifest_path = os.path.join(corpus, "manifest.json")
    want = {"documents": a.docs, "vocab": a.vocab, "topics": a.true_topics, "mean_len": a.mean_len}
    spec_path = os.path.join(a.work, "corpus-spec.json")
    if not (os.path.exists(manifest_path) and os.path.exists(spec_path)
            and json.load(open(spec_path)) == want):
        t0 = time.time()
        run([a.glint, "-q", "synth", "--out", corpus, "--docs", str(a.docs), "--vocab", str(a.vocab),
             "--topics", str(a.true_topics), "--mean-len", str(a.mean_len), "--seed", "1", "--no-theta",
             "--no-progress"])
        print(f"synthesised in {time.time() - t0:.1f}s", file=sys.stderr)
        json.dump(want, open(spec_path, "w"))
    manifest = json.load(open(manifest_path))
    tokens = manifest["tokens"]
    runs = [one_run(a, corpus, w, tokens) for w in (1, 2)]
    write_report(a, manifest, runs)


def mb(x):
    return f"{x / 2**20:.0f}" if x else "?"


def write_report(a, manifest, runs):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    with open(a.report, "w") as f:
        f.write("# Scale: V = 1M words, K = 1,000 topics over 4 memory-capped servers\n\n")
        f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        f.write(f"- command: `{a.command}`\n")
        f.write(f"- machine: nproc {os.cpu_count()}, {cpu}\n")
        f.write(f"- corpus: synthetic, {manifest['documents']} documents, {manifest['tokens']} tokens, "
                f"V = {manifest['vocabulary_size']} (generated from {a.true_topics} true topics)\n")
        f.write(f"- model: K = {a.topics}, MH sampler, {a.iterations} iterations, 4 servers with "
                f"--max-memory-mb {a.max_memory_mb}, workers x {a.worker_threads} thread(s), all on 127.0.0.1\n\n")
        f.write("| workers | median tokens/s | median s/iteration | loopback bytes/token/iteration | wall s |\n")
        f.write("|---|---|---|---|---|\n")
        for r in runs:
            b = r["bytes_per_token_iteration"]
            f.write(f"| {r['workers']} | {statistics.median(r['tokens_per_s']):.3e} | "
                    f"{statistics.median(r['iteration_seconds']):.1f} | {b:.2f} | {r['wall']:.0f} |\n"
                    if b is not None else
                    f"| {r['workers']} | {statistics.median(r['tokens_per_s']):.3e} | "
                    f"{statistics.median(r['iteration_seconds']):.1f} | ? | {r['wall']:.0f} |\n")
        t1 = statistics.median(runs[0]["tokens_per_s"])
        t2 = statistics.median(runs[1]["tokens_per_s"])
        f.write(f"\n2 workers / 1 worker throughput: {t2 / t1:.2f}x (target 1.6x).\n\n")
        f.write("| process | peak RSS MB (1 worker) | peak RSS MB (2 workers) |\n|---|---|---|\n")
        names = sorted(set(runs[0]["rss"]) | set(runs[1]["rss"]))
        for n in names:
            f.write(f"| {n} | {mb(runs[0]['rss'].get(n))} | {mb(runs[1]['rss'].get(n))} |\n")
        f.write("\n| server | model data MB, peak (1 worker) | (2 workers) |\n|---|---|---|\n")
        for i in range(4):
            f.write(f"| {i} | {mb(runs[0]['server_memory'].get(i))} | {mb(runs[1]['server_memory'].get(i))} |\n")
        total = sum(runs[1]["server_memory"].values())
        f.write(f"\nModel data over all servers (peak, 2 workers): {mb(total)} MB against a cap of "
                f"{a.max_memory_mb} MB per server.\n")
        for r in runs:
            f.write(f"\nPer-iteration tokens/s with {r['workers']} worker(s): "
                    + ", ".join(f"{x:.3e}" for x in r["tokens_per_s"]) + "\n")


if __name__ == "__main__":
    main()

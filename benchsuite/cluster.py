"""Cluster equivalence, driven by benchsuite/cluster.sh (standard library only).

For each seed: the embedded run (`glint-lda train --threads 2`) and a multi-process run on
127.0.0.1 (a master, 2 servers, 2 `glint-lda worker` processes and the driver `train --master
--workers 2`), the same corpus split, K, iterations and seed; both log held-out perplexity by
document completion (`--test`, the same evaluation code) to metrics.jsonl. The report gives the
final held-out perplexity of each, their ratio per seed, and the spread over seeds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import listen, run, split_corpus



def last_heldout(model):
    lines = open(os.path.join(model, "metrics.jsonl")).read().splitlines()
    m = json.loads(lines[-1])
    return m["heldout_perplexity"], m["train_seconds"]


def train_args(a, seed, out):
    return ["--corpus", os.path.join(a.work, "train"), "--test", os.path.join(a.work, "test"),
            "--topics", str(a.k), "--iterations", str(a.iterations), "--eval-every",
            str(a.iterations), "--seed", str(seed), "--out", out, "--no-loglik", "-q"]


def embedded(a, seed):
    out = os.path.join(a.work, f"embedded-s{seed}")
    t0 = time.time()
    run([a.glint, "train", "--threads", "2"] + train_args(a, seed, out))
    return last_heldout(out) + (time.time() - t0,)


def cluster(a, seed):
    out = os.path.join(a.work, f"cluster-s{seed}")
    procs = []
    try:
        master, addr = listen([a.glint, "master", "--bind", "127.0.0.1:0"])
        procs.append(master)
        for _ in range(2):
            server, _ = listen([a.glint, "server", "--master", addr, "--bind", "127.0.0.1:0"])
            procs.append(server)
        t0 = time.time()
        workers = [subprocess.Popen([a.glint, "-q", "worker", "--master", addr, "--job", f"bench{seed}",
                                     "--corpus", os.path.join(a.work, "train"), "--index", str(i),
                                     "--threads", str(a.worker_threads)])
                   for i in range(2)]
        run([a.glint, "train", "--master", addr, "--servers", "2", "--workers", "2", "--job",
             f"bench{seed}", "--staleness", str(a.staleness)] + train_args(a, seed, out))
        for w in workers:
            if w.wait(timeout=120) != 0:
                raise SystemExit("a worker failed")
        return last_heldout(out) + (time.time() - t0,)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glint", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--worker-threads", type=int, default=1)
    ap.add_argument("--staleness", type=int, default=0)
    ap.add_argument("--command", default="")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    n_train, n_test = split_corpus(a.corpus, a.work, 0.1, 12345)
    for part, min_count in [("train", "5"), ("test", "1")]:
        run([a.glint, "ingest", os.path.join(a.work, f"{part}.tsv"), "--format", "tsv", "--out",
             os.path.join(a.work, part), "--min-count", min_count, "--no-progress"],
            stdout=subprocess.DEVNULL)
    rows = []
    for seed in a.seeds:
        e = embedded(a, seed)
        c = cluster(a, seed)
        rows.append({"seed": seed, "embedded": e, "cluster": c})
        print(f"seed {seed}: embedded {e[0]:.1f}, cluster {c[0]:.1f}", file=sys.stderr, flush=True)
    write_report(a, rows, n_train, n_test)


def write_report(a, rows, n_train, n_test):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    manifest = json.load(open(os.path.join(a.work, "train", "manifest.json")))
    ratios = [r["cluster"][0] / r["embedded"][0] for r in rows]
    with open(a.report, "w") as f:
        f.write("# Cluster equivalence: multi-process run against the embedded run\n\n")
        f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        f.write(f"- command: `{a.command}`\n")
        f.write(f"- machine: nproc {os.cpu_count()}, {cpu}\n")
        f.write(f"- corpus: {os.path.basename(a.corpus)}, {n_train} training / {n_test} held-out documents "
                f"(seeded 10% split), {manifest['tokens']} training tokens, {manifest['vocabulary_size']} words\n")
        f.write(f"- K = {a.k}, alpha = 50/K, beta = 0.01, {a.iterations} iterations; embedded: 2 sampler threads; "
                f"cluster: master + 2 servers + 2 workers x {a.worker_threads} thread(s) + driver on 127.0.0.1, "
                f"staleness {a.staleness}\n")
        f.write("- held-out perplexity by document completion after the last iteration, the same evaluation code\n\n")
        f.write("| seed | embedded perplexity | cluster perplexity | ratio | embedded train s | cluster train s |\n")
        f.write("|---|---|---|---|---|---|\n")
        for r, q in zip(rows, ratios):
            e, c = r["embedded"], r["cluster"]
            f.write(f"| {r['seed']} | {e[0]:.1f} | {c[0]:.1f} | {q:.4f} | {e[1]:.1f} | {c[1]:.1f} |\n")
        f.write(f"\nMedian ratio {statistics.median(ratios):.4f}; spread (min to max) "
                f"{min(ratios):.4f} to {max(ratios):.4f}. Target: within 2% (0.98 to 1.02).\n")
        emb = [r["embedded"][0] for r in rows]
        clu = [r["cluster"][0] for r in rows]
        if len(rows) > 1:
            f.write(f"Seed spread: embedded {min(emb):.1f} to {max(emb):.1f}, cluster {min(clu):.1f} to {max(clu):.1f}.\n")


if __name__ == "__main__":
    main()

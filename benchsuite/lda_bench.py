"""Helpers of benchsuite/lda.sh: tomotopy's side of the comparison, and the results report.

  lda_bench.py tomotopy TERMS K ALPHA BETA ITERS THREADS SEED   -> one JSON line on stdout
  lda_bench.py glint METRICS_JSONL                              -> one JSON line on stdout
  lda_bench.py report RESULTS_JSONL HEADER_MD                   -> markdown on stdout
"""
import json
import statistics
import sys
import time


def tomotopy_run(terms, k, alpha, beta, iters, threads, seed):
    import tomotopy as tp

    mdl = tp.LDAModel(k=k, alpha=alpha, eta=beta, seed=seed)
    with open(terms, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words:
                mdl.add_doc(words)
    mdl.optim_interval = 0  # no hyperparameter optimisation: plain sampling, like glint-lda
    t0 = time.perf_counter()
    mdl.train(0, workers=threads)  # initialisation only
    init = time.perf_counter() - t0
    rates = []
    for _ in range(iters):
        t0 = time.perf_counter()
        mdl.train(1, workers=threads)
        rates.append(mdl.num_words / (time.perf_counter() - t0))
    return {
        "tool": "tomotopy " + tp.__version__,
        "tokens": mdl.num_words,
        "init_seconds": init,
        "tokens_per_s": rates,
        "median": statistics.median(rates[1:] or rates),
        "ll_per_word": mdl.ll_per_word,
    }


def glint_metrics(path):
    with open(path, encoding="utf-8") as f:
        rates = [json.loads(line)["tokens_per_s"] for line in f if line.strip()]
    return {"tool": "glint-lda", "tokens_per_s": rates, "median": statistics.median(rates[1:] or rates)}


def report(results, header):
    rows = [json.loads(line) for line in open(results, encoding="utf-8") if line.strip()]
    out = [open(header, encoding="utf-8").read().rstrip(), ""]
    out.append("Median tokens/s over iterations 2..N (iteration 1 is warm-up). Per core = median / threads.")
    out.append("")
    out.append("| corpus | tokens | K | threads | glint-lda tokens/s | per core | tomotopy tokens/s | per core | glint / tomotopy |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["corpus"], r["k"], r["threads"]) for r in rows}, key=lambda x: (x[0], x[1], x[2]))
    for corpus, k, threads in keys:
        g = next((r for r in rows if (r["corpus"], r["k"], r["threads"], r["tool"]) == (corpus, k, threads, "glint-lda")), None)
        t = next((r for r in rows if (r["corpus"], r["k"], r["threads"]) == (corpus, k, threads) and r["tool"].startswith("tomotopy")), None)
        fmt = lambda x: f"{x / 1e6:.2f}M" if x else "-"
        gm = g["median"] if g else None
        tm = t["median"] if t else None
        ratio = f"{gm / tm:.2f}x" if gm and tm else "-"
        tokens = (g or t or {}).get("tokens", "")
        out.append(
            f"| {corpus} | {tokens} | {k} | {threads} | {fmt(gm)} | {fmt(gm / threads if gm else None)} | "
            f"{fmt(tm)} | {fmt(tm / threads if tm else None)} | {ratio} |"
        )
    out.append("")
    out.append("Raw per-iteration figures:")
    out.append("")
    out.append("```")
    for r in rows:
        rates = " ".join(f"{x / 1e6:.2f}" for x in r["tokens_per_s"])
        extra = f" peak_rss_kb={r['peak_rss_kb']}" if r.get("peak_rss_kb") else ""
        out.append(f"{r['tool']:>16} {r['corpus']:>10} K={r['k']:<5} T={r['threads']} Mtokens/s: {rates}{extra}")
    out.append("```")
    print("\n".join(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "tomotopy":
        terms, k, alpha, beta, iters, threads, seed = sys.argv[2:9]
        print(json.dumps(tomotopy_run(terms, int(k), float(alpha), float(beta), int(iters), int(threads), int(seed))))
    elif cmd == "glint":
        print(json.dumps(glint_metrics(sys.argv[2])))
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")

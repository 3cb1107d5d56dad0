"""Glint's comparison, on Spark: glint-lda on Spark (`glint_lda.spark.fit`, the executors as
workers) against Spark MLlib's EM and Online LDA, in one local[2] Spark session, on one
DataFrame of one corpus split. Every model is scored by `glint-lda eval` on the same held-out
documents (document completion). Also the Python-side overhead: `glint_lda.LDA.fit` and
`glint_lda.spark.fit` against `glint-lda train` on the same corpus and iterations.

Runs in benchsuite/.venv-baselines (pyspark, numpy, and glint_lda installed by spark.sh).
Method:
- MLlib trains on the terms `glint-lda ingest --export-terms` wrote for the training split (the
  analyzer and filter glint-lda uses, so every system sees the same tokens); CountVectorizer is
  not timed, fit is. MLlib's own default priors per optimizer (as benchsuite/baselines).
- glint-lda on Spark runs `fit` on the DataFrame of raw texts (its analysis passes are timed),
  at several iteration counts and seeds; its time to MLlib EM's final perplexity is the median
  time of the fewest iterations whose median perplexity is at or below it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import run  # noqa: E402


def evaluate(glint, model_dir, test_dir):
    out = run([glint, "eval", "--model", model_dir, "--test", test_dir, "--json", "--threads", "2"],
              capture_output=True, text=True)
    return json.loads(out.stdout)["heldout"]["perplexity"]


def write_phi(out, phi, vocab, alpha):
    os.makedirs(out, exist_ok=True)
    phi = np.asarray(phi, dtype=np.float64)
    np.save(os.path.join(out, "phi.npy"), phi / phi.sum(axis=1, keepdims=True))
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(out, "hyperparameters.json"), "w") as f:
        json.dump({"topics": int(phi.shape[0]), "alpha": alpha}, f)


def prepare(a):
    """train.tsv / test.tsv (a seeded 10% held out of `docs` documents), the CLI's corpora."""
    import gzip
    import random

    os.makedirs(a.work, exist_ok=True)
    if not os.path.exists(os.path.join(a.work, "train", "manifest.json")):
        opener = gzip.open if a.corpus.endswith(".gz") else open
        with opener(a.corpus, "rt", encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        random.Random(7).shuffle(lines)
        lines = lines[: a.docs]
        cut = len(lines) // 10
        with open(os.path.join(a.work, "test.tsv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines[:cut]) + "\n")
        with open(os.path.join(a.work, "train.tsv"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines[cut:]) + "\n")
        run([a.glint, "ingest", os.path.join(a.work, "train.tsv"), "--format", "tsv", "--out",
             os.path.join(a.work, "train"), "--min-count", "5", "--no-progress", "--export-terms",
             os.path.join(a.work, "train-terms.txt")])
        run([a.glint, "ingest", os.path.join(a.work, "test.tsv"), "--format", "tsv", "--out",
             os.path.join(a.work, "test"), "--min-count", "1", "--no-progress"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glint", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--ks", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--iterations", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--mllib-iterations", type=int, default=50)
    ap.add_argument("--command", default="")
    a = ap.parse_args()
    prepare(a)
    test_dir = os.path.join(a.work, "test")

    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.ml.clustering import LDA as MLlibLDA
    from pyspark.ml.feature import CountVectorizer
    from pyspark.sql import SparkSession

    import glint_lda
    import glint_lda.spark

    spark = (SparkSession.builder.master("local[2,2]").appName("glint-lda spark benchmark")
             .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(os.path.join(a.work, "mllib-checkpoints"))

    rows = []
    with open(os.path.join(a.work, "train.tsv"), encoding="utf-8") as f:
        for line in f:
            doc_id, _, text = line.rstrip("\n").partition("\t")
            rows.append((doc_id, text))
    texts = spark.createDataFrame(rows, ["id", "text"]).repartition(2).cache()
    texts.count()
    with open(os.path.join(a.work, "train-terms.txt"), encoding="utf-8") as f:
        terms = [line.split() for line in f if line.strip()]
    words = spark.createDataFrame([(i, t) for i, t in enumerate(terms)], ["id", "words"]).repartition(2)
    cv = CountVectorizer(inputCol="words", outputCol="features", minDF=1.0, vocabSize=1 << 24).fit(words)
    features = cv.transform(words).select("id", "features").cache()
    features.count()
    vocab = list(cv.vocabulary)

    results = {}  # (system, k, iterations) -> [(perplexity, seconds)]
    for k in a.ks:
        alpha = 50.0 / k
        for optimizer in ("em", "online"):
            t0 = time.perf_counter()
            model = MLlibLDA(k=k, maxIter=a.mllib_iterations, optimizer=optimizer, seed=1,
                             checkpointInterval=10).fit(features)
            seconds = time.perf_counter() - t0
            out = os.path.join(a.work, f"mllib-{optimizer}-k{k}")
            write_phi(out, np.array(model.topicsMatrix().toArray()).T, vocab, alpha)
            p = evaluate(a.glint, out, test_dir)
            results[(f"mllib-{optimizer}", k, a.mllib_iterations)] = [(p, seconds)]
            print(f"mllib-{optimizer} K={k}: {p:.1f} in {seconds:.1f}s", flush=True)
        for iters in a.iterations:
            for seed in a.seeds:
                t0 = time.perf_counter()
                m = glint_lda.spark.fit(texts, "text", k=k, id_col="id", iterations=iters, seed=seed,
                                        workers=2, min_count=5, progress=False)
                seconds = time.perf_counter() - t0
                out = os.path.join(a.work, f"spark-k{k}-i{iters}-s{seed}")
                m.save(out)
                p = evaluate(a.glint, out, test_dir)
                results.setdefault(("glint-lda on Spark", k, iters), []).append((p, seconds))
                print(f"glint-lda on Spark K={k} {iters} it seed {seed}: {p:.1f} in {seconds:.1f}s", flush=True)
        # Python-side overhead: the same corpus and iterations through the CLI and LDA.fit, each
        # timed from reading the corpus directory to the written model directory.
        iters = max(a.iterations)
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                run([a.glint, "train", "-q", "--corpus", os.path.join(a.work, "train"), "--out", d,
                     "--topics", str(k), "--iterations", str(iters), "--threads", "2", "--seed", str(seed)],
                    capture_output=True)
                seconds = time.perf_counter() - t0
                p = evaluate(a.glint, d, test_dir)
            results.setdefault(("glint-lda train (CLI)", k, iters), []).append((p, seconds))
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                corpus = glint_lda.Corpus.open(os.path.join(a.work, "train"))
                glint_lda.LDA(k=k, iterations=iters, threads=2, seed=seed).fit(corpus).save(d)
                seconds = time.perf_counter() - t0
                p = evaluate(a.glint, d, test_dir)
            results.setdefault(("glint_lda.LDA.fit (Python)", k, iters), []).append((p, seconds))
    spark.stop()
    report(a, results)


def med(values):
    return statistics.median(values)


def report(a, results):
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    with open(a.report, "w", encoding="utf-8") as f:
        f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        f.write(f"- command: {a.command}\n")
        f.write(f"- machine: nproc {os.cpu_count()}, {cpu}; Spark local[2], 2 workers of 1 thread\n")
        f.write(f"- corpus: {os.path.basename(a.corpus)}, {a.docs} documents, 10% held out; "
                f"MLlib {a.mllib_iterations} iterations, seed 1; glint-lda seeds {a.seeds}\n\n")
        f.write("# glint-lda on Spark against Spark MLlib\n\n")
        f.write("Held-out perplexity by document completion (`glint-lda eval`, the same test documents), "
                "wall-clock seconds of the fit (glint-lda on Spark: the whole `fit` call, its analysis passes "
                "and server start included; MLlib: `LDA.fit` on prepared count vectors). Medians over seeds, "
                "with the range.\n\n")
        f.write("| K | system | iterations | perplexity | seconds | runs |\n|---|---|---|---|---|---|\n")
        for (system, k, iters), v in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
            ps, ss = [x[0] for x in v], [x[1] for x in v]
            rng = f" ({min(ps):.1f}–{max(ps):.1f})" if len(v) > 1 else ""
            f.write(f"| {k} | {system} | {iters} | {med(ps):.1f}{rng} | {med(ss):.1f} | {len(v)} |\n")
        f.write("\n## Time to MLlib EM's final perplexity\n\n")
        f.write("| K | MLlib EM perplexity | MLlib EM s | glint-lda on Spark: iterations, perplexity, s | speed-up | target ≥ 10× |\n")
        f.write("|---|---|---|---|---|---|\n")
        for k in a.ks:
            em_p, em_s = results[("mllib-em", k, a.mllib_iterations)][0]
            reached = None
            for iters in sorted(a.iterations):
                v = results[("glint-lda on Spark", k, iters)]
                p, s = med([x[0] for x in v]), med([x[1] for x in v])
                if p <= em_p:
                    reached = (iters, p, s)
                    break
            if reached:
                speed = em_s / reached[2]
                f.write(f"| {k} | {em_p:.1f} | {em_s:.1f} | {reached[0]}, {reached[1]:.1f}, {reached[2]:.1f} | "
                        f"{speed:.1f}× | {'met' if speed >= 10 else 'not met'} |\n")
            else:
                f.write(f"| {k} | {em_p:.1f} | {em_s:.1f} | not reached in {max(a.iterations)} iterations | – | not met |\n")
        f.write("\n## Python-side overhead (same corpus and iterations, medians)\n\n")
        f.write("| K | CLI train s | LDA.fit s | overhead | spark.fit s | over the CLI | target ≤ 5% (LDA.fit) |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        iters = max(a.iterations)
        for k in a.ks:
            cli = med([x[1] for x in results[("glint-lda train (CLI)", k, iters)]])
            py = med([x[1] for x in results[("glint_lda.LDA.fit (Python)", k, iters)]])
            sp = med([x[1] for x in results[("glint-lda on Spark", k, iters)]])
            f.write(f"| {k} | {cli:.1f} | {py:.1f} | {100 * (py / cli - 1):+.1f}% | {sp:.1f} | "
                    f"{100 * (sp / cli - 1):+.1f}% | {'met' if py <= 1.05 * cli else 'not met'} |\n")
    print(open(a.report, encoding="utf-8").read())


if __name__ == "__main__":
    main()

"""Quality per second: held-out perplexity against training wall-clock time for glint-lda and
tomotopy in the same run, on the same document split, both scored by `glint-lda eval` (document
completion, the same code for both systems). Driven by benchsuite/quality.sh; runs in the
benchmark's virtual environment (tomotopy, numpy).

For each K and seed:
  * tomotopy LDAModel (exact collapsed Gibbs; alpha = 50/K fixed, optim_interval = 0, eta = beta),
    trained on the terms `glint-lda ingest --export-terms` wrote for the training split; at each
    checkpoint its phi + vocabulary are written as a model directory and scored;
  * glint-lda train --test, which logs held-out perplexity and training seconds to metrics.jsonl;
  * the time glint-lda needs to reach tomotopy's perplexity at its last checkpoint.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import tomotopy as tp

from common import run, split_corpus


def evaluate(glint, model_dir, test_dir, threads):
    out = run([glint, "eval", "--model", model_dir, "--test", test_dir, "--json",
               "--threads", str(threads)], capture_output=True, text=True)
    return json.loads(out.stdout)["heldout"]["perplexity"]


def tomotopy_run(args, k, seed, work):
    alpha = 50.0 / k
    mdl = tp.LDAModel(k=k, alpha=alpha, eta=args.beta, seed=seed)
    with open(os.path.join(work, "train-terms.txt"), encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words:
                mdl.add_doc(words)
    # Optimising alpha as glint-lda's +opt variants do (every N iterations after 50), or not.
    mdl.optim_interval = args.tomotopy_optim
    mdl.burn_in = 50 if args.tomotopy_optim else 0
    mdl.train(0)  # initialisation, not timed
    points, elapsed, done = [], 0.0, 0
    for target in args.tomotopy_iters:
        t0 = time.perf_counter()
        mdl.train(target - done, workers=args.threads)
        elapsed += time.perf_counter() - t0
        done = target
        d = os.path.join(work, f"tomotopy-k{k}-s{seed}-i{target}")
        os.makedirs(d, exist_ok=True)
        phi = np.array([mdl.get_topic_word_dist(t) for t in range(k)], dtype=np.float64)
        np.save(os.path.join(d, "phi.npy"), phi)
        with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(mdl.used_vocabs) + "\n")
        with open(os.path.join(d, "hyperparameters.json"), "w") as f:
            fitted = [float(a) for a in mdl.alpha] if args.tomotopy_optim else alpha
            json.dump({"topics": k, "alpha": fitted, "beta": args.beta, "iterations": target}, f)
        ppl = evaluate(args.glint, d, os.path.join(work, "test"), args.threads)
        points.append({"iteration": target, "seconds": elapsed, "heldout_perplexity": ppl})
        print(f"tomotopy K={k} seed={seed} it={target}: {elapsed:.1f}s, perplexity {ppl:.1f}",
              file=sys.stderr, flush=True)
    return points


def glint_run(args, k, seed, work, sampler_args, label, iterations, eval_every):
    out = os.path.join(work, f"glint-{label}-k{k}-s{seed}")
    alpha = 50.0 / k
    run([args.glint, "train", "--corpus", os.path.join(work, "train"), "--topics", str(k),
         "--iterations", str(iterations), "--alpha", repr(alpha), "--beta", repr(args.beta),
         "--threads", str(args.threads), "--seed", str(seed), "--out", out, "--no-loglik",
         "--test", os.path.join(work, "test"), "--eval-every", str(eval_every)] + sampler_args,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = []
    with open(os.path.join(out, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if m.get("heldout_perplexity") is not None:
                points.append({"iteration": m["iteration"], "seconds": m["train_seconds"],
                               "heldout_perplexity": m["heldout_perplexity"]})
    return points


def variant_flags(label):
    """`glint-lda train` flags of a variant: gibbs, sparse or mhN (N MH cycles), optionally with
    `+opt` (optimise an asymmetric alpha every 10 iterations after 50; `+optR`: R fixed-point rounds
    each time, 0 = to convergence)."""
    sampler, _, extra = label.partition("+")
    if sampler in ("gibbs", "sparse"):
        flags = ["--sampler", sampler]
    elif sampler.startswith("mh") and sampler[2:].isdigit():
        flags = ["--sampler", "mh", "--mh-steps", sampler[2:]]
    else:
        sys.exit(f"unknown variant {label!r}: gibbs, sparse or mhN, optionally +opt")
    if extra == "opt":
        flags += ["--optimize-interval", "10", "--optimize-burn-in", "50"]
    elif extra.startswith("opt") and extra[3:].isdigit():
        flags += ["--optimize-interval", "10", "--optimize-burn-in", "50", "--optimize-rounds", extra[3:]]
    elif extra:
        sys.exit(f"unknown variant suffix {extra!r} in {label!r}: +opt or +optR (R fixed-point rounds)")
    else:
        flags += ["--optimize-interval", "0"]
    return flags


def time_to(points, target):
    for p in points:
        if p["heldout_perplexity"] <= target:
            return p["seconds"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glint", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--ks", type=int, nargs="+", default=[20, 100, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beta", type=float, default=0.01)
    ap.add_argument("--tomotopy-iters", type=int, nargs="+", default=[100, 200, 500])
    ap.add_argument("--glint-factor", type=float, default=1.5,
                    help="glint-lda runs this many times tomotopy's last iteration count")
    ap.add_argument("--evals", type=int, default=15, help="held-out evaluations per glint run")
    ap.add_argument("--variants", nargs="+", default=["mh2", "gibbs"],
                    help="glint-lda samplers: gibbs (exact, dense), sparse (exact, sparse) or mhN (MH with N cycles), "
                         "each optionally +opt (optimised asymmetric alpha)")
    ap.add_argument("--tomotopy-optim", type=int, default=0,
                    help="tomotopy's optim_interval (0: alpha stays 50/K; else optimised every N after 50)")
    ap.add_argument("--command", default="")
    ap.add_argument("--report-only", action="store_true",
                    help="write the report from WORK/quality.json (an interrupted run) without training")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.report_only:
        rows = json.load(open(os.path.join(args.work, "quality.json")))
        args.ks = sorted({r["k"] for r in rows})
        n_train = sum(1 for _ in open(os.path.join(args.work, "train.tsv"), encoding="utf-8"))
        n_test = sum(1 for _ in open(os.path.join(args.work, "test.tsv"), encoding="utf-8"))
        write_report(args, rows, n_train, n_test)
        return
    n_train, n_test = split_corpus(args.corpus, args.work, 0.1, 12345)
    for part, min_count, extra in [("train", "5", ["--export-terms", os.path.join(args.work, "train-terms.txt")]),
                                   ("test", "1", [])]:
        run([args.glint, "ingest", os.path.join(args.work, f"{part}.tsv"), "--format", "tsv",
             "--out", os.path.join(args.work, part), "--min-count", min_count, "--no-progress"] + extra,
            stdout=subprocess.DEVNULL)

    rows = []
    for k in args.ks:
        for seed in args.seeds:
            tomo = tomotopy_run(args, k, seed, args.work)
            target = tomo[-1]["heldout_perplexity"]
            iters = int(args.tomotopy_iters[-1] * args.glint_factor)
            every = max(1, iters // args.evals)
            for label in args.variants:
                flags = variant_flags(label)
                pts = glint_run(args, k, seed, args.work, flags, label, iters, every)
                t_glint = time_to(pts, target)
                rows.append({"k": k, "seed": seed, "system": f"glint-lda {label}", "points": pts,
                             "target": target, "tomotopy_seconds": tomo[-1]["seconds"],
                             "seconds_to_target": t_glint})
                print(f"glint {label} K={k} seed={seed}: final {pts[-1]['heldout_perplexity']:.1f}, "
                      f"time to {target:.1f}: {t_glint}", file=sys.stderr, flush=True)
            rows.append({"k": k, "seed": seed, "system": "tomotopy", "points": tomo,
                         "target": target, "tomotopy_seconds": tomo[-1]["seconds"],
                         "seconds_to_target": tomo[-1]["seconds"]})
            with open(os.path.join(args.work, "quality.json"), "w") as f:
                json.dump(rows, f, indent=1)

    write_report(args, rows, n_train, n_test)


def write_report(args, rows, n_train, n_test):
    manifest = json.load(open(os.path.join(args.work, "train", "manifest.json")))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    with open(args.report, "w") as f:
        f.write("# Quality per second: glint-lda against tomotopy\n\n")
        f.write(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        f.write(f"- command: `{args.command}`\n")
        f.write(f"- machine: nproc {os.cpu_count()}, {cpu}\n")
        f.write(f"- corpus: {os.path.basename(args.corpus)}, {n_train} training / {n_test} held-out documents "
                f"(seeded 10% split), {manifest['tokens']} training tokens, {manifest['vocabulary_size']} words\n")
        f.write(f"- both: {args.threads} threads, alpha = 50/K, beta = {args.beta}; tomotopy {tp.__version__} "
                f"LDAModel, optim_interval = {args.tomotopy_optim}; glint-lda +opt: --optimize-interval 10 "
                f"--optimize-burn-in 50; held-out perplexity by document completion, scored by "
                f"`glint-lda eval` for both; seconds are training time only (evaluation excluded)\n\n")
        seeds = {k: sorted({r["seed"] for r in rows if r["k"] == k}) for k in args.ks}
        f.write("- seeds per K: " + ", ".join(f"K={k}: {seeds[k]}" for k in args.ks) + "\n\n")
        f.write("## Time to tomotopy's perplexity at its last checkpoint (median over seeds)\n\n")
        f.write("| K | system | tomotopy perplexity @%d | tomotopy s | glint-lda s to reach it | ratio | glint-lda final perplexity (its last iteration) |\n" % args.tomotopy_iters[-1])
        f.write("|---|---|---|---|---|---|---|\n")
        for k in args.ks:
            systems = sorted({r["system"] for r in rows if r["k"] == k and r["system"] != "tomotopy"})
            for s in systems:
                rs = [r for r in rows if r["k"] == k and r["system"] == s]
                tgt = statistics.median(r["target"] for r in rs)
                ts = statistics.median(r["tomotopy_seconds"] for r in rs)
                reached = [r["seconds_to_target"] for r in rs if r["seconds_to_target"] is not None]
                tg = statistics.median(reached) if len(reached) == len(rs) else None
                fin = statistics.median(r["points"][-1]["heldout_perplexity"] for r in rs)
                ratio = f"{tg / ts:.2f}" if tg is not None else f"not reached ({len(reached)}/{len(rs)} seeds)"
                tgs = f"{tg:.1f}" if tg is not None else "-"
                f.write(f"| {k} | {s} | {tgt:.1f} | {ts:.1f} | {tgs} | {ratio} | {fin:.1f} |\n")
        f.write("\n## Curves (held-out perplexity @ training seconds), per seed\n\n")
        for r in rows:
            pts = ", ".join(f"{p['heldout_perplexity']:.0f}@{p['seconds']:.1f}s(it {p['iteration']})" for p in r["points"])
            f.write(f"- K={r['k']} seed={r['seed']} {r['system']}: {pts}\n")
    print(open(args.report).read())


if __name__ == "__main__":
    main()

"""Shared by the baseline scripts: read the terms file `glint-lda ingest --export-terms` wrote
(one document per line, terms separated by spaces) and write a model directory that
`glint-lda eval` scores: phi.npy (K x V float64), vocab.txt (line j = column j),
hyperparameters.json (alpha) and run.json (system, dataset, train_seconds)."""

import argparse
import json
import os

import numpy as np


def arguments(system):
    ap = argparse.ArgumentParser(description=f"train {system} on a glint-lda terms file")
    ap.add_argument("--terms", required=True, help="one document per line of terms")
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=None, help="default 50/K")
    ap.add_argument("--beta", type=float, default=0.01)
    ap.add_argument("--dataset", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.alpha is None:
        args.alpha = 50.0 / args.k
    return args


def read_docs(path):
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def write_model(out, system, dataset, phi, vocab, alpha, seconds, extra=None):
    os.makedirs(out, exist_ok=True)
    phi = np.asarray(phi, dtype=np.float64)
    phi = phi / phi.sum(axis=1, keepdims=True)
    np.save(os.path.join(out, "phi.npy"), phi)
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(out, "hyperparameters.json"), "w") as f:
        json.dump({"topics": int(phi.shape[0]), "alpha": alpha}, f)
    run = {"system": system, "dataset": dataset, "train_seconds": seconds}
    run.update(extra or {})
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(run, f, indent=1)

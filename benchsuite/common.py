"""Helpers shared by the benchmark drivers (standard library only)."""

import gzip
import os
import random
import subprocess
import sys


def split_corpus(src, out_dir, test_share, seed):
    """Writes train.tsv and test.tsv: a seeded share of the documents is held out."""
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    rng = random.Random(seed)
    rng.shuffle(lines)
    n_test = max(1, int(len(lines) * test_share))
    with open(os.path.join(out_dir, "test.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines[:n_test]) + "\n")
    with open(os.path.join(out_dir, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines[n_test:]) + "\n")
    return len(lines) - n_test, n_test


def run(cmd, **kw):
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def listen(cmd):
    """Starts a `glint-lda master` or `server` and returns (process, address from its banner)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    banner = p.stdout.readline().strip()
    if not banner.startswith("listening on "):
        p.kill()
        raise SystemExit(f"{cmd} printed {banner!r}")
    return p, banner[len("listening on "):].split(" ")[0]

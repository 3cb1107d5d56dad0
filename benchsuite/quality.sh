#!/usr/bin/env bash
# Quality per second: held-out perplexity against training wall-clock for glint-lda and tomotopy
# in the same run, on the same 10% held-out document split, both scored by `glint-lda eval`.
# Writes benchsuite/results/quality-DATE.md (see benchsuite/quality.py for the method).
#
#   bash benchsuite/quality.sh                                   # news-articles, K = 20 100 1000, 3 seeds
#   KS="20 100" SEEDS="1" bash benchsuite/quality.sh             # a quicker run
#   CORPUS=../shared/corpora/kernel-comments.tsv.gz bash benchsuite/quality.sh
#
# Settings (environment): CORPUS, KS, SEEDS, THREADS (2), TOMOTOPY_ITERS ("100 200 500"),
# VARIANTS ("mh2 gibbs": glint-lda samplers gibbs, sparse, mhN = N MH cycles; +opt optimises α), GLINT_FACTOR (1.5: glint-lda
# runs this many times tomotopy's last iteration count), TOMOTOPY_OPTIM (0: tomotopy's alpha fixed;
# N: optimised every N iterations after 50, like the +opt variants), EVALS (15: held-out evaluations
# per glint-lda run; more of them time the crossing of tomotopy's figure more finely), WORK (scratch dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/news-articles.tsv.gz}
KS=${KS:-"20 100 1000"}
SEEDS=${SEEDS:-"1 2 3"}
THREADS=${THREADS:-2}
TOMOTOPY_ITERS=${TOMOTOPY_ITERS:-"100 200 500"}
VARIANTS=${VARIANTS:-"mh2 gibbs"}
GLINT_FACTOR=${GLINT_FACTOR:-1.5}
TOMOTOPY_OPTIM=${TOMOTOPY_OPTIM:-0}
EVALS=${EVALS:-15}
NAME=$(basename "$CORPUS" | sed 's/\..*//')
WORK=${WORK:-$ROOT/benchsuite/work/quality-$NAME}
TOMOTOPY_VERSION=0.14.0
NUMPY_VERSION=2.2.6
[ -f "$CORPUS" ] || { echo "corpus not found: $CORPUS" >&2; exit 1; }

echo "== building (release)"
cargo build --release -p cli
echo "== python venv with tomotopy $TOMOTOPY_VERSION"
VENV=$ROOT/benchsuite/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "tomotopy==$TOMOTOPY_VERSION" "numpy==$NUMPY_VERSION"

mkdir -p "$ROOT/benchsuite/results"
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/quality-$NAME-$STAMP.md
# shellcheck disable=SC2086
"$VENV/bin/python" "$ROOT/benchsuite/quality.py" --glint "$ROOT/target/release/glint-lda" \
    --corpus "$CORPUS" --work "$WORK" --report "$REPORT" --ks $KS --seeds $SEEDS \
    --threads "$THREADS" --tomotopy-iters $TOMOTOPY_ITERS --variants $VARIANTS --glint-factor "$GLINT_FACTOR" \
    --tomotopy-optim "$TOMOTOPY_OPTIM" --evals "$EVALS" \
    --command "KS=\"$KS\" SEEDS=\"$SEEDS\" EVALS=$EVALS GLINT_FACTOR=$GLINT_FACTOR VARIANTS=\"$VARIANTS\" TOMOTOPY_OPTIM=$TOMOTOPY_OPTIM CORPUS=$(basename "$CORPUS") bash benchsuite/quality.sh"
echo "report: $REPORT"

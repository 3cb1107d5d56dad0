#!/usr/bin/env bash
# Cluster equivalence: held-out perplexity of a multi-process run (master + 2 servers + 2
# workers on 127.0.0.1, the driver evaluating) against the embedded run on the same corpus, K,
# iterations and seeds. Writes benchsuite/results/cluster-DATE.md (method: benchsuite/cluster.py).
#
#   bash benchsuite/cluster.sh                      # news-articles, K = 20, 200 iterations, seeds 1 2 3
#   K=100 ITERATIONS=300 SEEDS="1 2" bash benchsuite/cluster.sh
#
# Settings (environment): CORPUS, K, ITERATIONS, SEEDS, WORKER_THREADS (1), STALENESS (0), WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/news-articles.tsv.gz}
K=${K:-20}
ITERATIONS=${ITERATIONS:-200}
SEEDS=${SEEDS:-"1 2 3"}
WORKER_THREADS=${WORKER_THREADS:-1}
STALENESS=${STALENESS:-0}
NAME=$(basename "$CORPUS" | sed 's/\..*//')
WORK=${WORK:-$ROOT/benchsuite/work/cluster-$NAME}
[ -f "$CORPUS" ] || { echo "corpus not found: $CORPUS" >&2; exit 1; }

echo "== building (release)"
cargo build --release -p cli
mkdir -p "$ROOT/benchsuite/results" "$WORK"
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/cluster-$NAME-$STAMP.md
# shellcheck disable=SC2086
python3 "$ROOT/benchsuite/cluster.py" --glint "$ROOT/target/release/glint-lda" --corpus "$CORPUS" \
    --work "$WORK" --report "$REPORT" --k "$K" --iterations "$ITERATIONS" --seeds $SEEDS \
    --worker-threads "$WORKER_THREADS" --staleness "$STALENESS" \
    --command "K=$K ITERATIONS=$ITERATIONS SEEDS=\"$SEEDS\" WORKER_THREADS=$WORKER_THREADS STALENESS=$STALENESS bash benchsuite/cluster.sh"
echo "report: $REPORT"

#!/usr/bin/env bash
# Scale: a synthetic corpus of >= 100M tokens over V = 1,000,000 words, K = 1,000 topics, the
# word-topic model spread over 4 server processes each under a memory cap (--max-memory-mb) too
# small to hold it alone; 1 and then 2 worker processes driven by `train --workers`. Records
# tokens/s, peak RSS per process, loopback bytes per token per iteration and the training
# log-likelihood. Writes benchsuite/results/scale-DATE.md (method: benchsuite/scale.py).
#
#   bash benchsuite/scale.sh                          # 500,000 documents of 200 tokens
#   DOCS=50000 ITERATIONS=3 bash benchsuite/scale.sh  # a quick check of the script
#
# Settings (environment): DOCS, MEAN_LEN, VOCAB, TOPICS, TRUE_TOPICS, ITERATIONS, MAX_MEMORY_MB,
# WORKER_THREADS, WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DOCS=${DOCS:-500000}
MEAN_LEN=${MEAN_LEN:-200}
VOCAB=${VOCAB:-1000000}
TOPICS=${TOPICS:-1000}
TRUE_TOPICS=${TRUE_TOPICS:-100}
ITERATIONS=${ITERATIONS:-5}
MAX_MEMORY_MB=${MAX_MEMORY_MB:-1024}
WORKER_THREADS=${WORKER_THREADS:-1}
WORK=${WORK:-$ROOT/benchsuite/work/scale}

echo "== building (release)"
cargo build --release -p cli
mkdir -p "$ROOT/benchsuite/results" "$WORK"
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/scale-$STAMP.md
python3 "$ROOT/benchsuite/scale.py" --glint "$ROOT/target/release/glint-lda" --work "$WORK" \
    --report "$REPORT" --docs "$DOCS" --mean-len "$MEAN_LEN" --vocab "$VOCAB" --topics "$TOPICS" \
    --true-topics "$TRUE_TOPICS" --iterations "$ITERATIONS" --max-memory-mb "$MAX_MEMORY_MB" \
    --worker-threads "$WORKER_THREADS" \
    --command "DOCS=$DOCS MEAN_LEN=$MEAN_LEN ITERATIONS=$ITERATIONS MAX_MEMORY_MB=$MAX_MEMORY_MB WORKER_THREADS=$WORKER_THREADS bash benchsuite/scale.sh"
echo "report: $REPORT"

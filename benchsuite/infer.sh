#!/usr/bin/env bash
# Inference throughput: `glint-lda infer` on documents of about 100 tokens from a synthetic LDA
# corpus (K = 100, V = 10,000), scored against the true φ as the model; documents/s per core with
# 1 and 2 threads, for the MH, sparse and Gibbs fold-ins in the same run. Target: ≥ 10,000
# documents/s per core. Results: results/infer-DATE.md.
#
#   bash benchsuite/infer.sh            DOCS=20000 bash benchsuite/infer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DOCS=${DOCS:-50000}
REPS=${REPS:-3}
WORK=${WORK:-$ROOT/benchsuite/work/infer}
cargo build --release -p cli
cargo build --release -p lda --example synthetic_corpus
G=$ROOT/target/release/glint-lda
mkdir -p "$WORK"
if [ ! -f "$WORK/corpus/manifest.json" ]; then
    "$ROOT/target/release/examples/synthetic_corpus" "$WORK/corpus" $((DOCS * 100)) 10000 100 100 7
fi
# The true φ as a model directory (any phi.npy + vocab.txt directory is a model).
mkdir -p "$WORK/model"
cp "$WORK/corpus/phi.npy" "$WORK/model/phi.npy"
cut -f2 "$WORK/corpus/vocab.tsv" > "$WORK/model/vocab.txt"
echo '{"alpha": 0.1}' > "$WORK/model/hyperparameters.json"

run() { # method threads → median documents/s over REPS
    local rates=()
    for _ in $(seq "$REPS"); do
        local out
        out=$("$G" infer --model "$WORK/model" --input "$WORK/corpus" --out "$WORK/out-$1-$2" \
            --method "$1" --threads "$2" 2>&1 | grep -o '([0-9]* documents/s' | grep -o '[0-9]*')
        rates+=("$out")
    done
    printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (REPS + 1) / 2 ))p"
}
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/infer-$STAMP.md
{
    echo "# Inference throughput"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: DOCS=$DOCS REPS=$REPS bash benchsuite/infer.sh"
    echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- data: $DOCS synthetic documents of about 100 tokens (Poisson), K = 100, V = 10,000, the true φ as the model; default 20 sweeps (10 burn-in); median of $REPS runs"
    echo
    echo "| method | threads | documents/s | per core |"
    echo "|---|---|---|---|"
    for m in mh sparse gibbs; do
        for t in 1 2; do
            r=$(run "$m" "$t")
            echo "| $m | $t | $r | $((r / t)) |"
        done
    done
} | tee "$REPORT"
echo "report: $REPORT"

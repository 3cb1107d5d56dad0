#!/usr/bin/env bash
# Does parallelism cost quality? Held-out perplexity after the same number of iterations with 1
# and 2 sampler threads, over several seeds, on the quality benchmark's news-articles split.
# Results: results/threads-DATE.md.
#
#   bash benchsuite/threads.sh          KS="100" SAMPLERS="gibbs mh" ITERS=300 SEEDS="1 2 3" bash benchsuite/threads.sh
#
# Modes: 1 thread, 2 threads sharing moves eagerly (--sync eager), and 2 threads with --sync
# deterministic (reproducible bit for bit: every thread samples against the model as the
# iteration began plus its own moves). OPTIMIZE is
# --optimize-interval (default 10, the trainer's default; 0: alpha fixed at 50/K).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KS=${KS:-"100"}
SAMPLERS=${SAMPLERS:-"gibbs"}
ITERS=${ITERS:-300}
SEEDS=${SEEDS:-"1 2 3"}
OPTIMIZE=${OPTIMIZE:-10}
WORK=${WORK:-$ROOT/benchsuite/work/quality-news-articles}
[ -f "$WORK/train/manifest.json" ] || { echo "run benchsuite/quality.sh first (it writes the split to $WORK)" >&2; exit 1; }
cargo build --release -p cli
G=$ROOT/target/release/glint-lda
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/threads-$STAMP.md
{
    echo "# Held-out perplexity with 1 and 2 sampler threads"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: KS=\"$KS\" SAMPLERS=\"$SAMPLERS\" ITERS=$ITERS SEEDS=\"$SEEDS\" OPTIMIZE=$OPTIMIZE bash benchsuite/threads.sh"
    echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- data: the news-articles split of benchsuite/quality.sh; alpha = 50/K (--optimize-interval $OPTIMIZE), beta = 0.01; $ITERS iterations"
    echo
    echo "| K | sampler | threads | held-out perplexity per seed | median | spread (max - min) | median s/iteration per seed |"
    echo "|---|---|---|---|---|---|---|"
    for k in $KS; do
        alpha=$(python3 -c "print(50/$k)")
        for s in $SAMPLERS; do
            for mode in 1 2 2d; do
                t=${mode%d}
                extra=(--sync eager)
                label=$t
                if [ "$mode" = 2d ]; then extra=(--sync deterministic); label="2, deterministic"; fi
                vals=()
                secs=()
                for seed in $SEEDS; do
                    out=$WORK/threads-$s-k$k-m$mode-s$seed
                    "$G" train --corpus "$WORK/train" --topics "$k" --iterations "$ITERS" --alpha "$alpha" \
                        --threads "$t" --seed "$seed" --sampler "$s" --out "$out" --no-loglik \
                        --optimize-interval "$OPTIMIZE" "${extra[@]}" \
                        --test "$WORK/test" --eval-every "$ITERS" >/dev/null 2>&1
                    vals+=("$(python3 -c "import json; print(round([json.loads(l) for l in open('$out/metrics.jsonl')][-1]['heldout_perplexity'], 1))")")
                    # Sampling seconds per iteration (the last, evaluated, iteration excluded).
                    secs+=("$(python3 -c "import json, statistics; m=[json.loads(l) for l in open('$out/metrics.jsonl')][:-1]; print(round(statistics.median(x['seconds'] for x in m), 4))")")
                    rm -rf "$out"
                done
                stats=$(printf '%s\n' "${vals[@]}" | python3 -c "import sys, statistics; v=[float(x) for x in sys.stdin]; print(f'{statistics.median(v):.1f} | {max(v)-min(v):.1f}')")
                echo "| $k | $s | $label | ${vals[*]} | $stats | ${secs[*]} |"
            done
        done
    done
} | tee "$REPORT"

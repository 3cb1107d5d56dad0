#!/usr/bin/env bash
# Glint's comparison at the scale of this machine: growing subsets of kernel-comments (data-size
# rows) and K in 20..100 (topic rows), every system trained on the same training split (the terms
# `glint-lda ingest --export-terms` wrote), every model scored by `glint-lda eval` with the same
# alpha (50/K), then `glint-lda report`. Results: benchsuite/results/compare-DATE.md (+ .html).
#
#   bash benchsuite/compare.sh
#   SIZES="3000" KS="20" SYSTEMS="glint-lda tomotopy gensim" bash benchsuite/compare.sh   # quick
#
# Settings: CORPUS, SIZES (documents), KS, SYSTEMS (glint-lda tomotopy gensim mllib-em
# mllib-online), ITERS (Gibbs iterations of glint-lda and tomotopy, 200), MLLIB_ITERS (50),
# GENSIM_PASSES (10), THREADS (2), WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/kernel-comments.tsv.gz}
SIZES=${SIZES:-"5000 10000 20000"}
KS=${KS:-"20 40 60 80 100"}
SYSTEMS=${SYSTEMS:-"glint-lda tomotopy gensim mllib-em mllib-online"}
ITERS=${ITERS:-200}
MLLIB_ITERS=${MLLIB_ITERS:-50}
GENSIM_PASSES=${GENSIM_PASSES:-10}
THREADS=${THREADS:-2}
WORK=${WORK:-$ROOT/benchsuite/work/compare}
[ -f "$CORPUS" ] || { echo "corpus not found: $CORPUS" >&2; exit 1; }

echo "== building (release)"
cargo build --release -p cli
G=$ROOT/target/release/glint-lda
VENV=$ROOT/benchsuite/.venv-baselines
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/benchsuite/baselines/requirements.txt"
PY=$VENV/bin/python
B=$ROOT/benchsuite/baselines
mkdir -p "$WORK"

RUNS=()
for size in $SIZES; do
    D=$WORK/n$size
    mkdir -p "$D"
    if [ ! -f "$D/train/manifest.json" ]; then
        "$PY" - "$CORPUS" "$D" "$size" <<'PY'
import gzip, random, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [l for l in gzip.open(src, "rt", encoding="utf-8").read().splitlines() if l.strip()]
random.Random(7).shuffle(lines)
lines = lines[:n]
cut = len(lines) // 10
open(f"{out}/test.tsv", "w", encoding="utf-8").write("\n".join(lines[:cut]) + "\n")
open(f"{out}/train.tsv", "w", encoding="utf-8").write("\n".join(lines[cut:]) + "\n")
PY
        "$G" ingest "$D/train.tsv" --format tsv --out "$D/train" --min-count 5 --no-progress \
            --export-terms "$D/train-terms.txt"
        "$G" ingest "$D/test.tsv" --format tsv --out "$D/test" --min-count 1 --no-progress
    fi
    for k in $KS; do
        alpha=$("$PY" -c "print(50/$k)")
        for sys in $SYSTEMS; do
            M=$D/$sys-k$k
            echo "== $sys, $size documents, K = $k"
            case $sys in
                glint-lda)
                    "$G" train --corpus "$D/train" --topics "$k" --iterations "$ITERS" --threads "$THREADS" \
                        --alpha "$alpha" --out "$M" --no-loglik --test "$D/test" --eval-every $((ITERS / 10)) 2>/dev/null
                    "$PY" -c "import json,sys; m=[json.loads(l) for l in open('$M/metrics.jsonl')]; json.dump({'system':'glint-lda','dataset':'kernel-comments $size docs','train_seconds':m[-1]['train_seconds']}, open('$M/run.json','w'))" ;;
                tomotopy)
                    "$PY" "$B/tomotopy_lda.py" --terms "$D/train-terms.txt" --k "$k" --iterations "$ITERS" \
                        --threads "$THREADS" --dataset "kernel-comments $size docs" --out "$M" ;;
                gensim)
                    "$PY" "$B/gensim_lda.py" --terms "$D/train-terms.txt" --k "$k" --iterations "$GENSIM_PASSES" \
                        --threads "$THREADS" --dataset "kernel-comments $size docs" --out "$M" ;;
                mllib-em|mllib-online)
                    "$PY" "$B/mllib_lda.py" --optimizer "${sys#mllib-}" --terms "$D/train-terms.txt" --k "$k" \
                        --iterations "$MLLIB_ITERS" --threads "$THREADS" --dataset "kernel-comments $size docs" --out "$M" ;;
                *) echo "unknown system $sys" >&2; exit 1 ;;
            esac
            "$G" eval --model "$M" --test "$D/test" --alpha "$alpha" --threads "$THREADS" >/dev/null
            RUNS+=("$M")
        done
    done
done

STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=$WORK/report-$STAMP
"$G" report --runs "${RUNS[@]}" --out "$OUT" --title "glint-lda against MLlib, gensim and tomotopy (kernel-comments)"
mkdir -p "$ROOT/benchsuite/results"
{
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: SIZES=\"$SIZES\" KS=\"$KS\" SYSTEMS=\"$SYSTEMS\" ITERS=$ITERS MLLIB_ITERS=$MLLIB_ITERS GENSIM_PASSES=$GENSIM_PASSES bash benchsuite/compare.sh"
    echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $THREADS threads for every system"
    echo
    cat "$OUT/report.md"
} > "$ROOT/benchsuite/results/compare-$STAMP.md"
cp "$OUT/report.html" "$ROOT/benchsuite/results/compare-$STAMP.html"
echo "report: benchsuite/results/compare-$STAMP.md"

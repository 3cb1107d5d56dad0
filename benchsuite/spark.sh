#!/usr/bin/env bash
# Glint's comparison on Spark: glint-lda on Spark (glint_lda.spark.fit, executors as workers)
# against Spark MLlib EM and Online LDA on one DataFrame in local[2], K = 20 and 100, every model
# scored by `glint-lda eval`; plus the Python-side overhead against `glint-lda train`.
# Writes benchsuite/results/spark-DATE.md (method: benchsuite/spark.py).
#
#   bash benchsuite/spark.sh
#   DOCS=3000 KS="20" ITERATIONS="50 100" SEEDS="1" bash benchsuite/spark.sh     # quick
#
# Settings (environment): CORPUS, DOCS (5000), KS ("20 100"), ITERATIONS ("50 100 200"),
# SEEDS ("1 2 3"), MLLIB_ITERATIONS (50), WORK. The baselines' virtual environment
# (benchsuite/.venv-baselines: pinned pyspark, numpy) gets a release build of ./python.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/kernel-comments.tsv.gz}
DOCS=${DOCS:-5000}
KS=${KS:-"20 100"}
ITERATIONS=${ITERATIONS:-"50 100 200"}
SEEDS=${SEEDS:-"1 2 3"}
MLLIB_ITERATIONS=${MLLIB_ITERATIONS:-50}
NAME=$(basename "$CORPUS" | sed 's/\..*//')
WORK=${WORK:-$ROOT/benchsuite/work/spark-$NAME-$DOCS}
[ -f "$CORPUS" ] || { echo "corpus not found: $CORPUS" >&2; exit 1; }

echo "== building (release)"
cargo build --release -p cli
VENV=$ROOT/benchsuite/.venv-baselines
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/benchsuite/baselines/requirements.txt"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check ./python
mkdir -p "$ROOT/benchsuite/results" "$WORK"
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/spark-$NAME-$STAMP.md
# shellcheck disable=SC2086
"$VENV/bin/python" "$ROOT/benchsuite/spark.py" --glint "$ROOT/target/release/glint-lda" \
    --corpus "$CORPUS" --work "$WORK" --report "$REPORT" --docs "$DOCS" --ks $KS \
    --iterations $ITERATIONS --seeds $SEEDS --mllib-iterations "$MLLIB_ITERATIONS" \
    --command "DOCS=$DOCS KS=\"$KS\" ITERATIONS=\"$ITERATIONS\" SEEDS=\"$SEEDS\" MLLIB_ITERATIONS=$MLLIB_ITERATIONS bash benchsuite/spark.sh"
echo "report: $REPORT"

#!/usr/bin/env bash
# The pyLDAvis export, checked by pyLDAvis itself: trains a small model on a kernel-comments
# subset, writes `glint-lda topics --format pyldavis`, and loads the five files into
# pyLDAvis.prepare in the baselines' virtual environment (benchsuite/.venv-baselines, pinned in
# baselines/requirements.txt), which validates them and renders the page.
# Result: results/pyldavis-DATE.md (+ the HTML under benchsuite/work/pyldavis).
#
#   bash benchsuite/pyldavis.sh            DOCS=3000 TOPICS=20 bash benchsuite/pyldavis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/kernel-comments.tsv.gz}
DOCS=${DOCS:-5000}
TOPICS=${TOPICS:-20}
ITERS=${ITERS:-100}
WORK=${WORK:-$ROOT/benchsuite/work/pyldavis}
[ -f "$CORPUS" ] || { echo "corpus not found: $CORPUS" >&2; exit 1; }
cargo build --release -p cli
G=$ROOT/target/release/glint-lda
VENV=$ROOT/benchsuite/.venv-baselines
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/benchsuite/baselines/requirements.txt"
rm -rf "$WORK" && mkdir -p "$WORK"
# awk reads to the end (no early close, so no SIGPIPE under pipefail).
gzip -dc "$CORPUS" | awk -v n="$DOCS" 'NF && c < n { print; c++ }' > "$WORK/docs.tsv"
"$G" ingest "$WORK/docs.tsv" --format tsv --out "$WORK/corpus" --min-count 5 --no-progress
"$G" -q train --corpus "$WORK/corpus" --topics "$TOPICS" --iterations "$ITERS" --out "$WORK/model"
CMD=("$G" topics --model "$WORK/model" --format pyldavis --out "$WORK/export")
"${CMD[@]}"
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/pyldavis-$STAMP.md
SUMMARY=$("$VENV/bin/python" "$ROOT/benchsuite/pyldavis_check.py" "$WORK/export" "$WORK/pyldavis.html")
{
    echo "# pyLDAvis load check"
    echo
    echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- command: \`bash benchsuite/pyldavis.sh\` (DOCS=$DOCS, TOPICS=$TOPICS, ITERS=$ITERS); export: \`glint-lda topics --model MODEL --format pyldavis --out EXPORT\`"
    echo "- commit: $(git rev-parse --short HEAD)"
    echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- environment: $("$VENV/bin/python" -m pip freeze | grep -iE '^(pyldavis|pandas|numpy)==' | tr '\n' ' ')"
    echo
    echo "pyLDAvis.prepare accepted the five files and rendered the page:"
    echo
    echo "$SUMMARY"
} > "$REPORT"
cat "$REPORT"

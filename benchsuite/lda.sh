#!/usr/bin/env bash
# LDA training throughput: glint-lda against tomotopy (LDAModel, same K, alpha, beta, iterations
# and threads, same documents), on the ingested kernel-comments corpus and a synthetic corpus,
# K = 100 and 1000, 1 and 2 threads. Results go to benchsuite/results/lda-DATE.md.
#
#   bash benchsuite/lda.sh                      # release build, full sizes
#   PROFILE=dev SYN_TOKENS=300000 KERNEL= ITERS=4 bash benchsuite/lda.sh   # quick check
#
# Settings (environment): PROFILE (release|dev), ITERS (10), SYN_TOKENS (20000000), KS ("100 1000"),
# THREADS ("1 2"), KERNEL (path of kernel-comments.tsv.gz; empty to skip), WORK (scratch dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${PROFILE:-release}
ITERS=${ITERS:-10}
SYN_TOKENS=${SYN_TOKENS:-20000000}
KS=${KS:-"100 1000"}
THREADS=${THREADS:-"1 2"}
KERNEL=${KERNEL-$ROOT/../shared/corpora/kernel-comments.tsv.gz}
WORK=${WORK:-$ROOT/benchsuite/work/lda-$PROFILE}
ALPHA=0.1
BETA=0.01
MH=2
SEED=1
TOMOTOPY_VERSION=0.14.0
NUMPY_VERSION=2.2.6

if [ "$PROFILE" = release ]; then
    CARGO_FLAGS=(--release); BIN=$ROOT/target/release
else
    CARGO_FLAGS=(); BIN=$ROOT/target/debug
fi
echo "== building ($PROFILE)"
cargo build "${CARGO_FLAGS[@]}" -p cli
cargo build "${CARGO_FLAGS[@]}" -p lda --example synthetic_corpus

echo "== python venv with tomotopy $TOMOTOPY_VERSION"
VENV=$ROOT/benchsuite/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "tomotopy==$TOMOTOPY_VERSION" "numpy==$NUMPY_VERSION"
PY=$VENV/bin/python

mkdir -p "$WORK"
CORPORA=()
if [ -n "$KERNEL" ] && [ -f "$KERNEL" ]; then
    if [ ! -f "$WORK/kernel/manifest.json" ]; then
        echo "== ingesting $KERNEL"
        "$BIN/glint-lda" ingest "$KERNEL" --out "$WORK/kernel" --format tsv --min-count 5 \
            --export-terms "$WORK/kernel/terms.txt" --no-progress
    fi
    CORPORA+=(kernel)
elif [ -n "$KERNEL" ]; then
    echo "(kernel-comments corpus not found at $KERNEL: skipped)"
fi
SYN=syn$SYN_TOKENS
if [ ! -f "$WORK/$SYN/manifest.json" ]; then
    echo "== generating a synthetic corpus of $SYN_TOKENS tokens"
    "$BIN/examples/synthetic_corpus" "$WORK/$SYN" "$SYN_TOKENS" 50000 100 200 42
fi
CORPORA+=("$SYN")

RESULTS=$WORK/results.jsonl
: > "$RESULTS"
TIME=()
command -v /usr/bin/time >/dev/null && TIME=(/usr/bin/time -f "%M" -o "$WORK/rss")
for corpus in "${CORPORA[@]}"; do
    tokens=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['tokens'])" "$WORK/$corpus/manifest.json")
    for k in $KS; do
        for t in $THREADS; do
            echo "== $corpus K=$k threads=$t: glint-lda"
            out=$WORK/model-$corpus-$k-$t
            "${TIME[@]}" "$BIN/glint-lda" -q train --corpus "$WORK/$corpus" --topics "$k" --iterations "$ITERS" \
                --alpha $ALPHA --beta $BETA --mh-steps $MH --threads "$t" --seed $SEED --out "$out" --no-loglik
            rss=$(cat "$WORK/rss" 2>/dev/null || echo 0)
            "$PY" benchsuite/lda_bench.py glint "$out/metrics.jsonl" | "$PY" -c "
import json,sys; r=json.load(sys.stdin); r.update(corpus='$corpus', k=$k, threads=$t, tokens=$tokens, peak_rss_kb=int('$rss' or 0)); print(json.dumps(r))" >> "$RESULTS"
            rm -rf "$out"  # phi.npy alone is K x V doubles (400 MB at K = 1000, V = 50000)
            echo "== $corpus K=$k threads=$t: tomotopy"
            "$PY" benchsuite/lda_bench.py tomotopy "$WORK/$corpus/terms.txt" "$k" $ALPHA $BETA "$ITERS" "$t" $SEED | "$PY" -c "
import json,sys; r=json.load(sys.stdin); r.update(corpus='$corpus', k=$k, threads=$t); print(json.dumps(r))" >> "$RESULTS"
            tail -n 2 "$RESULTS" | "$PY" -c "import json,sys; [print('   ', (r:=json.loads(l))['tool'], round(r['median']/1e6, 3), 'M tokens/s') for l in sys.stdin]"
        done
    done
done

STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT=$ROOT/benchsuite/results/lda-$STAMP-$PROFILE.md
HEADER=$WORK/header.md
{
    echo "# LDA throughput: glint-lda vs tomotopy ($PROFILE build)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`PROFILE=$PROFILE ITERS=$ITERS SYN_TOKENS=$SYN_TOKENS KS=\"$KS\" THREADS=\"$THREADS\" bash benchsuite/lda.sh\`"
    echo "- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo)"
    echo "- git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- settings: alpha $ALPHA, beta $BETA, $ITERS iterations, glint-lda --mh-steps $MH (embedded ps-core, shards = threads, no per-iteration log-likelihood), tomotopy $TOMOTOPY_VERSION LDAModel (optim_interval 0)"
    echo "- corpora: ${CORPORA[*]} (kernel: kernel-comments.tsv.gz ingested with the seed preset, --min-count 5; synthetic: LDA generative process, V = 50000, 100 true topics, mean length 200)"
} > "$HEADER"
"$PY" benchsuite/lda_bench.py report "$RESULTS" "$HEADER" > "$REPORT"
echo "== report: $REPORT"
cat "$REPORT"

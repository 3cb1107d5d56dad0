#!/usr/bin/env bash
# The ingest benchmark: builds glint-lda (release by default; PROFILE=dev for a quick check on a
# debug build), ingests three real corpora from ../shared/corpora with 1 and 2 threads, runs the
# Python reference (benchsuite/ingest_reference.py: gensim simple_preprocess + Snowball/Porter
# stems + counting, one core) on the same inputs, and records MB/s (uncompressed), docs/s, CPU
# time and peak RSS in benchsuite/results/ingest-<date>[-dev].md.
#
# The reference's packages are pinned and installed into benchsuite/.venv/ingest on first use.
# SKIP_PYTHON=1 skips the reference; CORPORA=DIR points at another corpora folder; REPS=N runs
# every measurement N times (both tools alike) and keeps the fastest, to damp a shared machine.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
  release) cargo build --release -p cli; BIN="$ROOT/target/release/glint-lda" ;;
  dev) cargo build -p cli; BIN="$ROOT/target/debug/glint-lda" ;;
  *) echo "PROFILE must be release or dev, not '$PROFILE'" >&2; exit 2 ;;
esac

CORPORA="${CORPORA:-$ROOT/../shared/corpora}"
for f in warc/docs-crawl.warc.gz kernel-comments.tsv.gz debian-descriptions.parquet; do
  [ -e "$CORPORA/$f" ] || { echo "missing $CORPORA/$f (set CORPORA=...)" >&2; exit 2; }
done

PY="${PYTHON:-python3}"
VENV="$ROOT/benchsuite/.venv/ingest"
if [ "${SKIP_PYTHON:-0}" != 1 ] && [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    gensim==4.3.3 numpy==1.26.4 scipy==1.13.1 PyStemmer==2.2.0.3 pyarrow==17.0.0 warcio==1.7.4
fi

REPS="${REPS:-1}"
WORK="$ROOT/benchsuite/work"
mkdir -p "$WORK" benchsuite/results
DATE="$(date -u +%Y-%m-%d)"
OUT="benchsuite/results/ingest-${DATE}.md"
if [ "$PROFILE" != release ]; then OUT="benchsuite/results/ingest-${DATE}-${PROFILE}.md"; fi
CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)"
ROWS="$WORK/rows.jsonl"
: > "$ROWS"

# best ERRFILE OUTFILE CMD...: runs CMD $REPS times, keeping the stdout/stderr of the fastest run.
best() {
  local err="$1" out="$2"; shift 2
  local best_wall="" i
  for i in $(seq "$REPS"); do
    "$@" > "$out.try" 2> "$err.try"
    local wall
    wall="$(tail -n1 "$err.try" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wall_seconds"])')"
    if [ -z "$best_wall" ] || python3 -c "import sys; sys.exit(0 if $wall < $best_wall else 1)"; then
      best_wall="$wall"; mv "$out.try" "$out"; mv "$err.try" "$err"
    fi
  done
  rm -f "$out.try" "$err.try"
}

# run NAME THREADS ARGS...: one glint-lda ingest, measured.
run() {
  local name="$1" threads="$2"; shift 2
  local report="$WORK/$name-$threads.json"
  echo ">> glint-lda ingest $name, $threads thread(s)" >&2
  best "$WORK/$name-$threads.err" "$WORK/$name-$threads.out" \
    python3 benchsuite/measure.py "$BIN" ingest "$@" --out "$WORK/corpus-$name" --threads "$threads" \
    --no-progress --report-json "$report"
  python3 - "$name" "$threads" "$report" "$WORK/$name-$threads.err" "$*" >> "$ROWS" <<'PYEOF'
import json, sys
name, threads, report, err, args = sys.argv[1:]
r = json.load(open(report))
m = json.loads(open(err).read().strip().splitlines()[-1])
print(json.dumps({"tool": "glint-lda", "corpus": name, "threads": int(threads), "args": args,
                  "docs": r["documents_read"], "kept": r["documents_kept"], "tokens": r["tokens"],
                  "vocab": r["vocabulary_size"], "bytes": r["uncompressed_bytes"], **m}))
PYEOF
}

# reference STEMMER NAME KIND PATH [COLUMN]: the Python reference, measured.
reference() {
  local stemmer="$1" name="$2"; shift 2
  echo ">> python reference ($stemmer) $name" >&2
  best "$WORK/py-$stemmer-$name.err" "$WORK/py-$stemmer-$name.out" \
    python3 benchsuite/measure.py "$VENV/bin/python" benchsuite/ingest_reference.py "$stemmer" "$@"
  python3 - "$name" "$WORK/py-$stemmer-$name.out" "$WORK/py-$stemmer-$name.err" "$stemmer" >> "$ROWS" <<'PYEOF'
import json, sys
name, out, err, stemmer = sys.argv[1:]
r = json.loads(open(out).read().strip().splitlines()[-1])
m = json.loads(open(err).read().strip().splitlines()[-1])
print(json.dumps({"tool": f"python ({stemmer})", "corpus": name, "threads": 1, "args": stemmer,
                  "docs": r["documents"], "kept": r["documents"], "tokens": r["tokens"],
                  "vocab": r["vocabulary"], "bytes": r["uncompressed_bytes"], **m}))
PYEOF
}

for t in 1 2; do
  run kernel-comments "$t" "$CORPORA/kernel-comments.tsv.gz"
  run docs-crawl-warc "$t" "$CORPORA/warc/docs-crawl.warc.gz"
  run debian-parquet "$t" "$CORPORA/debian-descriptions.parquet" --column description --id-column package
done
if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  for stemmer in pystemmer gensim; do
    reference "$stemmer" kernel-comments tsv "$CORPORA/kernel-comments.tsv.gz"
    reference "$stemmer" docs-crawl-warc warc "$CORPORA/warc/docs-crawl.warc.gz"
    reference "$stemmer" debian-parquet parquet "$CORPORA/debian-descriptions.parquet" description
  done
fi

TABLE="$(python3 - "$ROWS" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| tool | corpus | threads | docs | tokens | vocab | MB uncompr. | wall s | CPU s | MB/s | MB/s per CPU-s | docs/s | peak RSS MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    mb = r["bytes"] / 1e6
    print(f"| {r['tool']} | {r['corpus']} | {r['threads']} | {r['docs']} | {r['tokens']} | {r['vocab']} | {mb:.1f} "
          f"| {r['wall_seconds']:.2f} | {r['cpu_seconds']:.2f} | {mb / r['wall_seconds']:.1f} "
          f"| {mb / max(r['cpu_seconds'], 1e-9):.1f} | {r['docs'] / r['wall_seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
one = {r["corpus"]: r for r in rows if r["tool"] == "glint-lda" and r["threads"] == 1}
refs = [r for r in rows if r["tool"] != "glint-lda"]
if refs:
    print()
    print("Speed-up per core over the Python reference (uncompressed MB per CPU-second, glint-lda 1 thread):")
    print()
    for p in refs:
        g = one.get(p["corpus"])
        if g:
            ratio = (g["bytes"] / g["cpu_seconds"]) / (p["bytes"] / p["cpu_seconds"])
            print(f"- {p['corpus']} vs {p['tool']}: {ratio:.1f}x")
PYEOF
)"

{
  echo "# ingest benchmark, ${DATE}"
  echo
  if [ "$PROFILE" != release ]; then
    echo "**Debug-profile run (PROFILE=${PROFILE}): the ingest crate and dependencies are built at opt-level 2 but this is not the release build; use it to check the script, not as the project's figures.**"
    echo
  fi
  echo "- command: \`PROFILE=${PROFILE} REPS=${REPS} benchsuite/ingest.sh\` (each figure: fastest of ${REPS} run(s))"
  echo "- build profile: ${PROFILE}"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- nproc: $(nproc)"
  echo "- CPU: ${CPU:-unknown}"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
  echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- glint-lda: \`glint-lda ingest INPUT --out DIR --threads N\` (preset seed); parquet with \`--column description --id-column package\`"
  echo "- Python reference: \`benchsuite/ingest_reference.py\` (gensim 4.3.3 simple_preprocess + gensim stop words + Counter), one core, with PyStemmer 2.2.0.3 english (C) or gensim's pure-Python PorterStemmer (memoised)"
  echo "- MB = uncompressed text bytes (WARC: record payload bytes for the reference, decompressed WARC bytes for glint-lda); peak RSS from the child's rusage"
  echo "- targets (issue 3): >= 25 MB/s per core on plain text, >= 15 MB/s per core on WARC HTML, >= 10x the Python reference per core, kernel-comments under 1 GB RSS"
  echo
  echo "$TABLE"
} > "$OUT"
cat "$OUT"
echo "written to $OUT" >&2

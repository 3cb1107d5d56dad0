#!/usr/bin/env bash
# The parameter-server benchmark: builds glint-lda and the benchmark program cli/examples/ps_bench/
# (release by default; PROFILE=dev for a quick check), runs it (it spawns `glint-lda master` and
# `glint-lda server` processes from the built binary) and records the report with the machine and
# the command in benchsuite/results/ps-<date>-<HHMM>.md. Extra arguments go to ps_bench (e.g. --reps 3
# --batch 20000; `--help` lists them).
set -euo pipefail

cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
  release) cargo build --release -p cli --bin glint-lda --example ps_bench; DIR=target/release ;;
  dev) cargo build -p cli --bin glint-lda --example ps_bench; DIR=target/debug ;;
  *) echo "PROFILE must be release or dev, not '$PROFILE'" >&2; exit 2 ;;
esac

DATE="$(date -u +%Y-%m-%d)"
STAMP="${DATE}-$(date -u +%H%M)"
OUT="benchsuite/results/ps-${STAMP}.md"
if [ "$PROFILE" != release ]; then OUT="benchsuite/results/ps-${STAMP}-${PROFILE}.md"; fi
CMD="$DIR/examples/ps_bench --glint-lda $DIR/glint-lda $*"
CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)"
REPORT="$($CMD)"

{
  echo "# ps-core benchmark, ${DATE}"
  echo
  echo "- command: \`PROFILE=${PROFILE} benchsuite/ps.sh $*\` (runs \`${CMD}\`)"
  echo "- build profile: ${PROFILE}"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- nproc: $(nproc)"
  echo "- CPU: ${CPU:-unknown}"
  echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "$REPORT"
} > "$OUT"
cat "$OUT"
echo "written to $OUT" >&2

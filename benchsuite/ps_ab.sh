#!/usr/bin/env bash
# A/B of the parameter-server benchmark: cli/examples/ps_bench of a baseline commit against this
# checkout's, in the same run and alternating, so both see the same (shared, noisy) machine.
# The baseline is built in a git worktree with its own target directory (seeded from this
# checkout's, so only the workspace crates rebuild). Each round runs both programs once with the
# same arguments; the summary gives per-figure medians over the rounds and the ratio new/base.
# Result: results/ps-ab-DATE-HHMM.md (with every round's tables).
#
#   BASE=0eb761b ROUNDS=3 bash benchsuite/ps_ab.sh --reps 3 --servers 1 --inproc-shards 1,2
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE=${BASE:?set BASE to the baseline commit}
ROUNDS=${ROUNDS:-3}
BASE_TREE=${BASE_TREE:-/tmp/glint-ps-ab-$BASE}
BASE_TARGET=${BASE_TARGET:-/tmp/glint-ps-ab-target}
cargo build --release -p cli --bin glint-lda --example ps_bench
if [ ! -d "$BASE_TREE" ]; then git worktree add -q --detach "$BASE_TREE" "$BASE"; fi
if [ ! -d "$BASE_TARGET/release" ]; then mkdir -p "$BASE_TARGET" && cp -r target/release "$BASE_TARGET/"; fi
(cd "$BASE_TREE" && CARGO_TARGET_DIR=$BASE_TARGET cargo build --release -p cli --bin glint-lda --example ps_bench)
NEW=(target/release/examples/ps_bench --glint-lda target/release/glint-lda)
OLD=("$BASE_TARGET/release/examples/ps_bench" --glint-lda "$BASE_TARGET/release/glint-lda")
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=benchsuite/results/ps-ab-$STAMP.md
RAW=$(mktemp -d)
for r in $(seq "$ROUNDS"); do
    echo "== round $r: base" >&2
    "${OLD[@]}" "$@" > "$RAW/base-$r.md"
    echo "== round $r: new" >&2
    # This checkout's concurrent run also measures its one-lock setting; the A/B compares the
    # default (64 stripes) with the baseline's.
    "${NEW[@]}" "$@" --concurrent-stripes 64 > "$RAW/new-$r.md"
done
{
    echo "# ps-core A/B: $BASE against $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)"
    echo
    echo "- command: \`BASE=$BASE ROUNDS=$ROUNDS bash benchsuite/ps_ab.sh $*\`"
    echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    python3 - "$RAW" "$ROUNDS" <<'PY'
import re, statistics, sys
raw, rounds = sys.argv[1], int(sys.argv[2])

def figures(path):
    """Push updates/s per single path, and the concurrent row's figures."""
    out = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.match(r"(in-process|gRPC)", cells[0]):
            out[cells[0] + ": push updates/s (M)"] = float(cells[1].rstrip("M"))
        elif len(cells) in (4, 5) and re.match(r"^[\d.]+M$", cells[-4]):
            push, pulls, p50, p99 = cells[-4:]
            out["concurrent: push updates/s (M)"] = float(push.rstrip("M"))
            out["concurrent: pulls per run"] = float(pulls)
            out["concurrent: pull p50 (ms)"] = float(p50)
            out["concurrent: pull p99 (ms)"] = float(p99)
    return out

runs = {s: [figures(f"{raw}/{s}-{r}.md") for r in range(1, rounds + 1)] for s in ("base", "new")}
print(f"Medians over {rounds} alternating rounds (each round: both programs, the same arguments).\n")
print("| figure | base | new | new / base |")
print("|---|---:|---:|---:|")
for key in runs["new"][0]:
    b = [f[key] for f in runs["base"] if key in f]
    n = [f[key] for f in runs["new"] if key in f]
    if not b or not n:
        continue
    mb, mn = statistics.median(b), statistics.median(n)
    print(f"| {key} | {mb:.2f} | {mn:.2f} | {mn / mb:.2f}× |")
for s in ("base", "new"):
    for r in range(1, rounds + 1):
        print(f"\n<details><summary>{s}, round {r}</summary>\n")
        print(open(f"{raw}/{s}-{r}.md", encoding="utf-8").read())
        print("</details>")
PY
} > "$OUT"
rm -rf "$RAW"
sed -n '1,30p' "$OUT"
echo "written to $OUT" >&2

"""Loads the five files of `glint-lda topics --format pyldavis` into pyLDAvis.prepare (which
validates them: shapes, distributions summing to 1, lengths), saves the visualisation as HTML and
prints a Markdown summary. Exits non-zero when a file is missing, inconsistent or refused.

    python pyldavis_check.py EXPORT_DIR OUT_HTML
"""

import json
import sys
from pathlib import Path

import numpy as np
import pyLDAvis


def main() -> int:
    export, html = Path(sys.argv[1]), Path(sys.argv[2])
    phi = np.load(export / "topic_term_dists.npy")
    theta = np.load(export / "doc_topic_dists.npy")
    lengths = json.loads((export / "doc_lengths.json").read_text(encoding="utf-8"))
    vocab = json.loads((export / "vocab.json").read_text(encoding="utf-8"))
    freq = json.loads((export / "term_frequency.json").read_text(encoding="utf-8"))
    k, v = phi.shape
    d = theta.shape[0]
    problems = []
    if theta.shape != (d, k):
        problems.append(f"doc_topic_dists is {theta.shape}, expected ({d}, {k})")
    if len(lengths) != d:
        problems.append(f"{len(lengths)} document lengths for {d} documents")
    if len(vocab) != v or len(freq) != v:
        problems.append(f"{len(vocab)} terms and {len(freq)} frequencies for {v} columns")
    for name, m in (("topic_term_dists", phi), ("doc_topic_dists", theta)):
        worst = float(np.abs(m.sum(axis=1) - 1.0).max()) if m.size else 0.0
        if worst > 1e-6:
            problems.append(f"{name} rows sum to 1 only within {worst:.2e}")
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        return 1
    # pyLDAvis.prepare checks the inputs itself and raises on anything it cannot use.
    vis = pyLDAvis.prepare(phi, theta, lengths, vocab, freq, sort_topics=False, n_jobs=1)
    pyLDAvis.save_html(vis, str(html))
    info = vis.topic_info
    topic1 = info[info.Category == "Topic1"].sort_values("logprob", ascending=False)
    print(f"- topics: {k}; terms: {v}; documents: {d}; tokens: {sum(lengths)}")
    print(f"- pyLDAvis {pyLDAvis.__version__} prepared {len(vis.topic_coordinates)} topic "
          f"coordinates and {len(info)} topic-term rows")
    print(f"- topic 1, most probable terms: {', '.join(topic1.Term.head(8))}")
    print(f"- HTML: {html} ({html.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

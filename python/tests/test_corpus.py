"""Corpus: ingest from texts, WARC and files with the analyzer of `glint-lda ingest`, and the
corpus directory format both ways."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import glint_lda
from glint_lda import Corpus, GlintError

from conftest import run_cli


def test_from_texts_counts_add_up(corpus: Corpus, texts: list) -> None:
    assert len(corpus) == len(texts)
    assert corpus.ids == [str(i) for i in range(len(texts))]
    v = len(corpus.vocabulary)
    counts = corpus.term_counts
    assert counts.dtype == np.uint64 and counts.shape == (v,)
    assert int(counts.sum()) == corpus.num_tokens == sum(len(t.split()) for t in texts)
    assert len(corpus.display_vocabulary) == v
    # Ids are ranked by descending count, as ingest ranks them.
    assert all(counts[:-1] >= counts[1:])
    for i in (0, -1):
        tokens = corpus.tokens(i)
        assert tokens.dtype == np.uint32 and int(tokens.max()) < v
        assert corpus.terms(i) == [corpus.vocabulary[t] for t in tokens]
    with pytest.raises(IndexError):
        corpus.tokens(len(corpus))


def test_seed_analyzer_stems_and_drops_stop_words() -> None:
    c = Corpus.from_texts(["The runners were running quickly", "a runner runs"], ids=["x", "y"])
    assert c.ids == ["x", "y"]
    assert c.terms(0) == ["runner", "run", "quick"]
    # Stems are shown by their most frequent surface form.
    shown = dict(zip(c.vocabulary, c.display_vocabulary))
    assert shown["quick"] == "quickly"
    assert c.analyzer["stem"] == "english" and c.analyzer["stopwords"] == "english"


def test_analyzer_options_mirror_the_ingest_flags() -> None:
    texts = ["Running dogs 42 running", "dogs bark", "x"]
    raw = Corpus.from_texts(texts, preset="none")
    assert raw.terms(0) == ["running", "dogs", "42", "running"]
    no_stem = Corpus.from_texts(texts, stem=None, stopwords="none", min_len=1)
    assert no_stem.terms(0) == ["running", "dogs", "running"]
    frequent = Corpus.from_texts(texts, preset="none", min_count=2)
    assert sorted(frequent.vocabulary) == ["dogs", "running"]
    top = Corpus.from_texts(texts, preset="none", vocab_size=1)
    assert top.vocabulary in (["dogs"], ["running"])
    # A term in every document is dropped by max_df as a fraction, kept as a count of 3.
    everywhere = ["apple pear", "apple fig", "apple plum"]
    assert "appl" not in Corpus.from_texts(everywhere, max_df=0.5).vocabulary
    assert "appl" in Corpus.from_texts(everywhere, max_df=3).vocabulary


def test_empty_documents_are_skipped_and_counted() -> None:
    c = Corpus.from_texts(["cats and dogs", "", "the of and", "dogs again"])
    assert c.ids == ["0", "3"]
    assert sum(c.skipped.values()) == 2


def test_line_breaks_and_tabs_inside_a_text_stay_in_one_document() -> None:
    c = Corpus.from_texts(["apples\tpears\nplums\r\nfigs"])
    assert len(c) == 1 and len(c.terms(0)) == 4


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'stemmer'"):
        Corpus.from_texts(["a b c"], stemmer="english")
    with pytest.raises(TypeError):
        Corpus.from_texts("one string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        Corpus.from_texts(["fine", 3])
    with pytest.raises(ValueError, match="fewer ids"):
        Corpus.from_texts(["a", "b"], ids=["x"])
    with pytest.raises(ValueError, match="max_df"):
        Corpus.from_texts(["a"], max_df=1.5)
    # The library's own message comes through.
    with pytest.raises(GlintError, match="klingon"):
        Corpus.from_texts(["some words here"], stem="klingon")
    with pytest.raises(GlintError, match="no document was kept"):
        Corpus.from_texts(["the of and"])


def test_save_and_open_round_trip(corpus: Corpus, tmp_path: Path) -> None:
    corpus.save(tmp_path / "c")
    again = Corpus.open(tmp_path / "c")
    assert again.ids == corpus.ids
    assert again.vocabulary == corpus.vocabulary
    assert again.display_vocabulary == corpus.display_vocabulary
    assert again.analyzer == corpus.analyzer
    assert all(np.array_equal(again.tokens(i), corpus.tokens(i)) for i in range(len(corpus)))
    with pytest.raises(GlintError, match="manifest.json"):
        Corpus.open(tmp_path / "missing")


def test_from_texts_matches_glint_lda_ingest(cli: Path, texts: list, tmp_path: Path) -> None:
    tsv = tmp_path / "docs.tsv"
    tsv.write_text("".join(f"{i}\t{t}\n" for i, t in enumerate(texts)))
    run_cli(cli, "ingest", tsv, "--out", tmp_path / "c", "--min-count", 2)
    theirs = Corpus.open(tmp_path / "c")
    ours = Corpus.from_texts(texts, min_count=2)
    assert ours.vocabulary == theirs.vocabulary and ours.ids == theirs.ids
    assert all(np.array_equal(ours.tokens(i), theirs.tokens(i)) for i in range(len(ours)))
    # And the CLI trains on a corpus Python wrote.
    ours.save(tmp_path / "py")
    run_cli(cli, "train", "--corpus", tmp_path / "py", "--topics", 2, "--iterations", 2,
            "--threads", 1, "--out", tmp_path / "m")
    assert (tmp_path / "m" / "phi.npy").is_file()


def _warc(pages: list) -> bytes:
    out = b""
    for i, html in enumerate(pages):
        body = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n{html}".encode()
        head = (
            "WARC/1.0\r\nWARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n"
            f"WARC-Target-URI: http://example.invalid/{i}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out += head + body + b"\r\n\r\n"
    return out


def test_from_warc_and_ingest(tmp_path: Path) -> None:
    pages = ["<html><body><p>Kittens purr softly</p></body></html>",
             "<html><body><p>Markets tumbled sharply today</p></body></html>"]
    path = tmp_path / "crawl.warc.gz"
    path.write_bytes(gzip.compress(_warc(pages)))
    c = Corpus.from_warc(path)
    assert len(c) == 2 and "kitten" in c.vocabulary and "market" in c.vocabulary
    lines = tmp_path / "docs.txt"
    lines.write_text("alpha beta gamma\ndelta epsilon\n")
    d = Corpus.ingest([lines], format="lines", preset="none")
    assert len(d) == 2 and d.num_tokens == 5


def test_from_parquet_reports_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GlintError, match="nothing.parquet"):
        Corpus.from_parquet(tmp_path / "nothing.parquet", column="text")


def test_from_parquet_reads_a_string_column(corpus: Corpus, tmp_path: Path) -> None:
    """Without pyarrow: the corpus format's own Parquet parts have a string column, `id`."""
    corpus.save(tmp_path / "c")
    parts = sorted((tmp_path / "c" / "docs").glob("*.parquet"))
    c = Corpus.from_parquet(parts, column="id", preset="none")
    assert len(c) == len(corpus)
    assert [c.terms(i) for i in range(len(c))] == [[i] for i in corpus.ids]


def test_from_parquet_reads_a_text_column(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"name": ["a", "b"], "body": ["kittens purr", "markets tumbled"]})
    pq.write_table(table, tmp_path / "t.parquet")
    c = Corpus.from_parquet(tmp_path / "t.parquet", column="body", id_column="name")
    assert c.ids == ["a", "b"] and c.num_tokens == 4


def test_version() -> None:
    assert glint_lda.__version__


def test_ctrl_c_cancels_an_ingest(tmp_path: Path) -> None:
    import _thread
    import threading
    import time

    line = " ".join(f"word{i % 997}x" for i in range(60)) + "\n"
    path = tmp_path / "big.txt"
    with open(path, "w") as f:
        for _ in range(20):
            f.write(line * 10_000)  # about 60 MB in all
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            Corpus.ingest(path, format="lines", preset="none", threads=2)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20

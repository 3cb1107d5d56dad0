"""LDA: training on the embedded parameter server, inference, evaluation, the model directory
(shared with the `glint-lda` binary), Ctrl-C, errors and the GIL."""

from __future__ import annotations

import _thread
import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import glint_lda
from glint_lda import LDA, Corpus, GlintError
from glint_lda._glint_lda import _Model

from conftest import MONEY, PETS, Fitted, run_cli, theme_texts


def test_fit_keeps_the_counts_consistent(fitted: Fitted, corpus: Corpus) -> None:
    lda = fitted.lda
    lda.check_invariants()
    phi = lda.topic_word_
    assert phi.shape == (2, len(corpus.vocabulary))
    assert phi.dtype == np.float64 and not phi.flags.writeable
    np.testing.assert_allclose(phi.sum(axis=1), 1.0, rtol=1e-12)
    assert lda.vocabulary_ == corpus.vocabulary
    assert lda.n_iter_ == 40
    h = lda.hyperparameters_
    assert (h["topics"], h["vocabulary"], h["tokens"], h["documents"]) == (
        2, len(corpus.vocabulary), corpus.num_tokens, len(corpus))
    assert (h["alpha"], h["beta"]) == (0.5, 0.01)


def test_an_optimised_alpha_is_used_saved_and_loaded(corpus: Corpus, tmp_path: Path) -> None:
    lda = LDA(k=3, alpha=0.5, iterations=12, threads=1, seed=3, optimize_interval=4,
              optimize_burn_in=4).fit(corpus)
    alpha = lda.hyperparameters_["alpha"]
    # Two themes in three topics: the optimum is far from symmetric.
    assert isinstance(alpha, list) and len(alpha) == 3 and len(set(alpha)) == 3
    assert all(a > 0 for a in alpha)
    lda.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "hyperparameters.json").read_text())
    assert saved["alpha"] == alpha
    again = LDA.load(tmp_path / "m")
    assert again.hyperparameters_["alpha"] == alpha and again.alpha is None
    # θ follows the same α: θ_dk = (n_dk + α_k)/(N_d + Σα) sums to 1 over k.
    theta = lda._fitted().doc_topic()[1]
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)


def test_callback_is_called_once_per_iteration(fitted: Fitted) -> None:
    calls = fitted.calls
    assert [c["iteration"] for c in calls] == list(range(1, 41))
    for key in ("loglik", "tokens_per_s", "train_seconds", "joint_perplexity", "seconds"):
        assert all(isinstance(c[key], float) for c in calls), key
    assert all(c["heldout_perplexity"] is None for c in calls)
    times = [c["train_seconds"] for c in calls]
    assert times == sorted(times)
    assert fitted.lda.metrics_ == calls


def test_topics_are_the_two_themes(fitted: Fitted, stems: dict) -> None:
    tops = [set(words) for words in fitted.lda.top_words(5, raw_terms=True)]
    themes = [stems["pets"], stems["money"]]
    which = [0 if t <= themes[0] else 1 if t <= themes[1] else None for t in tops]
    assert sorted(which, key=str) == [0, 1], tops
    # Shown words are surface forms: "puppy", not the stem "puppi".
    shown = {w for topic in fitted.lda.top_words(10) for w in topic}
    assert shown <= set(PETS) | set(MONEY)


def test_one_thread_is_reproducible(corpus: Corpus, fitted: Fitted) -> None:
    again = LDA(k=2, alpha=0.5, iterations=40, threads=1, seed=7).fit(corpus)
    assert np.array_equal(again.topic_word_, fitted.lda.topic_word_)
    other = LDA(k=2, alpha=0.5, iterations=40, threads=1, seed=8).fit(corpus)
    assert not np.array_equal(other.topic_word_, fitted.lda.topic_word_)


def test_two_threads_are_reproducible_too(corpus: Corpus) -> None:
    runs = [LDA(k=3, iterations=15, threads=2, shards=3, seed=4).fit(corpus) for _ in range(2)]
    assert np.array_equal(runs[0].topic_word_, runs[1].topic_word_)


def test_two_threads_and_mh(corpus: Corpus) -> None:
    lda = LDA(k=3, iterations=10, threads=2, sampler="mh", shards=3, seed=2).fit(corpus)
    lda.check_invariants()
    assert lda.topic_word_.shape[0] == 3


def test_fit_accepts_texts_and_fit_transform(texts: list) -> None:
    lda = LDA(k=2, alpha=0.5, iterations=5, threads=1)
    theta = lda.fit_transform(texts)
    assert theta.shape == (len(texts), 2)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)


def test_transform(fitted: Fitted, stems: dict) -> None:
    lda = fitted.lda
    docs = ["kitten puppy leash collar fur", "dividend broker equity bond", "", "unknown words only"]
    theta = lda.transform(docs)
    assert theta.shape == (4, 2)
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-12)
    pets_topic = 0 if stems["pets"] >= set(lda.top_words(3, raw_terms=True)[0]) else 1
    assert theta[0, pets_topic] > 0.7 and theta[1, 1 - pets_topic] > 0.7
    # No known term: the prior's mean (uniform for a symmetric α).
    np.testing.assert_allclose(theta[2:], 0.5)
    # A Corpus works too, aligned by term, and a seed reproduces the draw.
    c = Corpus.from_texts(docs[:2])
    np.testing.assert_array_equal(lda.transform(c, seed=3), lda.transform(docs[:2], seed=3))
    gibbs = lda.transform(docs[:2], method="gibbs", sweeps=40, burn_in=20)
    assert gibbs[0, pets_topic] > 0.7
    sparse = lda.transform(docs, method="sparse", sweeps=40, burn_in=20)
    assert sparse[0, pets_topic] > 0.7 and sparse[1, 1 - pets_topic] > 0.7
    np.testing.assert_allclose(sparse[2:], 0.5)
    with pytest.raises(ValueError, match="'sparse'"):
        lda.transform(docs, method="dense")
    with pytest.raises(TypeError, match="not one str"):
        lda.transform("a single string")
    with pytest.raises(ValueError, match="burn-in"):
        lda.transform(docs, sweeps=5, burn_in=5)


def test_perplexity_beats_a_uniform_model(fitted: Fitted, test_texts: list, tmp_path: Path) -> None:
    test = Corpus.from_texts(test_texts)
    trained = fitted.lda.perplexity(test)
    assert math.isfinite(trained)
    v = len(fitted.lda.vocabulary_)
    # A model of uniform topics (written as any baseline would: phi.npy + vocab.txt) scores V.
    uniform = tmp_path / "uniform"
    uniform.mkdir()
    np.save(uniform / "phi.npy", np.full((2, v), 1.0 / v))
    (uniform / "vocab.txt").write_text("".join(t + "\n" for t in fitted.lda.vocabulary_))
    (uniform / "hyperparameters.json").write_text(json.dumps({"alpha": 0.5}))
    flat = LDA.load(uniform).perplexity(test)
    assert flat == pytest.approx(v, rel=1e-9)
    assert trained < 0.7 * flat
    # So does the untrained random start, and texts give the same figure as their Corpus.
    start = LDA(k=2, alpha=0.5, iterations=0, threads=1, seed=7).fit(Corpus.from_texts(theme_texts(120, 11)))
    assert trained < start.perplexity(test)
    assert fitted.lda.perplexity(test_texts) == trained
    details = fitted.lda.perplexity(test, details=True)
    assert details["held_out_tokens"] > 0 and details["perplexity"] == trained


def test_held_out_perplexity_while_training(corpus: Corpus, test_texts: list) -> None:
    calls = []
    LDA(k=2, alpha=0.5, iterations=12, threads=1).fit(
        corpus, test=test_texts, callback=calls.append, eval_every=5)
    scored = [c["iteration"] for c in calls if c["heldout_perplexity"] is not None]
    assert scored == [5, 10, 12]
    assert all(math.isfinite(c["heldout_perplexity"]) for c in calls if c["iteration"] in scored)


def test_coherence(fitted: Fitted, corpus: Corpus) -> None:
    npmi = fitted.lda.coherence(corpus)
    assert -1.0 <= npmi <= 1.0
    assert fitted.lda.coherence(corpus, measure="umass", top_n=5) <= 0.0
    with pytest.raises(ValueError):
        fitted.lda.coherence(corpus, measure="cv")


def test_save_load_round_trip(fitted: Fitted, tmp_path: Path) -> None:
    lda = fitted.lda
    lda.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"phi.npy", "vocab.txt", "hyperparameters.json", "word_topic.parquet",
            "topic_totals.json", "doc_topic.parquet", "corpus.json", "metrics.jsonl"} <= names
    np.testing.assert_array_equal(np.load(tmp_path / "m" / "phi.npy"), lda.topic_word_)
    loaded = LDA.load(tmp_path / "m")
    assert np.array_equal(loaded.topic_word_, lda.topic_word_)
    assert loaded.vocabulary_ == lda.vocabulary_
    assert loaded.top_words(5) == lda.top_words(5)
    assert loaded.hyperparameters_ == lda.hyperparameters_
    assert loaded.metrics_ == lda.metrics_ and loaded.n_iter_ == 40
    assert (loaded.k, loaded.alpha, loaded.seed) == (2, 0.5, 7)
    loaded.check_invariants()
    docs = ["kitten puppy collar", "bond broker"]
    np.testing.assert_array_equal(loaded.transform(docs), lda.transform(docs))
    # A loaded model writes back what it read.
    loaded.save(tmp_path / "again")
    twice = LDA.load(tmp_path / "again")
    assert np.array_equal(twice.topic_word_, lda.topic_word_)
    assert (tmp_path / "again" / "word_topic.parquet").is_file()
    with pytest.raises(GlintError, match="cannot be trained further"):
        loaded._model.run(1)


def test_cli_reads_a_saved_model(cli: Path, fitted: Fitted, tmp_path: Path) -> None:
    fitted.lda.save(tmp_path / "m")
    out = run_cli(cli, "topics", "--model", tmp_path / "m", "--top", 5).stdout
    assert out.count("topic") >= 2
    (tmp_path / "new.tsv").write_text("a\tkitten puppy\nb\tbond broker\n")
    run_cli(cli, "infer", "--model", tmp_path / "m", "--input", tmp_path / "new.tsv",
            "--out", tmp_path / "theta")
    assert (tmp_path / "theta" / "theta.parquet").is_file()


def test_load_reads_a_cli_model(cli: Path, texts: list, tmp_path: Path) -> None:
    (tmp_path / "docs.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in enumerate(texts)))
    run_cli(cli, "ingest", tmp_path / "docs.tsv", "--out", tmp_path / "c")
    run_cli(cli, "train", "--corpus", tmp_path / "c", "--topics", 2, "--iterations", 20,
            "--alpha", 0.5, "--threads", 1, "--out", tmp_path / "m")
    lda = LDA.load(tmp_path / "m")
    assert lda.k == 2 and lda.n_iter_ == 20
    np.testing.assert_allclose(lda.topic_word_.sum(axis=1), 1.0, rtol=1e-12)
    theta = lda.transform(["kitten puppy collar fur"])
    assert theta.max() > 0.7
    lda.check_invariants()


def test_callback_exception_stops_training_consistently(corpus: Corpus) -> None:
    def stop_at_3(stats: dict) -> None:
        if stats["iteration"] == 3:
            raise KeyboardInterrupt

    lda = LDA(k=2, iterations=50, threads=1)
    with pytest.raises(KeyboardInterrupt):
        lda.fit(corpus, callback=stop_at_3)
    assert lda.n_iter_ == 3 and len(lda.metrics_) == 3
    lda.check_invariants()
    np.testing.assert_allclose(lda.topic_word_.sum(axis=1), 1.0, rtol=1e-12)
    with pytest.raises(ZeroDivisionError):
        LDA(k=2, iterations=5, threads=1).fit(corpus, callback=lambda s: 1 / 0)


def test_ctrl_c_stops_a_long_fit(corpus: Corpus) -> None:
    """SIGINT's handler is run by the native loop's signal check between iterations (no Python
    callback involved)."""
    model = _Model.train(corpus, 2, threads=1)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.run(10_000_000)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30
    assert 0 < model.iterations < 10_000_000
    model.check_invariants()


def test_transform_releases_the_gil(fitted: Fitted) -> None:
    docs = theme_texts(400, seed=5, words=60)
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        time.sleep(0.05)
        before = count[0]
        started = time.monotonic()
        fitted.lda.transform(docs, method="gibbs", sweeps=200, burn_in=100, threads=1)
        elapsed = time.monotonic() - started
        during = count[0] - before
    finally:
        stop.set()
        worker.join()
    # Holding the GIL, the spinning thread would get at most a few switch intervals (5 ms).
    assert elapsed > 0.05 and during > 1000, (elapsed, during)


def test_progress_bar_and_its_fallback(corpus: Corpus, capsys, monkeypatch) -> None:
    LDA(k=2, iterations=3, threads=1).fit(corpus, progress=True)
    err = capsys.readouterr().err
    if "tqdm" in __import__("sys").modules:
        assert "3/3" in err
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    LDA(k=2, iterations=3, threads=1).fit(corpus, progress=True)
    assert "iteration 3/3" in capsys.readouterr().err


def test_errors(corpus: Corpus, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LDA(k=1).fit(corpus)
    with pytest.raises(ValueError, match="sampler"):
        LDA(k=2, sampler="fast").fit(corpus)
    with pytest.raises(AttributeError, match="not fitted"):
        LDA(k=2).topic_word_
    with pytest.raises(GlintError, match="phi.npy"):
        LDA.load(tmp_path)
    with pytest.raises(TypeError):
        LDA(k=2, iterations=1).fit(corpus, test=42)


def test_params_and_repr() -> None:
    lda = LDA(k=5, beta=0.1)
    assert lda.get_params()["beta"] == 0.1
    assert repr(lda) == "LDA(k=5, beta=0.1)"
    assert lda.set_params(iterations=7).iterations == 7
    with pytest.raises(ValueError):
        lda.set_params(kk=1)
    assert isinstance(glint_lda.GlintError("x"), Exception)

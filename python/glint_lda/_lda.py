"""The :class:`LDA` estimator: parameters, progress display and numpy conveniences over the
native model (``_glint_lda._Model``), which trains, infers and saves."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from ._glint_lda import Corpus, _Model

Documents = Union[Corpus, Iterable[str]]
Callback = Callable[[Dict[str, Any]], None]

_PARAMS = ("k", "alpha", "beta", "iterations", "threads", "seed", "sampler", "mh_steps", "shards",
           "optimize_interval", "optimize_burn_in")


class _Progress:
    """A tqdm bar when tqdm is importable, else one updating line on stderr; nothing when off."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._total = total
        self._bar: Any = None
        self._plain = False
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            self._plain = True
        else:
            self._bar = tqdm(total=total, unit="it", desc="LDA")

    def update(self, stats: Dict[str, Any]) -> None:
        shown = {}
        if stats.get("loglik") is not None:
            shown["loglik"] = f"{stats['loglik']:.4e}"
        if stats.get("heldout_perplexity") is not None:
            shown["perplexity"] = f"{stats['heldout_perplexity']:.1f}"
        shown["tokens/s"] = f"{stats['tokens_per_s'] / 1e6:.2f}M"
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)
        elif self._plain:
            fields = "  ".join(f"{k} {v}" for k, v in shown.items())
            sys.stderr.write(f"\riteration {stats['iteration']}/{self._total}  {fields}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._plain:
            sys.stderr.write("\n")
            sys.stderr.flush()


class LDA:
    """Latent Dirichlet Allocation by collapsed Gibbs sampling on an embedded parameter server.

    Parameters
    ----------
    k:
        Number of topics (at least 2).
    alpha:
        Document-topic prior; default ``50 / k``.
    beta:
        Topic-word prior.
    iterations:
        Gibbs iterations ``fit`` runs.
    threads:
        Sampler threads (and in-process shards unless ``shards`` is given); default: all cores.
        With one thread the chain is exact; with any number it is reproducible from ``seed``
        (each thread sees the others' moves from the next iteration on, as
        ``glint-lda train --sync deterministic``).
    seed:
        Seed of every random stream (training, and the default of inference).
    sampler:
        ``"gibbs"`` (exact O(K) draw), ``"sparse"`` (the same exact draw over the document's
        topics and a tree of the word's, O(K_d + log K)), ``"mh"`` (Metropolis-Hastings, O(1)
        per token) or ``"auto"`` (gibbs up to K = 200, sparse above, as ``glint-lda train``).
    mh_steps:
        Metropolis-Hastings cycles per token with ``sampler="mh"``.
    shards:
        In-process parameter-server shards; default ``threads``.
    optimize_interval:
        Optimise an asymmetric α every this many iterations (Minka's fixed point, as
        ``glint-lda train --optimize-interval``); 0 keeps α symmetric at ``alpha``.
    optimize_burn_in:
        Iterations before α is first optimised.

    Attributes (after ``fit`` or ``load``): ``topic_word_`` (φ, K × V), ``vocabulary_``,
    ``n_iter_``, ``metrics_`` (one dict per iteration), ``hyperparameters_``.
    """

    def __init__(
        self,
        k: int,
        alpha: Optional[float] = None,
        beta: float = 0.01,
        iterations: int = 100,
        threads: Optional[int] = None,
        seed: int = 1,
        sampler: str = "auto",
        mh_steps: int = 2,
        shards: Optional[int] = None,
        optimize_interval: int = 10,
        optimize_burn_in: int = 50,
    ) -> None:
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.iterations = iterations
        self.threads = threads
        self.seed = seed
        self.sampler = sampler
        self.mh_steps = mh_steps
        self.shards = shards
        self.optimize_interval = optimize_interval
        self.optimize_burn_in = optimize_burn_in
        self._model: Optional[_Model] = None
        self._topic_word: Optional[np.ndarray] = None
        self._topic_word_at = -1

    # -- scikit-learn conventions ------------------------------------------------------------

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor's parameters (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> "LDA":
        """Sets constructor parameters; they apply to the next ``fit``."""
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValueError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = LDA(2).get_params()
        shown = [f"k={self.k}"] + [
            f"{n}={getattr(self, n)!r}"
            for n in _PARAMS
            if n != "k" and getattr(self, n) != defaults[n]
        ]
        return f"LDA({', '.join(shown)})"

    # -- training -----------------------------------------------------------------------------

    def fit(
        self,
        corpus: Documents,
        test: Optional[Documents] = None,
        callback: Optional[Callback] = None,
        progress: bool = False,
        eval_every: int = 10,
        eval_sweeps: int = 100,
    ) -> "LDA":
        """Trains ``iterations`` Gibbs iterations on ``corpus`` from a fresh random start.

        ``corpus`` is a :class:`Corpus` (or a list of str, ingested with the default analyzer).
        After every iteration ``callback(stats)`` gets a dict: iteration, loglik,
        joint_perplexity, tokens_per_s, seconds, train_seconds, ps_wait_seconds and
        heldout_perplexity -- the held-out perplexity of ``test`` (a Corpus, or texts analysed
        like the training corpus) every ``eval_every`` iterations and after the last, else
        None. ``progress=True`` shows a tqdm bar (or a line on stderr without tqdm).

        Ctrl-C (KeyboardInterrupt), or an exception from ``callback``, stops training after the
        current iteration: the exception propagates and the model stays usable at the
        iterations completed (``n_iter_``).
        """
        if not isinstance(corpus, Corpus):
            corpus = Corpus.from_texts(corpus)
        self._model = _Model.train(
            corpus,
            self.k,
            alpha=self.alpha,
            beta=self.beta,
            seed=self.seed,
            sampler=self.sampler,
            mh_steps=self.mh_steps,
            threads=self.threads,
            shards=self.shards,
            optimize_interval=self.optimize_interval,
            optimize_burn_in=self.optimize_burn_in,
        )
        self._topic_word = None
        bar = _Progress(self.iterations, progress)

        def on_iteration(stats: Dict[str, Any]) -> None:
            bar.update(stats)
            if callback is not None:
                callback(stats)

        try:
            self._model.run(
                self.iterations,
                callback=on_iteration,
                test=test,
                eval_every=eval_every,
                eval_sweeps=eval_sweeps,
            )
        finally:
            bar.close()
        return self

    def fit_transform(self, corpus: Documents, **fit_options: Any) -> np.ndarray:
        """``fit``, then θ of the training documents, (n_dk + α_k)/(N_d + Σα), documents × K."""
        self.fit(corpus, **fit_options)
        return self._fitted().doc_topic()[1]

    # -- the fitted model ---------------------------------------------------------------------

    def _fitted(self) -> _Model:
        if self._model is None:
            raise AttributeError("this LDA is not fitted yet: call fit() or LDA.load()")
        return self._model

    @property
    def topic_word_(self) -> np.ndarray:
        """φ: K × V float64, row k is topic k's distribution over ``vocabulary_`` (read-only)."""
        model = self._fitted()
        at = model.iterations
        if self._topic_word is None or self._topic_word_at != at:
            phi = model.topic_word()
            phi.flags.writeable = False
            self._topic_word, self._topic_word_at = phi, at
        return self._topic_word

    @property
    def vocabulary_(self) -> List[str]:
        """The term of each column of ``topic_word_``."""
        return self._fitted().vocabulary()

    @property
    def n_iter_(self) -> int:
        """Iterations trained."""
        return self._fitted().iterations

    @property
    def metrics_(self) -> List[Dict[str, Any]]:
        """One dict per iteration trained (as ``metrics.jsonl``)."""
        return self._fitted().metrics()

    @property
    def hyperparameters_(self) -> Dict[str, Any]:
        """The model's ``hyperparameters.json``: topics, vocabulary, alpha, beta, iterations..."""
        return self._fitted().hyperparameters()

    def top_words(self, n: int = 10, raw_terms: bool = False) -> List[List[str]]:
        """The ``n`` most probable words of each topic, most probable first. Stemmed terms are
        shown by their most frequent surface form unless ``raw_terms``."""
        return self._fitted().top_words(n, raw_terms)

    def transform(
        self,
        docs: Documents,
        sweeps: int = 20,
        burn_in: int = 10,
        method: str = "mh",
        seed: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> np.ndarray:
        """θ of new documents with φ fixed (``glint-lda infer``): documents × K, rows summing to 1.

        ``docs`` is a :class:`Corpus` (aligned to the model by term) or a list of str, analysed
        as the training corpus was. Unknown terms are dropped; a document left without known
        terms gets the prior's mean. ``method`` is ``"mh"`` (fast), ``"sparse"`` (the exact
        Gibbs conditional over the document's topics) or ``"gibbs"`` (all K topics per token).
        Each document's random stream comes from ``seed`` and its words, so it gets the same θ
        in any batch.
        """
        return self._fitted().transform(
            docs,
            sweeps=sweeps,
            burn_in=burn_in,
            method=method,
            seed=self.seed if seed is None else seed,
            threads=self.threads if threads is None else threads,
        )

    def perplexity(
        self,
        test: Documents,
        sweeps: int = 100,
        burn_in: int = 50,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
        details: bool = False,
    ) -> Any:
        """Held-out perplexity of ``test`` by document completion (as ``glint-lda eval``): even
        positions of each document observed, odd held out, θ folded in from the observed half.
        Returns a float, or with ``details`` the dict with the token and document counts."""
        report = self._fitted().perplexity(
            test,
            sweeps=sweeps,
            burn_in=burn_in,
            seed=self.seed if seed is None else seed,
            threads=self.threads if threads is None else threads,
        )
        return report if details else float(report["perplexity"])

    def coherence(self, corpus: Documents, measure: str = "npmi", top_n: int = 10) -> float:
        """Mean coherence of the topics' ``top_n`` words over the documents of ``corpus``
        (normally the training corpus): ``"npmi"`` or ``"umass"``."""
        if measure not in ("npmi", "umass"):
            raise ValueError(f"measure must be 'npmi' or 'umass', got {measure!r}")
        return float(self._fitted().coherence(corpus, top_n=top_n)[measure])

    def check_invariants(self) -> None:
        """Raises :class:`GlintError` unless the counts add up (Σ_k n_wk = occurrences of w,
        Σ_w n_wk = n_k, Σ n_k = tokens)."""
        self._fitted().check_invariants()

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the model directory of ``glint-lda train`` (phi.npy, vocab.txt,
        hyperparameters.json, word_topic.parquet, topic_totals.json, doc_topic.parquet,
        corpus.json, metrics.jsonl), which ``glint-lda topics/eval/infer`` and
        :meth:`LDA.load` read."""
        self._fitted().save(os.fspath(path))

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "LDA":
        """Reads a model directory written by ``glint-lda train`` or :meth:`save` (any
        directory with phi.npy and vocab.txt). A loaded model transforms, scores and saves,
        but cannot be trained further."""
        model = _Model.load(os.fspath(path))
        hyper = model.hyperparameters()
        lda = cls(int(hyper["topics"]))
        for name in ("alpha", "beta", "iterations", "seed", "threads"):
            # An optimised α is one value per topic: the parameter stays the symmetric default.
            if hyper.get(name) is not None and not isinstance(hyper[name], list):
                setattr(lda, name, hyper[name])
        if hyper.get("mh_steps") is not None:
            lda.mh_steps = hyper["mh_steps"]
        lda._model = model
        return lda

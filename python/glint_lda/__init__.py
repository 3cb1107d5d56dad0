"""glint-lda from Python: LDA topic models trained on an embedded parameter server.

* :class:`Corpus` -- a token-id corpus, made by the same pipeline as ``glint-lda ingest``
  (:meth:`Corpus.from_texts`, :meth:`Corpus.from_parquet`, :meth:`Corpus.from_warc`,
  :meth:`Corpus.ingest`) or read from a corpus directory (:meth:`Corpus.open`).
* :class:`LDA` -- a scikit-learn style estimator: ``fit`` trains by collapsed Gibbs sampling
  on in-process parameter-server shards (``glint-lda train``); ``transform``, ``perplexity``
  and ``coherence`` are the evaluation crate's; ``save``/``load`` use the CLI's model
  directory, so ``glint-lda topics/eval/infer`` read what Python wrote and vice versa.
* :mod:`glint_lda.ps` -- a client of a ps-core cluster, and an in-process cluster.
* :class:`GlintError` -- every error the libraries report, with their message
  (:class:`EmptyCorpusError` when ingest kept no document).
* :mod:`glint_lda.spark` -- training on a Spark DataFrame with executors as workers.

Long calls (ingest, training, inference, parameter-server requests) release the GIL.
"""

from __future__ import annotations

from . import ps
from ._glint_lda import Corpus, EmptyCorpusError, GlintError, __version__
from ._lda import LDA

__all__ = ["LDA", "Corpus", "GlintError", "EmptyCorpusError", "ps", "__version__"]

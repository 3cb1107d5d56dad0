"""Type stubs of the native module (Rust, PyO3). Use the classes through ``glint_lda``."""

import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "GlintError",
    "EmptyCorpusError",
    "Corpus",
    "_Model",
    "_PsClient",
    "_PsMatrix",
    "_PsEmbeddedCluster",
    "connect",
    "_LocalCluster",
    "_ClusterDriver",
    "_run_worker",
    "_select_vocabulary",
]
__version__: str

_PathLike = Union[str, "os.PathLike[str]"]
_Paths = Union[_PathLike, Sequence[_PathLike]]
_Documents = Union["Corpus", Iterable[str]]

class GlintError(Exception):
    """An error reported by the glint-lda libraries; the message is theirs."""

class EmptyCorpusError(GlintError):
    """Ingest kept no document (every document empty, or analysed to no term)."""

@final
class Corpus:
    """A token-id corpus held in memory, with its vocabulary and analyzer settings.

    Ingest options (keyword arguments of every ``from_*``/``ingest`` method), as the flags of
    ``glint-lda ingest``: preset ("seed" | "none"), tokenizer ("letters" | "alphanumeric"),
    stem (a Snowball language, or None/False/"none"), stopwords ("english", or None), stopwords_files
    (a path or a list), min_len, max_len, max_raw_len, min_count, min_df, max_df (int: a
    document count; float: a fraction in (0, 1]), vocab_size, max_doc_tokens, threads, strict.
    """

    @staticmethod
    def from_texts(
        texts: Iterable[str], ids: Optional[Iterable[str]] = None, **options: Any
    ) -> "Corpus":
        """One document per text; ids default to "0", "1", ... Empty documents are skipped."""
    @staticmethod
    def from_parquet(
        paths: _Paths, column: str = "text", id_column: Optional[str] = None, **options: Any
    ) -> "Corpus":
        """Parquet files (globs allowed); text in ``column``, ids in ``id_column``."""
    @staticmethod
    def from_warc(paths: _Paths, **options: Any) -> "Corpus":
        """WARC/WET files, plain or gzip (globs allowed)."""
    @staticmethod
    def ingest(inputs: _Paths, format: Optional[str] = None, **options: Any) -> "Corpus":
        """Any input ``glint-lda ingest`` reads; format auto|warc|parquet|lines|tsv|dir|uci."""
    @staticmethod
    def open(dir: _PathLike) -> "Corpus":
        """Reads a corpus directory (vocab.tsv, docs/*.parquet, manifest.json)."""
    def save(self, dir: _PathLike) -> None:
        """Writes the corpus directory format (``glint-lda train --corpus DIR`` reads it)."""
    def __len__(self) -> int:
        """Number of documents."""
    @property
    def num_tokens(self) -> int:
        """Total tokens."""
    @property
    def vocabulary(self) -> List[str]:
        """The term of each word id."""
    @property
    def display_vocabulary(self) -> List[str]:
        """The readable form of each word id (most frequent surface form of a stem)."""
    @property
    def term_counts(self) -> npt.NDArray[np.uint64]:
        """Occurrences of each word id."""
    @property
    def document_counts(self) -> npt.NDArray[np.uint64]:
        """Number of documents containing each word id."""
    def _aligned_to(
        self, terms: List[str]
    ) -> Tuple[List[str], npt.NDArray[np.uint32], npt.NDArray[np.uint64]]:
        """(ids, tokens, offsets) as word ids of ``terms``; emptied documents dropped."""
    @property
    def ids(self) -> List[str]:
        """Document ids in order."""
    @property
    def analyzer(self) -> Optional[Dict[str, Any]]:
        """The analyzer settings the corpus was made with."""
    @property
    def skipped(self) -> Dict[str, int]:
        """Documents skipped while ingesting, by reason."""
    def tokens(self, i: int) -> npt.NDArray[np.uint32]:
        """Word ids of document ``i``."""
    def terms(self, i: int) -> List[str]:
        """Terms of document ``i``."""

@final
class _Model:
    """The native LDA model behind ``glint_lda.LDA``."""

    @staticmethod
    def train(
        corpus: Corpus,
        topics: int,
        alpha: Optional[float] = None,
        beta: float = 0.01,
        seed: int = 1,
        sampler: str = "auto",
        mh_steps: int = 2,
        threads: Optional[int] = None,
        shards: Optional[int] = None,
        optimize_interval: int = 10,
        optimize_burn_in: int = 50,
    ) -> "_Model":
        """Starts a run: embedded shards, sampler threads, uniform random assignments."""
    def run(
        self,
        iterations: int,
        callback: Optional[Any] = None,
        test: Optional[_Documents] = None,
        eval_every: int = 10,
        eval_sweeps: int = 100,
    ) -> None:
        """Runs iterations; checks Ctrl-C and calls ``callback(dict)`` after each."""
    @staticmethod
    def load(dir: _PathLike) -> "_Model":
        """Reads a model directory."""
    @property
    def trainable(self) -> bool:
        """Whether the model was trained in this process."""
    @property
    def iterations(self) -> int:
        """Iterations trained."""
    def hyperparameters(self) -> Dict[str, Any]:
        """hyperparameters.json."""
    def metrics(self) -> List[Dict[str, Any]]:
        """One dict per iteration (metrics.jsonl)."""
    def topic_word(self) -> npt.NDArray[np.float64]:
        """φ, K × V."""
    def alpha(self) -> Optional[List[float]]:
        """α per topic."""
    def vocabulary(self) -> List[str]:
        """The term of each column."""
    def display_vocabulary(self) -> List[str]:
        """The readable form of each column."""
    def top_words(self, n: int = 10, raw_terms: bool = False) -> List[List[str]]:
        """The n most probable words of each topic."""
    def transform(
        self,
        docs: _Documents,
        sweeps: int = 20,
        burn_in: int = 10,
        method: str = "mh",
        mh_steps: int = 1,
        alpha: Optional[float] = None,
        seed: int = 1,
        threads: Optional[int] = None,
    ) -> npt.NDArray[np.float64]:
        """θ of new documents, documents × K."""
    def perplexity(
        self,
        docs: _Documents,
        sweeps: int = 100,
        burn_in: int = 50,
        alpha: Optional[float] = None,
        seed: int = 1,
        threads: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Held-out perplexity by document completion, with its counts."""
    def coherence(self, corpus: _Documents, top_n: int = 10) -> Dict[str, Any]:
        """UMass and NPMI coherence."""
    def doc_topic(self) -> Tuple[List[str], npt.NDArray[np.float64]]:
        """θ of the training documents with their ids."""
    def check_invariants(self) -> None:
        """Raises GlintError unless the counts add up."""
    def save(self, dir: _PathLike) -> None:
        """Writes the model directory."""

@final
class _PsMatrix:
    """A native matrix handle (``glint_lda.ps.Matrix`` wraps it)."""

    @property
    def name(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def sparse(self) -> bool: ...
    @property
    def shards(self) -> int: ...
    def pull(self, rows: npt.NDArray[np.uint64], cols: npt.NDArray[np.uint32]) -> np.ndarray:
        """Elements at (rows[i], cols[i])."""
    def pull_rows(self, rows: npt.NDArray[np.uint64]) -> np.ndarray:
        """Whole rows, len(rows) × cols."""
    def push(
        self, rows: npt.NDArray[np.uint64], cols: npt.NDArray[np.uint32], values: np.ndarray
    ) -> None:
        """Combines values into (rows[i], cols[i]); values of the matrix's dtype."""

@final
class _PsClient:
    """A native client (``glint_lda.ps.Client`` wraps it)."""

    @property
    def shards(self) -> int: ...
    def create_matrix(
        self,
        name: str,
        rows: int,
        cols: int,
        dtype: str = "i64",
        sparse: bool = False,
        partitioner: str = "cyclic",
        aggregator: str = "add",
    ) -> _PsMatrix:
        """Creates a matrix on every shard."""
    def matrix(self, name: str) -> _PsMatrix:
        """Opens a matrix by name."""
    def destroy(self, name: str) -> None:
        """Removes a model."""
    def list_models(self) -> List[Dict[str, Any]]:
        """Every model the master knows."""

@final
class _PsEmbeddedCluster:
    """A master and shards in this process."""

    def __new__(cls, shards: int = 2) -> "_PsEmbeddedCluster": ...
    def client(self) -> _PsClient:
        """A client of this cluster."""
    @property
    def shards(self) -> int: ...

def connect(
    master_addr: str,
    token: Optional[str] = None,
    servers: int = 1,
    timeout: float = 30.0,
    tls_ca: Optional[_PathLike] = None,
    tls_cert: Optional[_PathLike] = None,
    tls_key: Optional[_PathLike] = None,
    tls_domain: Optional[str] = None,
) -> _PsClient:
    """Connects to a cluster's master over gRPC."""

def _select_vocabulary(
    terms: List[str], counts: List[int], docs: List[int], documents: int, **options: Any
) -> List[int]:
    """Indices of the terms ingest's vocabulary filter keeps, in vocabulary order."""

@final
class _LocalCluster:
    """A master and shards served over gRPC from this process."""

    def __new__(
        cls, servers: int = 2, host: str = "127.0.0.1", token: Optional[str] = None, insecure: bool = False
    ) -> "_LocalCluster": ...
    @property
    def master_addr(self) -> str: ...
    @property
    def shard_addrs(self) -> List[str]: ...
    def stop(self) -> None: ...

@final
class _ClusterDriver:
    """The driver of one cluster run."""

    def __new__(
        cls,
        master_addr: str,
        out_dir: _PathLike,
        job: str,
        workers: int,
        topics: int,
        ids: List[str],
        terms: List[str],
        display: List[str],
        word_counts: List[int],
        alpha: Optional[float] = None,
        beta: float = 0.01,
        seed: int = 1,
        sampler: str = "auto",
        mh_steps: int = 2,
        iterations: int = 100,
        staleness: int = 0,
        checkpoint_every: int = 10,
        max_recoveries: int = 3,
        stall_secs: float = 300.0,
        heartbeat_timeout_secs: float = 15.0,
        token: Optional[str] = None,
        servers: int = 1,
        timeout: float = 30.0,
    ) -> "_ClusterDriver": ...
    def run(self, callback: Optional[Any] = None) -> None: ...
    def abort(self) -> None: ...

def _run_worker(
    master_addr: str,
    job: str,
    index: int,
    ids: List[str],
    tokens: npt.NDArray[np.uint32],
    offsets: npt.NDArray[np.uint64],
    first_doc: Optional[int],
    corpus_docs: int,
    corpus_tokens: int,
    vocab_size: int,
    workers: Optional[int] = None,
    token: Optional[str] = None,
    servers: int = 1,
    threads: int = 1,
    state_dir: Optional[_PathLike] = None,
    wait_secs: float = 120.0,
    stall_secs: float = 300.0,
    timeout: float = 30.0,
    callback: Optional[Any] = None,
) -> Dict[str, Any]:
    """Runs one worker of a published job over the given documents."""

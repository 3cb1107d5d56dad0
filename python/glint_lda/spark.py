"""Training on Spark: Spark partitions the data and schedules the tasks, the parameter server
holds the model (Glint's design). Each Spark task runs a glint-lda worker over its partition's
documents inside the executor, pulling from and pushing to the servers; the Spark driver runs
the run's driver.

:func:`fit` reads the DataFrame once:

1. each partition is analysed once (its own vocabulary, persisted); the partitions' term
   statistics are merged into one vocabulary by the rule of ``glint-lda ingest`` (the same
   analyzer options, the same filters, the same order);
2. each partition's documents are mapped to word ids of that vocabulary (persisted: what the
   workers sample, and the document counts the driver needs before it publishes the job);
3. one Spark job with a task per partition, each a worker of the run. The tasks run at once and
   meet at a barrier per iteration through the parameter server (``staleness`` relaxes it).

A task that fails is retried by Spark (allow it: ``spark.task.maxFailures``, or ``local[N,F]``
in local mode). Its retry finds itself already counted, so the run rolls back to the last
checkpoint that every worker completed; the models of the next attempt are rebuilt from those
checkpoints, so no update is lost or counted twice. Checkpoints go to ``state_dir``: on a
cluster of several hosts it must be a directory every executor sees (a shared file system);
with ``checkpoint_every=0`` a recovery restarts from the seeded initial state instead.

:func:`topic_udf` makes a pandas UDF that infers θ of a DataFrame column of texts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ._glint_lda import Corpus, EmptyCorpusError, _ClusterDriver, _run_worker, _select_vocabulary
from ._lda import LDA
from .ps import LocalCluster

__all__ = ["fit", "topic_udf"]

_FILTER_OPTIONS = ("min_count", "min_df", "max_df", "vocab_size")


def _texts_and_ids(rows: Iterable[Any], with_ids: bool) -> Tuple[List[str], Optional[List[str]]]:
    texts: List[str] = []
    ids: Optional[List[str]] = [] if with_ids else None
    for row in rows:
        texts.append("" if row[0] is None else str(row[0]))
        if ids is not None:
            ids.append(str(row[1]))
    return texts, ids


def _analysed(texts: List[str], ids: Optional[List[str]], options: Dict[str, Any]) -> Optional[Corpus]:
    """The partition's texts as a corpus with its own, unfiltered vocabulary; None when no
    document has a term."""
    if not texts:
        return None
    try:
        return Corpus.from_texts(texts, ids=ids, threads=1, **options)
    except EmptyCorpusError:
        return None


def _analyse(options: Dict[str, Any], with_ids: bool) -> Callable[[int, Iterator[Any]], Iterator[Any]]:
    """Pass 1: each partition analysed once, with its own vocabulary. One record per partition:
    (index, rows, ids, terms, display forms, term counts, document counts, tokens, offsets,
    analyzer as JSON); ids are the id column's, else the row numbers within the partition."""

    def analyse(index: int, rows: Iterator[Any]) -> Iterator[Any]:
        texts, ids = _texts_and_ids(rows, with_ids)
        if ids is None:
            ids = [str(j) for j in range(len(texts))]
        corpus = _analysed(texts, ids, options)
        if corpus is None:
            empty = (np.zeros(0, np.uint32), np.zeros(1, np.uint64))
            yield (index, len(texts), [], [], [], [], [], *empty, None)
            return
        kept, tokens, offsets = corpus._aligned_to(corpus.vocabulary)
        yield (
            index,
            len(texts),
            kept,
            corpus.vocabulary,
            corpus.display_vocabulary,
            corpus.term_counts.tolist(),
            corpus.document_counts.tolist(),
            tokens,
            offsets,
            json.dumps(corpus.analyzer),
        )

    return analyse


def _partition_stats(part: Any) -> Any:
    """What the driver needs of an analysed partition: its size and term statistics, not its
    tokens."""
    index, rows, ids, terms, forms, counts, docs = part[:7]
    return (index, rows, len(ids), terms, forms, counts, docs, part[9])


def _merge_stats(
    parts: List[Any], n: int
) -> Tuple[List[int], int, Any, List[str], List[Tuple[int, int, str]]]:
    """The partitions' statistics merged on the driver: rows per partition, documents kept, the
    analyzer, and per term its occurrences, documents and the display form of the partition
    that saw it most. (One record per partition reaches the driver: no shuffle.)"""
    rows = [0] * n
    documents = 0
    analyzer: Any = None
    merged: Dict[str, List[Any]] = {}
    for index, n_rows, n_docs, terms, forms, counts, docs, analyzer_json in sorted(parts, key=lambda p: p[0]):
        rows[index] = n_rows
        documents += n_docs
        if analyzer_json is not None:
            analyzer = json.loads(analyzer_json)
        for term, form, count, df in zip(terms, forms, counts, docs):
            entry = merged.get(term)
            if entry is None:
                merged[term] = [count, df, form, count]
            else:
                entry[0] += count
                entry[1] += df
                if count > entry[3]:
                    entry[2], entry[3] = form, count
    terms_out = list(merged)
    stats = [(e[0], e[1], e[2]) for e in merged.values()]
    return rows, documents, analyzer, terms_out, stats


def _remap(with_ids: bool, row_offsets: List[int], vocabulary: Any) -> Callable[[Any], Any]:
    """Pass 2: a partition in word ids of the merged vocabulary (`vocabulary.value`: term → id):
    terms it lacks dropped, documents left empty dropped, as ``Corpus._aligned_to`` does."""

    def remap(part: Any) -> Any:
        index, _, ids, terms = part[:4]
        tokens, offsets = part[7], part[8]
        index_of = vocabulary.value
        lookup = np.array([index_of.get(t, -1) for t in terms] or [-1], dtype=np.int64)
        ids_ = ids if with_ids else [str(row_offsets[index] + int(i)) for i in ids]
        word = lookup[tokens.astype(np.int64)] if tokens.size else np.zeros(0, np.int64)
        keep = word >= 0
        lengths = np.diff(offsets.astype(np.int64))
        doc_of = np.repeat(np.arange(len(ids_)), lengths)
        kept_per_doc = np.bincount(doc_of[keep], minlength=len(ids_))
        nonempty = np.flatnonzero(kept_per_doc > 0)
        new_offsets = np.concatenate([[0], np.cumsum(kept_per_doc[nonempty])]).astype(np.uint64)
        return (index, [ids_[d] for d in nonempty], word[keep].astype(np.uint32), new_offsets)

    return remap


def _check_job_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
        raise ValueError(f"job {name!r}: use 1 to 64 letters, digits, '-', '_' or '.'")
    return name


class _Progress:
    """A tqdm bar when tqdm is importable and progress is on."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]
            except ImportError:
                return
            self._bar = tqdm(total=total, unit="it", desc="LDA on Spark")

    def event(self, e: Dict[str, Any]) -> None:
        if self._bar is None:
            return
        if e["event"] == "iteration":
            self._bar.n = e["iteration"]
            self._bar.set_postfix(tokens_per_s=f"{e['tokens_per_s'] / 1e6:.2f}M", refresh=False)
            self._bar.refresh()
        elif e["event"] == "rollback":
            self._bar.write(f"recovering: {e['reason']}; back to iteration {e['to']}")
            self._bar.n = e["to"]
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def fit(
    df: Any,
    text_col: str = "text",
    k: int = 20,
    *,
    id_col: Optional[str] = None,
    iterations: int = 100,
    alpha: Optional[float] = None,
    beta: float = 0.01,
    seed: int = 1,
    sampler: str = "auto",
    mh_steps: int = 2,
    workers: Optional[int] = None,
    threads: int = 1,
    master: Optional[str] = None,
    token: Optional[str] = None,
    servers: Optional[int] = None,
    start_servers: int = 2,
    host: Optional[str] = None,
    staleness: int = 0,
    checkpoint_every: int = 10,
    state_dir: Optional[str] = None,
    max_recoveries: int = 3,
    heartbeat_timeout: float = 15.0,
    stall_timeout: float = 300.0,
    out: Optional[str] = None,
    job: Optional[str] = None,
    progress: bool = True,
    callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    worker_callback: Optional[Callable[[Dict[str, Any]], None]] = None,
    **analyzer_options: Any,
) -> LDA:
    """Trains LDA on the texts in column ``text_col`` of the Spark DataFrame ``df``, one worker
    per partition (``workers`` repartitions first), and returns the fitted :class:`LDA`.

    The model lives on parameter servers: an existing cluster at ``master`` (``HOST:PORT`` of
    ``glint-lda master``, with ``servers`` servers and the cluster's ``token``), or
    ``start_servers`` servers this call starts in the driver process, bound to ``host`` (default
    127.0.0.1 in local mode, else ``spark.driver.host``) and stopped at the end.

    Sampler parameters are those of :class:`LDA`, except that α stays symmetric at ``alpha``
    (optimising it needs every document's topic counts in one process); ``threads`` sampler
    threads run in each task (match ``spark.task.cpus``). Analyzer and vocabulary options (``stem``, ``stopwords``,
    ``min_df``, ``max_df``, ``vocab_size``, ...) are those of :meth:`Corpus.from_texts` and give
    the vocabulary ``Corpus.from_texts`` would give on the whole column. Documents are named by
    ``id_col``, else by their row number in partition order.

    Recovery: workers checkpoint every ``checkpoint_every`` iterations into ``state_dir`` (a
    temporary directory by default: fine in local mode, on a cluster give a shared path); up to
    ``max_recoveries`` failures (a task retried by Spark, a worker silent for
    ``heartbeat_timeout`` seconds, a lost server) roll the run back, and a run in which no
    worker moves for ``stall_timeout`` seconds fails.

    ``callback(dict)`` sees the driver's events ("joined", "iteration", "rollback",
    "recovered"); ``worker_callback(dict)`` runs in the executors after each iteration of each
    worker (iteration, tokens_per_s, seconds, index, task_attempt) and may raise to fail its
    task (a test of recovery). The model directory is written to ``out`` (default: a temporary
    directory, removed once the model is loaded).
    """
    from pyspark import StorageLevel

    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    columns = [text_col] + ([id_col] if id_col is not None else [])
    for c in columns:
        if c not in df.columns:
            raise ValueError(f"the DataFrame has no column {c!r} (it has {', '.join(df.columns)})")
    filters = {key: analyzer_options.pop(key) for key in _FILTER_OPTIONS if key in analyzer_options}
    spark = df.sparkSession
    sc = spark.sparkContext
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers != df.rdd.getNumPartitions():
            df = df.repartition(workers)
    rdd = df.select(*columns).rdd
    n = rdd.getNumPartitions()
    slots = sc.defaultParallelism // max(1, int(sc.getConf().get("spark.task.cpus", "1")))
    if n > slots:
        raise ValueError(
            f"{n} workers (one per partition) must run at once, but Spark offers {slots} task slots: "
            f"pass workers={slots} or fewer, or give Spark more cores"
        )
    job = _check_job_name(job or f"spark-{uuid.uuid4().hex[:12]}")
    with_ids = id_col is not None

    # Pass 1: one vocabulary from every partition's term statistics.
    clock = {"start": time.perf_counter()}
    analysed = rdd.mapPartitionsWithIndex(_analyse(analyzer_options, with_ids))
    analysed = analysed.persist(StorageLevel.MEMORY_AND_DISK)
    rows, documents, analyzer, terms, stats = _merge_stats(analysed.map(_partition_stats).collect(), n)
    if not terms:
        raise ValueError(f"no document of column {text_col!r} has a term the analyzer keeps")
    kept = _select_vocabulary(
        terms, [s[0] for s in stats], [s[1] for s in stats], documents, **filters
    )
    if not kept:
        raise ValueError("the vocabulary filter keeps no term")
    vocabulary = [terms[i] for i in kept]
    word_counts = [stats[i][0] for i in kept]
    display = [stats[i][2] for i in kept]
    if display == vocabulary:
        display = []

    clock["vocabulary"] = time.perf_counter()
    # Pass 2: each partition as word ids, persisted for the workers.
    row_offsets = np.concatenate([[0], np.cumsum(rows)]).astype(int).tolist()
    vocab_b = sc.broadcast({t: j for j, t in enumerate(vocabulary)})
    parts = analysed.map(_remap(with_ids, row_offsets, vocab_b)).persist(StorageLevel.MEMORY_AND_DISK)
    cluster: Optional[LocalCluster] = None
    scratch = tempfile.mkdtemp(prefix="glint-lda-spark-")
    try:
        sizes = sorted(parts.map(lambda p: (p[0], p[1], int(p[3][-1]))).collect())
        analysed.unpersist()
        ids = [doc for _, part_ids, _ in sizes for doc in part_ids]
        first = np.concatenate([[0], np.cumsum([len(s[1]) for s in sizes])]).astype(int).tolist()[:-1]
        corpus_tokens = sum(s[2] for s in sizes)
        if corpus_tokens != sum(word_counts):
            raise RuntimeError(
                f"the partitions hold {corpus_tokens} tokens but the vocabulary counts {sum(word_counts)} "
                "(the analysis differs between passes: a nondeterministic DataFrame?)"
            )
        if len(set(ids)) != len(ids):
            raise ValueError(f"document ids in {id_col!r} are not unique")

        clock["partitions"] = time.perf_counter()
        if master is None:
            if host is None:
                host = "127.0.0.1" if sc.master.startswith("local") else sc.getConf().get("spark.driver.host")
            cluster = LocalCluster(servers=start_servers, host=host, token=token)
            master_addr, n_servers = cluster.master_addr, start_servers
        else:
            master_addr, n_servers = master, servers or 1
        out_dir = out or os.path.join(scratch, "model")
        states = state_dir or os.path.join(scratch, "state")
        driver = _ClusterDriver(
            master_addr,
            out_dir,
            job,
            n,
            k,
            ids,
            vocabulary,
            display,
            word_counts,
            alpha=alpha,
            beta=beta,
            seed=seed,
            sampler=sampler,
            mh_steps=mh_steps,
            iterations=iterations,
            staleness=staleness,
            checkpoint_every=checkpoint_every,
            max_recoveries=max_recoveries,
            stall_secs=stall_timeout,
            heartbeat_timeout_secs=heartbeat_timeout,
            token=token,
            servers=n_servers,
        )
        work = _worker_task(
            master_addr, job, n, first, len(ids), corpus_tokens, len(vocabulary), token,
            n_servers, threads, states, stall_timeout, worker_callback,
        )
        events: List[Dict[str, Any]] = []
        clock["published"] = time.perf_counter()

        def on_event(e: Dict[str, Any]) -> None:
            events.append(e)
            if e["event"] == "iteration" and e["iteration"] == 1:
                clock.setdefault("first_iteration", time.perf_counter())
            if callback is not None:
                callback(e)

        summaries = _train(sc, parts, work, driver, job, iterations, progress, on_event)
        clock["trained"] = time.perf_counter()
        _write_corpus_info(out_dir, analyzer, filters)
        _write_metrics(out_dir, events)
        model = LDA.load(out_dir)
        clock["loaded"] = time.perf_counter()
    finally:
        analysed.unpersist()
        parts.unpersist()
        vocab_b.unpersist()
        if cluster is not None:
            cluster.stop()
        # The model is in memory now; what the caller asked to keep is outside the scratch.
        shutil.rmtree(scratch, ignore_errors=True)
    model.threads = threads
    model.spark_workers_ = summaries
    marks = list(clock.items())
    model.spark_seconds_ = {name: t - before for (_, before), (name, t) in zip(marks, marks[1:])}
    return model


def _write_metrics(out: str, events: List[Dict[str, Any]]) -> None:
    """metrics.jsonl: one line per iteration as the driver saw it (after the last rollback)."""
    lines: Dict[int, Dict[str, Any]] = {}
    for e in events:
        if e["event"] == "iteration":
            lines[e["iteration"]] = {k: v for k, v in e.items() if k != "event"}
        elif e["event"] == "rollback":
            lines = {t: line for t, line in lines.items() if t <= e["to"]}
    elapsed = 0.0
    with open(os.path.join(out, "metrics.jsonl"), "w", encoding="utf-8") as f:
        for t in sorted(lines):
            elapsed += lines[t]["seconds"]
            f.write(json.dumps(dict(lines[t], train_seconds=elapsed)) + "\n")


def _write_corpus_info(out: str, analyzer: Any, filters: Dict[str, Any]) -> None:
    """corpus.json: how raw text is analysed for this model (what ``glint-lda infer`` reads)."""
    with open(os.path.join(out, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump({"corpus": None, "analyzer": analyzer, "vocabulary_filter": filters or None}, f, indent=2)
        f.write("\n")


def _worker_task(
    master_addr: str,
    job: str,
    workers: int,
    first: List[int],
    corpus_docs: int,
    corpus_tokens: int,
    vocab_size: int,
    token: Optional[str],
    servers: int,
    threads: int,
    state_dir: str,
    stall_timeout: float,
    worker_callback: Optional[Callable[[Dict[str, Any]], None]],
) -> Callable[[int, Iterator[Any]], Iterator[Dict[str, Any]]]:
    def work(index: int, records: Iterator[Any]) -> Iterator[Dict[str, Any]]:
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.attemptNumber() if context is not None else 0
        for part, ids, tokens, offsets in records:
            callback = None
            if worker_callback is not None:
                def callback(stats: Dict[str, Any], part: int = part) -> None:
                    worker_callback(dict(stats, index=part, task_attempt=attempt))

            summary = _run_worker(
                master_addr,
                job,
                part,
                ids,
                np.ascontiguousarray(tokens, dtype=np.uint32),
                np.ascontiguousarray(offsets, dtype=np.uint64),
                first[part] if ids else None,
                corpus_docs,
                corpus_tokens,
                vocab_size,
                workers=workers,
                token=token,
                servers=servers,
                threads=threads,
                state_dir=state_dir,
                stall_secs=stall_timeout,
                callback=callback,
            )
            summary["task_attempt"] = attempt
            yield summary

    return work


def _train(
    sc: Any,
    parts: Any,
    work: Callable[[int, Iterator[Any]], Iterator[Dict[str, Any]]],
    driver: _ClusterDriver,
    job: str,
    iterations: int,
    progress: bool,
    callback: Optional[Callable[[Dict[str, Any]], None]],
) -> List[Dict[str, Any]]:
    """Runs the workers' Spark job beside the driver; either failing ends the other."""
    from pyspark import InheritableThread

    result: Dict[str, Any] = {}

    def spark_job() -> None:
        sc.setJobGroup(job, f"glint-lda workers of {job}", interruptOnCancel=True)
        try:
            result["summaries"] = parts.mapPartitionsWithIndex(work).collect()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = e
            try:
                driver.abort()
            except Exception:  # noqa: BLE001 - the driver may be gone already
                pass

    thread = InheritableThread(target=spark_job, name=f"glint-lda-{job}", daemon=True)
    thread.start()
    bar = _Progress(iterations, progress)

    def on_event(e: Dict[str, Any]) -> None:
        bar.event(e)
        if callback is not None:
            callback(e)

    try:
        driver.run(on_event)
    except BaseException:
        sc.cancelJobGroup(job)
        thread.join(timeout=60)
        if "error" in result:
            raise result["error"]
        raise
    finally:
        bar.close()
    thread.join()
    if "error" in result:
        raise result["error"]
    return sorted(result["summaries"], key=lambda s: s["index"])


def topic_udf(model: LDA, sweeps: int = 20, burn_in: int = 10, method: str = "mh", seed: Optional[int] = None) -> Any:
    """A pandas UDF that infers the topic distribution θ (an array of K doubles) of each text
    of a string column with ``model`` (φ fixed, as :meth:`LDA.transform`; deterministic by
    ``seed``). The model is broadcast once and loaded once per executor process::

        df.withColumn("theta", glint_lda.spark.topic_udf(model)("text"))
    """
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import ArrayType, DoubleType

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError("topic_udf needs an active SparkSession")
    files: Dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="glint-lda-udf-") as d:
        model.save(d)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                files[name] = f.read()
    shipped = spark.sparkContext.broadcast(files)
    key = uuid.uuid4().hex
    seed = model.seed if seed is None else seed

    import pandas as pd

    def theta(texts: Any) -> Any:
        loaded = _load_shipped(key, shipped)
        docs = ["" if t is None else str(t) for t in texts]
        rows = loaded.transform(docs, sweeps=sweeps, burn_in=burn_in, method=method, seed=seed, threads=1)
        return pd.Series(list(rows))

    # Spark reads the UDF's kind from its type hints, which must be real types here (this
    # module's annotations are strings).
    theta.__annotations__ = {"texts": pd.Series, "return": pd.Series}
    return pandas_udf(theta, ArrayType(DoubleType()))  # type: ignore[call-overload, unused-ignore]


_SHIPPED: Dict[str, LDA] = {}
_SHIPPED_LOCK = threading.Lock()


def _load_shipped(key: str, shipped: Any) -> LDA:
    with _SHIPPED_LOCK:
        if key not in _SHIPPED:
            with tempfile.TemporaryDirectory(prefix="glint-lda-udf-") as d:
                for name, data in shipped.value.items():
                    with open(os.path.join(d, name), "wb") as f:
                        f.write(data)
                _SHIPPED[key] = LDA.load(d)
        return _SHIPPED[key]

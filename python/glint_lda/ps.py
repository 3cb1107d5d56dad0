"""A client of a ps-core parameter server: sharded matrices that are pulled and pushed.

:func:`connect` reaches a cluster started with ``glint-lda master`` and ``glint-lda server``
(gRPC); :class:`EmbeddedCluster` runs a master and shards in this process, for tests and
notebooks. Pushes combine values into the matrix with its aggregation (``add`` by default) and
are applied exactly once, however often the client retries. Requests release the GIL.

>>> from glint_lda import ps
>>> m = ps.EmbeddedCluster(shards=2).client().create_matrix("counts", 10, 4, dtype="i64")
>>> m.push([3, 3, 7], [1, 1, 0], [2, 5, -1])
>>> m.pull([3, 7], [1, 0]).tolist()
[7, -1]
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ._glint_lda import _LocalCluster, _PsClient, _PsEmbeddedCluster, _PsMatrix
from ._glint_lda import connect as _connect

__all__ = ["Client", "Matrix", "EmbeddedCluster", "LocalCluster", "connect"]

_DTYPES = {"i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}
PathLike = Union[str, "os.PathLike[str]"]


def _indices(values: Any, name: str, dtype: Any) -> np.ndarray:
    """A contiguous 1-D array of non-negative integers that fit ``dtype``."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=dtype)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got {arr.dtype}")
    if arr.min() < 0:
        raise ValueError(f"{name} must be non-negative")
    if int(arr.max()) > np.iinfo(dtype).max:
        raise ValueError(f"{name} holds {int(arr.max())}, beyond {np.dtype(dtype).name}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _values(values: Any, dtype: Any, n: int) -> np.ndarray:
    """A contiguous 1-D array of ``n`` values of ``dtype`` (a scalar is repeated); floats are
    refused for an integer matrix, and integers must fit it."""
    target = np.dtype(dtype)
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (n,))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"values must be one-dimensional of length {n}, got shape {arr.shape}")
    if n == 0:
        return np.zeros(0, dtype=target)
    if target.kind == "i":
        if arr.dtype.kind not in "iub":
            raise TypeError(f"values of a {target.name} matrix must be integers, got {arr.dtype}")
        info = np.iinfo(target)
        if int(arr.min()) < info.min or int(arr.max()) > info.max:
            raise ValueError(f"values do not fit {target.name}")
    return np.ascontiguousarray(arr, dtype=target)


class Matrix:
    """A handle on a rows × cols matrix of a cluster. Cheap; handles opened by name push under
    their own writer identity."""

    def __init__(self, native: _PsMatrix) -> None:
        """Made by :meth:`Client.create_matrix` and :meth:`Client.matrix`."""
        self._m = native

    @property
    def name(self) -> str:
        """The matrix's name on the cluster."""
        return self._m.name

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self._m.rows

    @property
    def cols(self) -> int:
        """Number of columns."""
        return self._m.cols

    @property
    def dtype(self) -> np.dtype:
        """The element type, as a numpy dtype."""
        return np.dtype(_DTYPES[self._m.dtype])

    @property
    def sparse(self) -> bool:
        """Whether shards store only non-zero elements."""
        return self._m.sparse

    @property
    def shards(self) -> int:
        """Number of shards the rows are spread over."""
        return self._m.shards

    def __repr__(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        return f"Matrix({self.name!r}, {self.rows} x {self.cols}, {self.dtype.name}, {kind})"

    def pull(self, rows: Any, cols: Any) -> np.ndarray:
        """The elements at (rows[i], cols[i]), as a 1-D array."""
        r = _indices(rows, "rows", np.uint64)
        c = _indices(cols, "cols", np.uint32)
        if r.shape != c.shape:
            raise ValueError(f"{r.size} rows but {c.size} cols")
        return self._m.pull(r, c)

    def pull_rows(self, rows: Any) -> np.ndarray:
        """Whole rows, as a len(rows) × cols array."""
        return self._m.pull_rows(_indices(rows, "rows", np.uint64))

    def push(self, rows: Any, cols: Any, values: Any) -> None:
        """Combines values[i] into (rows[i], cols[i]) with the matrix's aggregation."""
        r = _indices(rows, "rows", np.uint64)
        c = _indices(cols, "cols", np.uint32)
        if r.shape != c.shape:
            raise ValueError(f"{r.size} rows but {c.size} cols")
        self._m.push(r, c, _values(values, self.dtype, r.size))

    def push_rows(self, rows: Any, values: Any) -> None:
        """Combines a len(rows) × cols array into whole rows (its non-zero elements)."""
        r = _indices(rows, "rows", np.uint64)
        v = np.asarray(values)
        if v.shape != (r.size, self.cols):
            raise ValueError(f"values must have shape ({r.size}, {self.cols}), got {v.shape}")
        i, j = np.nonzero(v)
        self.push(r[i], j, v[i, j])


class Client:
    """A connection to a parameter-server cluster: creates, opens and removes matrices."""

    def __init__(self, native: _PsClient) -> None:
        """Made by :func:`connect` and :meth:`EmbeddedCluster.client`."""
        self._c = native

    @property
    def shards(self) -> int:
        """Number of shards (servers) the client reaches."""
        return self._c.shards

    def create_matrix(
        self,
        name: str,
        rows: int,
        cols: int,
        dtype: str = "i64",
        sparse: bool = False,
        partitioner: str = "cyclic",
        aggregator: str = "add",
    ) -> Matrix:
        """Creates a matrix on every shard: dtype ``"i32" | "i64" | "f32" | "f64"`` (numpy names
        such as ``"int64"`` work too), sparse or dense rows, rows placed ``"cyclic"`` (row r on
        shard r % shards) or by ``"range"``, pushes combined by ``aggregator`` (``add``,
        ``max``, ``min``, ``replace``). Creating an identical matrix again succeeds."""
        return Matrix(
            self._c.create_matrix(
                name,
                rows,
                cols,
                dtype=np.dtype(dtype).name if dtype not in _DTYPES else dtype,
                sparse=sparse,
                partitioner=partitioner,
                aggregator=aggregator,
            )
        )

    def matrix(self, name: str) -> Matrix:
        """Opens an existing matrix by name."""
        return Matrix(self._c.matrix(name))

    def destroy(self, name: str) -> None:
        """Removes a matrix from every shard and from the master."""
        self._c.destroy(name)

    def list_models(self) -> List[Dict[str, Any]]:
        """Every model the master knows, as dicts (name, rows, cols, dtype, storage, ...)."""
        return self._c.list_models()


def connect(
    master_addr: str,
    token: Optional[str] = None,
    servers: int = 1,
    *,
    timeout: float = 30.0,
    tls_ca: Optional[PathLike] = None,
    tls_cert: Optional[PathLike] = None,
    tls_key: Optional[PathLike] = None,
    tls_domain: Optional[str] = None,
) -> Client:
    """Connects to the master at ``master_addr`` (``HOST:PORT``) and waits up to ``timeout``
    seconds until ``servers`` servers have registered. ``token`` is the cluster's shared secret
    (the contents of ``--token-file``); ``tls_ca`` (a PEM file) dials TLS, with ``tls_cert`` and
    ``tls_key`` as the client's certificate and ``tls_domain`` the name servers must carry."""
    paths = [None if p is None else os.fspath(p) for p in (tls_ca, tls_cert, tls_key)]
    return Client(
        _connect(
            master_addr,
            token=token,
            servers=servers,
            timeout=timeout,
            tls_ca=paths[0],
            tls_cert=paths[1],
            tls_key=paths[2],
            tls_domain=tls_domain,
        )
    )


class EmbeddedCluster:
    """A master and ``shards`` shards in this process (the in-process transport, as
    ``glint-lda train`` uses without ``--master``). Lives while it or a client is referenced."""

    def __init__(self, shards: int = 2) -> None:
        """Starts ``shards`` in-process shards and their master."""
        self._cluster: Optional[_PsEmbeddedCluster] = _PsEmbeddedCluster(shards)

    def client(self) -> Client:
        """A client of this cluster."""
        if self._cluster is None:
            raise RuntimeError("the cluster is closed")
        return Client(self._cluster.client())

    @property
    def shards(self) -> int:
        """Number of shards."""
        if self._cluster is None:
            raise RuntimeError("the cluster is closed")
        return self._cluster.shards

    def close(self) -> None:
        """Drops this handle; the shards go once no client refers to them."""
        self._cluster = None

    def __enter__(self) -> "EmbeddedCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalCluster:
    """A master and ``servers`` servers served over gRPC from this process, as ``glint-lda
    master`` and ``glint-lda server`` would: workers in other processes (Spark executors, or
    ``glint-lda worker``) reach them at :attr:`master_addr`. The models live in this process's
    memory and go with :meth:`stop`.

    ``host`` is the address the servers bind to and advertise (one the workers can dial).
    Beyond loopback a ``token`` is required, unless ``insecure=True`` on a trusted network.

    >>> from glint_lda import ps
    >>> with ps.LocalCluster(servers=2) as cluster:
    ...     m = ps.connect(cluster.master_addr, servers=2).create_matrix("v", 4, 1)
    ...     m.push([1], [0], [5])
    ...     m.pull([1], [0]).tolist()
    [5]
    """

    def __init__(
        self,
        servers: int = 2,
        host: str = "127.0.0.1",
        token: Optional[str] = None,
        insecure: bool = False,
    ) -> None:
        self._cluster = _LocalCluster(servers, host, token, insecure)
        self.servers = servers
        self.token = token

    @property
    def master_addr(self) -> str:
        """The master's ``HOST:PORT``."""
        return self._cluster.master_addr

    @property
    def server_addrs(self) -> List[str]:
        """Each server's ``HOST:PORT``, by shard index."""
        return list(self._cluster.shard_addrs)

    def client(self, timeout: float = 30.0) -> Client:
        """A gRPC client of this cluster."""
        return connect(self.master_addr, self.token, self.servers, timeout=timeout)

    def stop(self) -> None:
        """Stops serving; the models are gone."""
        self._cluster.stop()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""glint_lda.ps: pushes and pulls are exact against a numpy reference, on the in-process cluster
and on a real one (`glint-lda master` + `glint-lda server` processes, with a token)."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

from glint_lda import GlintError, ps


def exercise(client: ps.Client, name: str, dtype: str, sparse: bool, seed: int) -> None:
    """Random pushes of values exact in every dtype (multiples of 1/8), pulled back by element
    and by row, against the same sums in numpy."""
    rng = np.random.default_rng(seed)
    rows, cols = 37, 6
    m = client.create_matrix(name, rows, cols, dtype=dtype, sparse=sparse)
    assert (m.rows, m.cols, m.sparse, m.dtype) == (rows, cols, sparse, np.dtype(m.dtype))
    reference = np.zeros((rows, cols), dtype=m.dtype)
    for _ in range(5):
        n = int(rng.integers(1, 200))
        r = rng.integers(0, rows, n)
        c = rng.integers(0, cols, n)
        if m.dtype.kind == "f":
            v = rng.integers(-64, 64, n) / 8.0
        else:
            v = rng.integers(-1000, 1000, n)
        m.push(r, c, v)
        np.add.at(reference, (r, c), v.astype(m.dtype))
    everything = np.arange(rows)
    pulled = m.pull_rows(everything)
    assert pulled.dtype == m.dtype and pulled.shape == (rows, cols)
    np.testing.assert_array_equal(pulled, reference)
    r, c = np.divmod(np.arange(rows * cols), cols)
    np.testing.assert_array_equal(m.pull(r, c), reference[r, c])
    np.testing.assert_array_equal(m.pull_rows([5, 0, 5]), reference[[5, 0, 5]])
    # Another handle on the same matrix sees the same values.
    np.testing.assert_array_equal(client.matrix(name).pull_rows(everything), reference)


@pytest.mark.parametrize("dtype", ["i32", "i64", "f32", "f64"])
@pytest.mark.parametrize("sparse", [False, True])
def test_push_pull_exact_in_process(dtype: str, sparse: bool) -> None:
    with ps.EmbeddedCluster(shards=3) as cluster:
        assert cluster.shards == 3
        exercise(cluster.client(), f"m-{dtype}-{sparse}", dtype, sparse, seed=["i32", "i64", "f32", "f64"].index(dtype))


def test_models_are_listed_opened_and_destroyed() -> None:
    client = ps.EmbeddedCluster(shards=2).client()
    client.create_matrix("a", 4, 3, dtype="float64", aggregator="max")
    m = client.matrix("a")
    assert m.dtype == np.float64 and m.shards == 2
    m.push([1, 1, 2], [0, 0, 2], [3.0, -5.0, 2.5])
    np.testing.assert_array_equal(m.pull([1, 2], [0, 2]), [3.0, 2.5])
    models = client.list_models()
    assert [(d["name"], d["dtype"], d["aggregator"], d["shards"]) for d in models] == [
        ("a", "f64", "max", 2)]
    m.push_rows([0], [[0.0, 1.5, 0.0]])
    np.testing.assert_array_equal(m.pull_rows([0]), [[0.0, 1.5, 0.0]])
    client.destroy("a")
    assert client.list_models() == []
    with pytest.raises(GlintError, match="no model named 'a'"):
        client.matrix("a")


def test_bad_requests_raise() -> None:
    client = ps.EmbeddedCluster(shards=1).client()
    m = client.create_matrix("x", 5, 2, dtype="i64")
    with pytest.raises(GlintError, match="row 9"):
        m.pull([9], [0])
    with pytest.raises(GlintError):
        m.push([0], [7], [1])
    with pytest.raises(TypeError, match="integers"):
        m.push([0], [0], [0.5])
    with pytest.raises(ValueError, match="non-negative"):
        m.pull([-1], [0])
    with pytest.raises(ValueError, match="length"):
        m.push([0, 1], [0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="dtype"):
        client.create_matrix("y", 1, 1, dtype="complex")
    with pytest.raises(GlintError):
        client.create_matrix("x", 5, 3, dtype="i64")  # same name, another shape
    # A scalar value is repeated; an int32 matrix refuses what does not fit.
    m.push([1, 2], [1, 1], 4)
    np.testing.assert_array_equal(m.pull([1, 2], [1, 1]), [4, 4])
    small = client.create_matrix("s", 1, 1, dtype="i32")
    with pytest.raises(ValueError, match="fit"):
        small.push([0], [0], [2**40])


class Cluster:
    """`glint-lda master` and `glint-lda server` processes on loopback, stopped at the end."""

    def __init__(self, cli: Path, servers: int, token_file: Path) -> None:
        self.procs: List[subprocess.Popen] = []
        auth = ["--token-file", str(token_file)]
        master = self._start([str(cli), "master", "--bind", "127.0.0.1:0", *auth])
        self.addr = self._address(master)
        for _ in range(servers):
            server = self._start([str(cli), "server", "--master", self.addr,
                                  "--bind", "127.0.0.1:0", *auth])
            self._address(server)

    def _start(self, argv: List[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def _address(proc: subprocess.Popen) -> str:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"listening on (\S+)", line)
        assert found, f"unexpected first line {line!r}"
        return found.group(1)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def grpc_cluster(cli: Path, tmp_path: Path) -> Iterator[tuple]:
    token = secrets.token_hex(16)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    cluster = Cluster(cli, servers=2, token_file=token_file)
    try:
        yield cluster.addr, token
    finally:
        cluster.stop()


def test_push_pull_exact_over_grpc(grpc_cluster: tuple) -> None:
    addr, token = grpc_cluster
    client = ps.connect(addr, token=token, servers=2)
    assert client.shards == 2
    exercise(client, "remote-f64", "f64", sparse=True, seed=3)
    exercise(client, "remote-i64", "i64", sparse=False, seed=4)
    client.destroy("remote-i64")
    assert [d["name"] for d in client.list_models()] == ["remote-f64"]
    with pytest.raises(GlintError, match="(?i)auth|token"):
        ps.connect(addr, token="wrong", servers=2, timeout=5).list_models()

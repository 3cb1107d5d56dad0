"""The README's Python snippets ("From Python", "On Spark") run as written, each in a fresh
interpreter, so that the documentation cannot drift from the package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets(section: str) -> List[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end >= 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def test_from_python_snippet_runs(tmp_path: Path) -> None:
    (code,) = snippets("From Python")
    done = run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    # top_words of two topics over the two themes.
    assert "puppy" in done.stdout and "market" in done.stdout


def test_on_spark_snippet_runs(tmp_path: Path) -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (PySpark needs one): .ci/run installs it")
    pytest.importorskip("pyspark", reason="PySpark is not installed: .ci/run installs it")
    pytest.importorskip("pyarrow", reason="pyarrow (for pandas UDFs) is not installed")
    (code,) = snippets("On Spark")
    done = run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "theta" in done.stdout and "puppy" in done.stdout

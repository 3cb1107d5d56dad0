"""Shared fixtures: a two-theme toy corpus whose topics are known, a model fitted on it, and
the `glint-lda` binary when it is built (tests that need it skip otherwise)."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

import glint_lda

PETS = ["cat", "dog", "kitten", "puppy", "leash", "collar", "bark", "meow", "fur", "paw"]
MONEY = ["stock", "bond", "market", "trader", "profit", "dividend", "broker", "equity", "yield", "invest"]
REPO = Path(__file__).resolve().parents[2]


def theme_texts(n_docs: int, seed: int, words: int = 24) -> List[str]:
    """Documents drawn from one of two disjoint themes each (alternating), 10% noise from the
    other."""
    rng = random.Random(seed)
    texts = []
    for d in range(n_docs):
        main, other = (PETS, MONEY) if d % 2 == 0 else (MONEY, PETS)
        doc = [rng.choice(other if rng.random() < 0.1 else main) for _ in range(words)]
        texts.append(" ".join(doc))
    return texts


@pytest.fixture(scope="session")
def texts() -> List[str]:
    return theme_texts(120, seed=11)


@pytest.fixture(scope="session")
def test_texts() -> List[str]:
    return theme_texts(30, seed=12)


@pytest.fixture(scope="session")
def corpus(texts: List[str]) -> glint_lda.Corpus:
    return glint_lda.Corpus.from_texts(texts)


@pytest.fixture(scope="session")
def stems() -> Dict[str, set]:
    """The analyzed terms of each theme."""
    return {
        "pets": set(glint_lda.Corpus.from_texts([" ".join(PETS)]).vocabulary),
        "money": set(glint_lda.Corpus.from_texts([" ".join(MONEY)]).vocabulary),
    }


class Fitted:
    def __init__(self, lda: glint_lda.LDA, calls: List[dict]) -> None:
        self.lda = lda
        self.calls = calls


@pytest.fixture(scope="session")
def fitted(corpus: glint_lda.Corpus) -> Fitted:
    calls: List[dict] = []
    lda = glint_lda.LDA(k=2, alpha=0.5, iterations=40, threads=1, seed=7)
    lda.fit(corpus, callback=calls.append)
    return Fitted(lda, calls)


@pytest.fixture(scope="session")
def cli() -> Path:
    """The glint-lda binary (GLINT_LDA_BIN, else target/debug/glint-lda of this checkout)."""
    path = Path(os.environ.get("GLINT_LDA_BIN", REPO / "target" / "debug" / "glint-lda"))
    if not path.is_file():
        pytest.skip(f"{path} is not built (cargo build -p cli)")
    return path


def run_cli(cli: Path, *args: object) -> subprocess.CompletedProcess:
    """Runs glint-lda quietly; fails the test with its stderr if it fails."""
    done = subprocess.run(
        [str(cli), "-q", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"glint-lda {args} failed:\n{done.stderr}"
    return done

"""Shared fixtures: one batch engine per test session (a thread pool sized to the machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blindmatch.crypto.batch import BatchEngine


@pytest.fixture(scope="session")
def engine() -> Iterator[BatchEngine]:
    eng = BatchEngine()
    yield eng
    eng.close()

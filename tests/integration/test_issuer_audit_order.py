"""The issuer audits before each effect (issue 17, item 2): a log that cannot take the entry
leaves no token file and spends no allowance."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blindmatch.audit import log as audit_log
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.evaluation import BlindEvaluator
from blindmatch.issuer.issue import issue_tokens
from blindmatch.normalize import default_schema
from tests.helpers.issuer_setup import make_issuer, write_orders

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
ALICE = {"name": "Alice Smith", "address": "100 Main St, Springfield, IL 62701", "order_date": "2026-11-02"}
HOLDER = "Example Tax Authority"


@pytest.fixture
def issuer(tmp_path: Path) -> IssuerConfig:
    return make_issuer(tmp_path / "issuer", {HOLDER: 10})


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchEngine]:
    eng = BatchEngine(workers=1)
    yield eng
    eng.close()


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_log, "_write_all", full)


def test_tokens_the_log_cannot_record_are_not_written(
        tmp_path: Path, issuer: IssuerConfig, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    orders, tokens = tmp_path / "orders.csv", tmp_path / "tokens"
    write_orders(orders, [ALICE])
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        issue_tokens(orders, issuer, tokens, now=NOW, engine=engine)
    assert not tokens.exists() and not list(tmp_path.glob(".tokens*"))
    monkeypatch.undo()
    assert issue_tokens(orders, issuer, tokens, now=NOW, engine=engine).issued == 1 and tokens.exists()


def test_an_evaluation_the_log_cannot_record_spends_no_allowance(
        issuer: IssuerConfig, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluator = BlindEvaluator(issuer, engine)
    try:
        epoch, pk = evaluator.public_key()
        keys = [k for _, k in default_schema().match_keys(ALICE, "holder")]
        stage = IssuerTokens(lambda b: evaluator.evaluate(HOLDER, b, epoch.name), pk, epoch.name, engine)
        _full_disk(monkeypatch)
        with pytest.raises(OSError, match="No space left"):
            stage.convert(keys)
        assert evaluator.used(HOLDER, epoch) == 0
        monkeypatch.undo()
        stage.convert(keys)
        assert evaluator.used(HOLDER, epoch) == len(keys)
    finally:
        evaluator.close()

"""Every command numbers the rows of a CSV the same way (issue 17, item 9; ``blindmatch.csvrows``).

Row 1 is the first data row after the header, blank rows are not counted and a quoted
field's line breaks do not start a row. A byte that is not UTF-8 is named in the row that
holds it, although Python decodes the file in blocks: the holder's build used to say
"after row 4877" and the requester "row 4962" for data row 5000.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.holder_deployment import Deployment, make_deployment, record

from blindmatch.cli.main import main
from blindmatch.cli.matchkeys import run as matchkeys
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.index_build import build_index
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.issue import issue_tokens
from blindmatch.issuer.tokenfile import read_token_file
from blindmatch.normalize import default_schema
from blindmatch.requester.inputs import prepare_elements
from blindmatch.vocabulary import BlindmatchError, Mode
from tests.helpers.issuer_setup import make_issuer

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
HEADER = ["name", "address", "order_date", "order_status", "note"]


def _line(i: int, note: str = "") -> str:
    values = [*record(i).values(), "final", note]
    values[2] = "2026-11-02"  # recent and final: the issuer issues it
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def orders_text(rows: int, special: dict[int, str] | None = None) -> str:
    """ORDERS.csv (also the holder's records and the requester's queries) with ``rows`` data
    rows, blank rows and a two-line quoted field early on; ``special[n]`` replaces data row n."""
    special = special or {}
    text = ",".join(HEADER) + "\n"
    for number in range(1, rows + 1):
        if number == 2:
            text += "\n,,,,\n   \n"  # blank rows: not counted
        text += special.get(number, _line(number, "line one\nline two" if number == 3 else ""))
    return text


@pytest.fixture
def dep(tmp_path: Path) -> Deployment:
    return make_deployment(tmp_path / "holder", records=5)


@pytest.fixture
def issuer(tmp_path: Path) -> IssuerConfig:
    return make_issuer(tmp_path / "issuer", {"Example Tax Authority": 10})


def _errors(path: Path, dep: Deployment, issuer: IssuerConfig, engine: BatchEngine,
            capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """What each command says about ``path``."""
    attempts: dict[str, Callable[[], object]] = {
        "holder index": lambda: build_index(path, dep.config, progress=False, allow_shrink=True, engine=engine),
        "requester": lambda: prepare_elements(path, default_schema(), Mode.MEMBERSHIP, NOW.date()),
        "issuer issue": lambda: issue_tokens(path, issuer, path.with_name("tokens"), now=NOW, engine=engine),
        "matchkeys": lambda: matchkeys(str(path), "requester", default_schema(), True, io.StringIO()),
    }
    said = {}
    for command, attempt in attempts.items():
        with pytest.raises(BlindmatchError) as info:
            attempt()
        said[command] = str(info.value)
    assert main(["holder", "index", str(path), "--config", str(dep.config_path), "--quiet"]) == 1
    said["holder index (CLI)"] = capsys.readouterr().err.strip()
    return said


def test_a_byte_that_is_not_utf8_in_data_row_5000_is_row_5000_everywhere(
        tmp_path: Path, dep: Deployment, issuer: IssuerConfig, engine: BatchEngine,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.csv"
    bad = _line(5000).encode().replace(b"Springfield", b"Springf\xefeld")
    path.write_bytes(orders_text(5001).encode().replace(_line(5000).encode(), bad))
    said = _errors(path, dep, issuer, engine, capsys)
    for command, message in said.items():
        assert f"{path}: row 5000 is not valid UTF-8" in message, (command, message)
        assert "Springf" not in message  # never a value


def test_an_unterminated_quote_in_data_row_4000_is_row_4000_everywhere(
        tmp_path: Path, dep: Deployment, issuer: IssuerConfig, engine: BatchEngine,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(orders_text(4500, {4000: '"Zed Zulu,' + _line(4000)}))  # swallows every later row
    for command, message in _errors(path, dep, issuer, engine, capsys).items():
        assert f"{path}: row 4000: not readable CSV" in message, (command, message)
        assert "Zed" not in message


def test_a_row_with_too_many_values_is_refused_under_one_number_everywhere(
        tmp_path: Path, dep: Deployment, issuer: IssuerConfig, engine: BatchEngine) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(orders_text(6, {4: _line(4).rstrip("\n") + ",extra\n"}))

    report = build_index(path, dep.config, progress=False, allow_shrink=True, engine=engine)
    rejects = (dep.config.index_dir / "rejects.csv").read_text().splitlines()
    assert report.rows == 6 and rejects[1:] == ["4,columns,more values than the header has columns"]

    _, statuses = prepare_elements(path, default_schema(), Mode.MEMBERSHIP, NOW.date())
    assert [(number, status) for number, status, _ in statuses if status != "ok"] == [(4, "invalid: columns")]
    assert [number for number, _, _ in statuses] == [1, 2, 3, 4, 5, 6]

    issued = issue_tokens(path, issuer, tmp_path / "tokens", now=NOW, engine=engine)
    tokens = read_token_file(tmp_path / "tokens", bytes.fromhex(issuer.signing_key.with_name("issuer.key.pub").read_text()))
    assert issued.refused == {"invalid: columns": 1} and sorted(tokens.tokens) == [1, 2, 3, 5, 6]

    out = io.StringIO()
    assert matchkeys(str(path), "requester", default_schema(), True, out) == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(obj["row"], obj["error"]) for obj in lines if obj["error"]] == [(4, "row 4: more values than the header has columns")]


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchEngine]:
    eng = BatchEngine(workers=1)
    yield eng
    eng.close()

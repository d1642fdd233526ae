"""CSV input: the holder's records file (``holder index``) and the requester's queries file.

Both are the organisations' own exports, so anything can be in them: random bytes,
non-UTF-8, huge fields, missing columns, ragged rows. The holder's build must end in a
report or ``IndexBuildError`` naming the file, and a failed rebuild must leave the key
and the committed index exactly as they were; the requester's preparation must end in
per-row statuses or ``JobInputError`` naming the file.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from fuzz_support import assert_clear, heavy, snapshot
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.core.outputs import Mode
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.normalize import default_schema
from blindmatch.requester.inputs import JobInputError, prepare_elements
from blindmatch.vocabulary import BlindmatchError

pytestmark = pytest.mark.fuzz

HOLDER_TOML = """\
[holder]
organisation = "Example Tax Authority"
policy = "policy.toml"
[holder.tls]
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
allowed_organisations = ["County Court of Example"]
"""
GOOD_ROWS = [
    ("Alice Smith", "100 Main St, Springfield, IL 62701"),
    ("Bob Jones", "12 Oak Ave Apt 4, Springfield, IL 62701"),
]
COLUMNS = ["name", "address", "order_date"]
TODAY = date(2026, 6, 1)


@pytest.fixture(scope="module")
def built(engine: BatchEngine) -> Iterator[Path]:
    """A holder directory with a committed index, copied for each example."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "holder.toml").write_text(HOLDER_TOML)
        records = root / "good.csv"
        records.write_text("name,address\n" + "".join(f'"{n}","{a}"\n' for n, a in GOOD_ROWS))
        build_index(records, load_holder_config(root / "holder.toml"), progress=False, engine=engine)
        records.unlink()
        yield root


FIELD = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", '"', '""', "\n", "\r\n", "\x00", ",", "\ufeff", "Apt", "PO Box", "#"]),
    st.sampled_from([name for name, _ in GOOD_ROWS] + [address for _, address in GOOD_ROWS]),
    st.sampled_from(["2024-01-15", "02/30/2024", "13/01/2024", "0000-01-01", "9999-12-31"]),
)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """A CSV export as an operator might produce one, then damaged in the byte stream."""
    header = draw(st.one_of(st.permutations(COLUMNS), st.lists(st.sampled_from([*COLUMNS, "extra", ""]), max_size=4)))
    lines = [list(header)]
    for _ in range(draw(st.integers(0, 6))):
        width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        lines.append([draw(FIELD) for _ in range(max(0, width))])
    handle = _Buffer()
    csv.writer(handle).writerows(lines)
    raw = handle.text.encode("utf-8", "surrogatepass")
    action = draw(st.sampled_from(["none", "none", "bom", "latin1", "cut", "garbage", "huge"]))
    if action == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif action == "latin1":
        raw = raw.replace(b"a", b"\xe9", 1)
    elif action == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif action == "garbage":
        raw = draw(st.binary(max_size=200))
    elif action == "huge":  # beyond csv's field size limit (131072), and an unterminated quote
        raw += b'"' + b"x" * 140_000 + draw(st.sampled_from([b'"\n', b""]))
    return raw


class _Buffer:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s


@heavy()
@given(csv_bytes())
def test_holder_build_reports_or_refuses_and_a_refusal_changes_nothing(
    built: Path, engine: BatchEngine, raw: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "holder"
        shutil.copytree(built, root)
        records = Path(tmp) / "records.csv"
        records.write_bytes(raw)
        before = snapshot(root)
        try:
            report = build_index(records, load_holder_config(root / "holder.toml"), progress=False, engine=engine)
        except IndexBuildError as exc:
            assert_clear(exc, str(records))
            assert snapshot(root) == before, "a refused build changed the holder's files"
            return
        assert report.rows >= report.rejected >= 0
        assert sum(report.rejects_by_field.values()) == report.rejected


@given(csv_bytes(), st.sampled_from(list(Mode)))
def test_requester_prepares_statuses_or_refuses_the_file(raw: bytes, mode: Mode) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        queries = Path(tmp) / "queries.csv"
        queries.write_bytes(raw)
        try:
            elements, statuses = prepare_elements(queries, default_schema(), mode, TODAY)
        except JobInputError as exc:
            assert_clear(exc)
            return
        assert len(elements.keys) == len(elements.rows) == len(elements.tiers)
        assert [number for number, _, _ in statuses] == list(range(1, len(statuses) + 1))
        assert all(status.strip() for _, status, _ in statuses)


# --- found by fuzzing, left for the owners of node/ and normalize/ (being restructured) --------

LONG_NAME = "A" * 70_000  # within csv's field limit, but its match key exceeds the 65535-byte OPRF input


def test_holder_build_rejects_a_row_whose_key_is_too_long(built: Path, engine: BatchEngine, tmp_path: Path) -> None:
    root = tmp_path / "holder"
    shutil.copytree(built, root)
    records = tmp_path / "records.csv"
    records.write_text(f'name,address\n"{LONG_NAME}","{GOOD_ROWS[0][1]}"\n')
    # The row is rejected on its name (not a crash); a build left with no row is then refused.
    with pytest.raises(IndexBuildError, match=r"all 1 rows were rejected; .*rows rejected by field: name 1"):
        build_index(records, load_holder_config(root / "holder.toml"), progress=False, engine=engine)


def test_requester_marks_a_row_whose_key_is_too_long_invalid(tmp_path: Path) -> None:
    queries = tmp_path / "queries.csv"
    queries.write_text(f'name,address,order_date\n"{LONG_NAME}","{GOOD_ROWS[0][1]}",2026-01-02\n')
    _, statuses = prepare_elements(queries, default_schema(), Mode.MEMBERSHIP, TODAY)
    assert statuses[0][1].startswith("invalid")


def test_a_failed_first_build_leaves_nothing(tmp_path: Path, engine: BatchEngine) -> None:
    (tmp_path / "holder.toml").write_text(HOLDER_TOML)
    records = tmp_path / "records.csv"
    records.write_bytes(b"name,address\n\xff\xfe\n")
    before = snapshot(tmp_path)
    with pytest.raises(IndexBuildError):
        build_index(records, load_holder_config(tmp_path / "holder.toml"), progress=False, engine=engine)
    assert snapshot(tmp_path) == before


_READ_ERROR = re.compile(r": row (\d+)(?: is not valid UTF-8|: (?:not readable CSV|a field exceeds))")
_ALL_REJECTED = re.compile(r"refusing to build an empty index: (?:the file has (no) data rows|all (\d+) rows were rejected)")


def _outcome(attempt: Callable[[], int]) -> tuple[str, int | None]:
    """("rows", count) when the file was read to its end (a build refused as empty included),
    ("row", n) when row n could not be read, ("other", None) for a refusal of the file as a
    whole (header, columns)."""
    try:
        return "rows", attempt()
    except BlindmatchError as exc:
        if found := _READ_ERROR.search(str(exc)):
            return "row", int(found.group(1))
        if found := _ALL_REJECTED.search(str(exc)):
            return "rows", 0 if found.group(1) else int(found.group(2))
        return "other", None


@heavy()
@given(csv_bytes())
def test_the_holder_and_the_requester_number_rows_alike(built: Path, engine: BatchEngine, raw: bytes) -> None:
    """Issue 17: the same file gives the same row count, or the same unreadable row, to both."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "holder"
        shutil.copytree(built, root)
        records = Path(tmp) / "records.csv"
        records.write_bytes(raw)
        config = load_holder_config(root / "holder.toml")
        holder = _outcome(lambda: build_index(records, config, progress=False, engine=engine, allow_shrink=True).rows)
        requester = _outcome(lambda: len(prepare_elements(records, default_schema(), Mode.MEMBERSHIP, TODAY)[1]))
    if "other" not in (holder[0], requester[0]):
        assert holder == requester

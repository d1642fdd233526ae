"""Guarded index builds (issue 17): an empty, shrunken or mostly rejected build is refused
with a reason and the committed index is kept, unless --allow-shrink says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.holder_deployment import Deployment, make_deployment, write_records

from blindmatch.cli.main import main
from blindmatch.holder.store import read_manifest


@pytest.fixture
def dep(tmp_path: Path) -> Deployment:
    return make_deployment(tmp_path, records=100)  # 100 records and 2 rejected rows


def index(dep: Deployment, records: Path, *extra: str) -> int:
    return main(["holder", "index", str(records), "--config", str(dep.root / "holder.toml"), "--quiet", *extra])


def test_header_only_file_is_refused_even_with_allow_shrink(dep: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    before = read_manifest(dep.root / "index")
    empty = dep.root / "empty.csv"
    empty.write_text("name,address,order_date\n")
    for extra in ((), ("--allow-shrink",)):
        assert index(dep, empty, *extra) == 1
        assert "refusing to build an empty index: the file has no data rows" in capsys.readouterr().err
    assert read_manifest(dep.root / "index") == before


def test_shrinking_build_needs_allow_shrink(dep: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    before = read_manifest(dep.root / "index")
    smaller = dep.root / "smaller.csv"
    write_records(smaller, range(60))
    assert index(dep, smaller) == 1
    assert "60 records, 40 fewer than the current one (100)" in capsys.readouterr().err
    assert read_manifest(dep.root / "index") == before
    assert index(dep, smaller, "--allow-shrink") == 0
    assert read_manifest(dep.root / "index").records == 60


def test_mostly_rejected_build_is_refused(dep: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    before = read_manifest(dep.root / "index")
    bad = dep.root / "bad.csv"
    write_records(bad, range(100), bad_rows=150)
    assert index(dep, bad) == 1
    err = capsys.readouterr().err
    assert "150 of 250 rows were rejected (60.0%)" in err and "max_rejected_share (50.0%)" in err
    assert "rows rejected by field: name 150" in err and str(bad) in err
    assert read_manifest(dep.root / "index") == before
    assert (dep.root / "index" / "rejects.csv").read_text().count("\n") == 3  # the committed build's, kept


def test_json_gives_scripts_the_summary_or_the_error_as_the_last_line(
        dep: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    assert index(dep, dep.root / "records.csv", "--json") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["rows"], summary["indexed"], summary["rejected"]) == (102, 100, 2)
    assert {i["digest"] for i in summary["indexes"]} == {f.digest.hex() for f in read_manifest(dep.root / "index").files.values()}
    empty = dep.root / "empty.csv"
    empty.write_text("name,address,order_date\n")
    assert index(dep, empty, "--json") == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["exit_code"] == 1 and "refusing to build an empty index" in last["error"]

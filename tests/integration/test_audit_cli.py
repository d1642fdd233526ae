"""``blindmatch audit`` sub-commands, run through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blindmatch.cli import main as cli_main


@pytest.fixture(autouse=True)
def audit_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only this command group, so these tests do not depend on the others."""
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("blindmatch.cli.audit",))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(["audit", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_ok_and_json(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", pair[0])
    assert code == 0 and "OK: holder.tax-agency.example/audit: 32 entries, 6 checkpoints" in out
    code, out, _ = run(capsys, "verify", pair[1], "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_verify_names_the_bad_line(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    log_file = pair[0] / "audit" / "log.jsonl"
    lines = log_file.read_bytes().splitlines(keepends=True)
    lines[6], lines[7] = lines[7], lines[6]
    log_file.write_bytes(b"".join(lines))
    code, _, err = run(capsys, "verify", pair[0])
    assert code == 1
    assert "verification failed: log.jsonl line 7: index is 7, expected 6" in err


def test_verify_with_pinned_key(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    holder_pub = pair[0] / "audit" / "audit.pub"
    assert run(capsys, "verify", pair[0], "--key", holder_pub)[0] == 0
    code, _, err = run(capsys, "verify", pair[0], "--key", pair[1] / "audit" / "audit.pub")
    assert code == 1 and "pinned" in err
    code, _, err = run(capsys, "verify", pair[0], "--key", "garbage")
    assert code == 2 and "--key" in err


def test_show_filters_sessions_and_prints_json(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", pair[0])
    assert code == 0 and len(out.splitlines()) == 32
    assert out.splitlines()[0].split("\t")[2] == "daemon_started"
    sid = json.loads((pair[0] / "audit" / "log.jsonl").read_text().splitlines()[3])["session_id"]
    code, out, _ = run(capsys, "show", pair[0], "--session", sid[:8], "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and entries and all(e["session_id"] == sid for e in entries)
    assert {e["event"] for e in entries} >= {"session_opened", "session_closed"}
    code, _, err = run(capsys, "show", pair[0], "--session", "ffffffff")
    assert code == 1 and "no entries" in err


def test_reconcile_ok_and_mismatch(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "reconcile", *pair)
    assert code == 0 and "OK: 7 sessions" in out
    log_file = pair[1] / "audit" / "log.jsonl"
    lines = log_file.read_bytes().splitlines(keepends=True)
    log_file.write_bytes(b"".join(lines[:-1]))
    code, out, err = run(capsys, "reconcile", *pair)
    assert code == 1 and "requester log does not verify" in out and "mismatch" in err


def test_report_writes_html(pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "report.html"
    code, _out, _ = run(capsys, "report", pair[0], "--out", out_file)
    assert code == 0 and out_file.read_text().startswith("<!DOCTYPE html>")


def test_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("verify", tmp_path / "nope"), ("show", tmp_path / "nope"), ("reconcile", tmp_path, tmp_path / "nope")):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "no such directory" in err
    code, _, err = run(capsys, "show", tmp_path)
    assert code == 2 and "no audit log" in err

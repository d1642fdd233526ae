"""``blindmatch audit verify --witness``: rewrites re-signed with the log's own key are caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.witness_setup import (
    HOLDER_ORIGIN,
    WitnessSetup,
    add_sessions,
    rewrite_log,
    running_witness,
    submit,
)

from blindmatch.audit import AuditLog, verify_log
from blindmatch.audit.checkpoint import parse_checkpoint, split_notes
from blindmatch.audit.cosigned import COSIGNED_NAME
from blindmatch.audit.log import read_verifier_key
from blindmatch.audit.report import render_report
from blindmatch.audit.witness_check import SourcedNote
from blindmatch.cli.main import main
from blindmatch.witness.client import WitnessClient, WitnessSubmitError


def _export(s: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["witness", "export", "--config", str(s.config_path), HOLDER_ORIGIN]) == 0
    path = s.root / "latest.note"
    path.write_text(capsys.readouterr().out)
    return path


def _verify(s: WitnessSetup, *extra: str) -> int:
    return main(["audit", "verify", str(s.log_dir), "--witness", str(s.root / "witness.key.pub"), *extra])


def _two_cosigned_checkpoints(s: WitnessSetup) -> int:
    """Cosign size 3, then size 6; returns the first size."""
    with running_witness(s.config_path) as daemon:
        submit(s, daemon.port)
        with s.open_log() as log:
            first = log.size
            add_sessions(log, 3, 3)
            WitnessClient([s.endpoint(daemon.port)]).submit(log, log.checkpoint())
    return first


def _truncate(s: WitnessSetup, size: int, drop_cosigned: bool) -> None:
    """Remove the lines after ``size`` and every checkpoint (and optionally cosigned note) above it."""
    audit = s.log_dir / "audit"
    lines = (audit / "log.jsonl").read_bytes().split(b"\n")[:size]
    (audit / "log.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    origin, key = read_verifier_key(audit)
    for name in ("checkpoints", COSIGNED_NAME) if drop_cosigned else ("checkpoints",):
        notes, _ = split_notes((audit / name).read_bytes())
        kept = [n for n in notes if parse_checkpoint(n, origin, key).size <= size]
        (audit / name).write_text("".join(n + "\n" for n in kept))


def test_an_untouched_witnessed_log_verifies(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    _two_cosigned_checkpoints(env)
    assert _verify(env, "--witnessed", str(_export(env, capsys))) == 0
    out = capsys.readouterr().out
    assert f"witnessed: {env.key.name} cosigned size 6 at " in out


def test_a_session_erased_after_cosigning_is_caught(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    _two_cosigned_checkpoints(env)
    rewrite_log(env.log_dir, keep=[0, 2, 3, 4, 5])  # session 1 erased, everything re-signed
    assert verify_log(env.log_dir).ok  # on its own the rewritten log is flawless
    assert _verify(env) == 1
    assert "the log was rewritten (or forked) after the witness saw it" in capsys.readouterr().err
    (env.log_dir / "audit" / COSIGNED_NAME).unlink()  # the operator also hides the cosignatures
    assert _verify(env) == 1
    assert "no checkpoint of this log carries a valid cosignature" in capsys.readouterr().err
    assert _verify(env, "--witnessed", str(_export(env, capsys))) == 1
    assert "latest.note" in capsys.readouterr().err


def test_truncation_at_a_checkpoint_is_caught(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    first = _two_cosigned_checkpoints(env)
    _truncate(env, first, drop_cosigned=False)
    assert verify_log(env.log_dir).ok
    assert _verify(env) == 1
    assert "entries were removed after the witness saw them (truncation or rollback)" in capsys.readouterr().err


def test_rollback_hiding_the_cosignatures_is_caught_with_the_witness_note(
    env: WitnessSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _two_cosigned_checkpoints(env)
    _truncate(env, first, drop_cosigned=True)
    # From the log's own files nothing is wrong any more: that is why the witness's own view is needed.
    assert _verify(env) == 0
    capsys.readouterr()
    assert _verify(env, "--witnessed", str(_export(env, capsys))) == 1
    assert "cosigned size 6" in capsys.readouterr().err


def test_a_forged_cosignature_fails(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    _two_cosigned_checkpoints(env)
    path = env.log_dir / "audit" / COSIGNED_NAME
    text = path.read_text()
    last_line = [line for line in text.splitlines() if line.startswith(f"\u2014 {env.key.name} ")][-1]
    name, blob = last_line.rsplit(" ", 1)
    forged = blob[:-6] + ("AAAA" if blob[-6:-2] != "AAAA" else "BBBB") + blob[-2:]
    path.write_text(text.replace(last_line, f"{name} {forged}"))
    assert _verify(env) == 1
    assert "does not verify" in capsys.readouterr().err


def test_verify_reports_timestamps_going_backwards(tmp_path: Path) -> None:
    times = iter([datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m) for m in (0, 5, 3, 6, 7, 8)])
    with AuditLog.open(tmp_path, "holder/clock-test", clock=lambda: next(times)) as log:
        add_sessions(log, 0, 4)
    result = verify_log(tmp_path)
    assert result.ok
    assert result.warnings == ("log.jsonl line 3: time 2026-01-01T00:03:00.000000Z is earlier than the previous "
                               "entry's 2026-01-01T00:05:00.000000Z",)


def test_verify_json_lists_witness_status(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    _two_cosigned_checkpoints(env)
    assert _verify(env, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [(w["witness"], w["size"]) for w in result["witnesses"]] == [(env.key.name, 6)]


def test_report_shows_witness_status_and_refusals(env: WitnessSetup) -> None:
    _two_cosigned_checkpoints(env)
    with running_witness(env.config_path) as daemon, env.open_log() as log:
        stale = WitnessClient([env.endpoint(daemon.port)])
        old = parse_checkpoint(split_notes((env.log_dir / "audit" / "checkpoints").read_bytes())[0][0],
                               log.origin, log.public_key)
        with pytest.raises(WitnessSubmitError, match="this log was rolled back"):
            stale.submit(log, old)
    page = render_report(env.log_dir, witnesses=[env.key], witnessed=[],
                         ledgers=[env.root / "state" / "events.jsonl"])
    assert 'id="witnesses"' in page and f"<td>{env.key.name}</td><td>6</td>" in page
    assert "Checkpoints refused by witnesses" in page and "size_conflict" in page
    bad = render_report(env.log_dir, witnesses=[env.key], witnessed=[SourcedNote("junk\n\n", "x")])
    assert "Verification FAILED" in bad and "No witness status" in bad


def test_cli_report_and_usage_errors(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    _two_cosigned_checkpoints(env)
    out = env.root / "report.html"
    key = str(env.root / "witness.key.pub")
    ledger = str(env.root / "state" / "events.jsonl")
    assert main(["audit", "report", str(env.log_dir), "--out", str(out), "--witness", key,
                 "--witness-ledger", ledger]) == 0
    assert f"<td>{env.key.name}</td><td>6</td>" in out.read_text()
    assert main(["audit", "verify", str(env.log_dir), "--witnessed", ledger]) == 2
    assert "--witnessed needs --witness" in capsys.readouterr().err
    assert main(["audit", "verify", str(env.log_dir), "--witness", "not+a+key"]) == 2
    assert "--witness not+a+key:" in capsys.readouterr().err

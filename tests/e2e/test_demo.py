"""``blindmatch demo --json`` end to end: exact matches, held-back records, every policy refusal, witnessed logs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from blindmatch.pilot.processes import blindmatch_command

pytestmark = pytest.mark.timeout(240)


def test_demo_json_reports_exact_matches_and_every_refusal(tmp_path: Path) -> None:
    done = subprocess.run(blindmatch_command("demo", "--json", "--workdir", str(tmp_path / "demo")),
                          capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["holder_records"] >= 10_000 and summary["queries"] >= 1_000
    assert summary["expected_matches"] > 0
    assert summary["matches"] == summary["expected_matches"]
    assert summary["false_matches"] == summary["missed_matches"] == 0
    assert summary["ineligible_records"] > 0
    # Tokens only for the eligible records; made-up tokens for ineligible people the holder has match nothing.
    eligibility = summary["eligibility"]
    assert eligibility["tokens_issued"] == eligibility["eligible_records"] == summary["queries"] - eligibility["ineligible_records"]
    assert eligibility["ineligible_records"] >= summary["ineligible_records"]
    assert eligibility["ineligible_tried"] > 0 and eligibility["ineligible_matched"] == 0
    assert set(summary["refusals"]) == {"unsigned", "unknown_official", "wrong_organisation", "expired",
                                        "replayed", "over_budget", "mode_not_allowed", "dual_control_missing"}
    assert summary["refusals"]["dual_control_missing"] == "PERMISSION_DENIED"
    # The officials approved through the CLI; the job's one session needed (and got) two signatures.
    approval = summary["approval"]
    assert approval["elements"] > approval["dual_control_records"] and approval["officials"] == ["alice.key", "bob.key"]
    requester_keys = {p.relative_to(tmp_path / "demo" / "requester") for p in (tmp_path / "demo" / "requester").rglob("*.key")}
    assert requester_keys == {Path("pki/client.key"), Path("audit/audit.key")}  # the daemon's own keys; no official's
    assert summary["other_refusals"] == {"too_few_records": "FAILED_PRECONDITION"}
    assert all(status not in ("OK", "") for status in summary["refusals"].values())
    # Both audit logs are left for review, verified and reconciled; so does the reviewer CLI say.
    assert summary["audit"] == {"holder": "ok", "requester": "ok", "reconcile": "ok"}
    for side in ("holder", "requester"):
        assert (tmp_path / "demo" / side / "audit" / "log.jsonl").stat().st_size > 0
        verify = subprocess.run(blindmatch_command("audit", "verify", str(tmp_path / "demo" / side), "--policy",
                                                   str(tmp_path / "demo" / "holder" / "policy.toml")),
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "signed requests re-verified against the policy" in verify.stdout
    reconciled = subprocess.run(blindmatch_command("audit", "reconcile", str(tmp_path / "demo" / "holder"), str(tmp_path / "demo" / "requester")),
                                capture_output=True, text=True)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    # The daemons exchanged a checkpoint each way in every completed session (SPEC.md 10.4.1).
    exchanged = re.search(r"\((\d+) kept by the holder, (\d+) by the requester\)", reconciled.stdout)
    assert exchanged and int(exchanged[1]) == int(exchanged[2]) > 0, reconciled.stdout
    # One witness cosigned both logs up to their latest checkpoints; each verifies against it, and they reconcile.
    witness = summary["witness"]
    assert {key: witness[key] for key in ("verify_holder", "verify_requester", "reconcile", "witness_exit_code")} == {
        "verify_holder": "ok", "verify_requester": "ok", "reconcile": "ok", "witness_exit_code": 0}
    assert witness["holder_cosigned_size"] > 0 and witness["requester_cosigned_size"] > 0
    assert 0 < witness["holder_cosigned_while_serving"] <= witness["holder_cosigned_size"]  # in the background
    # The one-shot 'requester match' (no requester daemon) submitted its own checkpoint before it exited.
    assert witness["match_run"]["cosigned_by"] == [witness["name"]] and witness["match_run"]["pending"] == []
    assert 0 < witness["match_run"]["checkpoint_size"] <= witness["requester_cosigned_size"]
    witness_dir = tmp_path / "demo" / "witness"
    assert (witness_dir / "witness.key").stat().st_mode & 0o777 == 0o600
    for side in ("holder", "requester"):
        verify = subprocess.run(blindmatch_command("audit", "verify", str(tmp_path / "demo" / side), "--witness",
                                                   str(witness_dir / "witness.key.pub"), "--json"),
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(verify.stdout)["witnesses"][0]["size"] == witness[f"{side}_cosigned_size"]
    report = tmp_path / "report.html"
    drawn = subprocess.run(blindmatch_command("audit", "report", str(tmp_path / "demo" / "holder"), "--out", str(report),
                                              "--witness", str(witness_dir / "witness.key.pub"), "--witness-ledger",
                                              str(witness_dir / "state" / "events.jsonl"),
                                              "--peer", str(tmp_path / "demo" / "requester")),
                           capture_output=True, text=True)
    assert drawn.returncode == 0 and "<svg" in report.read_text(), drawn.stderr
    assert re.search(rf"<td>{re.escape(witness['name'])}</td>\s*<td>{witness['holder_cosigned_size']}</td>", report.read_text())

"""The vocabulary is the one list of reasons: SPEC.md's tables and the source agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import grpc

from blindmatch.vocabulary import (
    POLICY_REASONS,
    REFUSAL_REASONS,
    WIRE_REASONS,
    ExitCode,
    JobState,
    Reason,
    exit_code_for_job,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "protocol" / "SPEC.md").read_text()


def _table(heading: str) -> dict[str, str]:
    """``reason -> status`` from the first table after ``heading`` in SPEC.md."""
    section = SPEC[SPEC.index(heading):]
    rows: dict[str, str] = {}
    started = False
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
            if re.fullmatch(r"[a-z_]+", cells[0]) and cells[0] != "reason":
                rows[cells[0]] = cells[1]
        elif started:
            break
    return rows


def test_spec_refusal_table_lists_exactly_the_policy_reasons() -> None:
    table = _table("### 7.7 Refusals")
    assert table == {r.value: r.status for r in POLICY_REASONS}


def test_spec_status_table_lists_exactly_the_wire_reasons() -> None:
    table = _table("### 9.5 Status codes and reasons")
    wire = {r.value: r.status for r in WIRE_REASONS if r is not Reason.CANCELLED}
    assert table == wire


def test_every_status_is_a_grpc_status_and_refusals_exit_three() -> None:
    for reason in Reason:
        assert reason.status in grpc.StatusCode.__members__
        if reason.is_refusal and reason not in (Reason.HOLDER_UNAVAILABLE, Reason.AUDIT_UNAVAILABLE):
            assert reason.exit_code is ExitCode.REFUSED
            assert JobState.ended_by(reason) is JobState.REFUSED


def test_a_schema_mismatch_job_ends_refused_as_its_session_is_audited() -> None:
    assert Reason.SCHEMA_MISMATCH in REFUSAL_REASONS
    assert JobState.ended_by(Reason.SCHEMA_MISMATCH) is JobState.REFUSED
    assert exit_code_for_job("refused", "schema_mismatch") == 3
    assert exit_code_for_job("failed", "bad_input") == 2  # the same input error exits 2 from every path
    assert exit_code_for_job("failed", "") == 1
    assert exit_code_for_job("holder_unavailable", "") == 4
    assert exit_code_for_job("queued", "") == 5


def test_each_reason_is_spelled_in_one_source_file() -> None:
    sources = [p for p in (ROOT / "src" / "blindmatch").rglob("*.py") if "v1" not in p.parts]
    for reason in Reason:
        if reason in (Reason.REFUSED, Reason.FAILED):
            continue  # also job states, chart labels: words of their own
        spelled = [p for p in sources if re.search(rf"[\"']{reason.value}[\"']", p.read_text())]
        assert [p.name for p in spelled] == ["vocabulary.py"], reason

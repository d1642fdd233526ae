"""The helpers' audit log pair verifies and reconciles."""

from __future__ import annotations

from pathlib import Path

from helpers.audit_pairs import write_pair

from blindmatch.audit import reconcile, verify_log


def test_demo_pair_verifies_and_reconciles(tmp_path: Path) -> None:
    holder_dir, requester_dir = write_pair(tmp_path)
    for directory in (holder_dir, requester_dir):
        result = verify_log(directory)
        assert result.ok, result.error
        assert result.unsigned_tail == 0
        assert result.checkpoints == 6  # five completed sessions + shutdown
    outcome = reconcile(holder_dir, requester_dir)
    assert outcome.ok, outcome.mismatches
    assert outcome.sessions == 7

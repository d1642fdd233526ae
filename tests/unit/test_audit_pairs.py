"""The helpers' audit log pair verifies and reconciles."""

from __future__ import annotations

from pathlib import Path

from helpers.audit_pairs import write_pair

from blindmatch.audit import reconcile, verify_log


def test_demo_pair_verifies_and_reconciles(tmp_path: Path) -> None:
    holder_dir, requester_dir = write_pair(tmp_path)
    # Five completed sessions + shutdown; the requester also checkpoints for each Close it sends.
    for directory, checkpoints in ((holder_dir, 6), (requester_dir, 11)):
        result = verify_log(directory)
        assert result.ok, result.error
        assert result.unsigned_tail == 0
        assert result.checkpoints == checkpoints
    outcome = reconcile(holder_dir, requester_dir)
    assert outcome.ok, outcome.mismatches
    assert outcome.sessions == 7
    assert outcome.peer_checkpoints == (5, 5)  # one each way per completed session

"""The audit keeper: periodic checkpoints, refusal summaries, witness submission with backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.witness_setup import HOLDER_ORIGIN, WitnessSetup, add_sessions, running_witness

from blindmatch.audit import AuditLog
from blindmatch.audit.keeper import AuditKeeper, KeeperSettings, keeper_settings
from blindmatch.audit.merkle import CompactRange, MerkleTree
from blindmatch.vocabulary import Reason
from blindmatch.witness.client import WitnessClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entries_of(log: AuditLog) -> list[dict[str, object]]:
    return [json.loads(line) for line in (log.path / "log.jsonl").read_text().splitlines()]


def test_compact_range_roots_equal_the_full_tree() -> None:
    compact, full = CompactRange(), MerkleTree()
    assert compact.root() == full.root()
    for i in range(130):
        compact.append(f"leaf {i}".encode())
        full.append(f"leaf {i}".encode())
        assert compact.root() == full.root(), i


def test_checkpoint_every_n_entries_or_t_seconds(tmp_path: Path) -> None:
    clock = FakeClock()
    with AuditLog.open(tmp_path, HOLDER_ORIGIN) as log:
        keeper = AuditKeeper(log, KeeperSettings(every_entries=5, every_seconds=30), clock=clock)
        add_sessions(log, 0, 4)
        keeper.tick()
        assert log.latest_checkpoint() is None  # 4 entries, 0 s: not due
        add_sessions(log, 4, 1)
        keeper.tick()
        cp = log.latest_checkpoint()
        assert cp is not None and cp.size == 5
        add_sessions(log, 5, 1)
        keeper.tick()
        clock.now += 29
        keeper.tick()
        assert log.latest_checkpoint() == cp
        clock.now += 1
        keeper.tick()
        assert log.latest_checkpoint().size == 6  # type: ignore[union-attr]


def test_refusal_flood_adds_one_summary_per_period(tmp_path: Path) -> None:
    clock = FakeClock()
    with AuditLog.open(tmp_path, HOLDER_ORIGIN) as log:
        keeper = AuditKeeper(log, KeeperSettings(summary_seconds=60, max_individual_refusals=3), clock=clock)
        before = (log.path / "log.jsonl").stat().st_size
        for i in range(200):
            keeper.refusals.refused(i.to_bytes(16, "big"), "Benefits Office", "", Reason.UNSIGNED, "UNAUTHENTICATED")
            keeper.refusals.unauthenticated("", Reason.ORGANISATION_NOT_ALLOWED)
        for i in range(10):  # signed ones: logged one by one up to the cap, then counted
            keeper.refusals.refused(i.to_bytes(16, "big"), "Benefits Office", "alice", Reason.OVER_BUDGET,
                                    "RESOURCE_EXHAUSTED")
        keeper.tick()
        assert log.size == 3  # only the 3 individual signed refusals so far
        clock.now += 60
        keeper.tick()
        events = entries_of(log)
        assert [e["event"] for e in events] == ["session_refused"] * 3 + ["refusals_summarised"]
        assert events[-1]["reasons"] == {"unsigned": 200, "organisation_not_allowed": 200, "over_budget": 7}
        assert events[-1]["refused"] == 407 and events[-1]["peers"] == 2
        assert (log.path / "log.jsonl").stat().st_size - before < 3000  # bounded, whatever was sent
        clock.now += 60
        keeper.tick()
        assert log.size == 4  # nothing counted: no empty summary


def test_failed_submission_backs_off_and_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    calls: list[int] = []
    fail = [True]

    def submit(log: AuditLog) -> None:
        calls.append(log.latest_checkpoint().size)  # type: ignore[union-attr]
        if fail[0]:
            raise OSError("witness unreachable")

    with AuditLog.open(tmp_path, HOLDER_ORIGIN) as log:
        keeper = AuditKeeper(log, KeeperSettings(retry_min_seconds=2, retry_max_seconds=5), submit, clock=clock)
        add_sessions(log, 0, 1)
        log.checkpoint()
        keeper.tick()
        keeper.tick()  # within the backoff: no second attempt
        assert calls == [1] and "unreachable" in keeper.last_error
        for step in (2, 4, 5):  # 2 s, then doubled, capped at 5 s
            clock.now += step - 0.5
            keeper.tick()
            clock.now += 0.5
            keeper.tick()
        assert len(calls) == 4
        fail[0] = False
        clock.now += 5
        keeper.tick()
        keeper.tick()  # submitted: the same checkpoint is not sent again
        assert len(calls) == 5 and keeper.last_error == ""


def test_keeper_gets_checkpoints_cosigned(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as witness, env.open_log() as log:
        client = WitnessClient([env.endpoint(witness.port)])
        keeper = AuditKeeper(log, KeeperSettings(every_entries=1), client.submit)
        add_sessions(log, 3, 2)
        keeper.tick()
        assert log.latest_checkpoint().size == 5  # type: ignore[union-attr]
        assert client.pending(log) == []
        add_sessions(log, 5, 1)
        keeper.stop()
        assert client.pending(log) == []  # the shutdown checkpoint is cosigned too


def test_settings_are_checked() -> None:
    assert keeper_settings({"every_entries": 10}, "holder.audit_log").every_entries == 10
    with pytest.raises(ValueError, match=r"holder\.audit_log\.every_entries: must be an integer"):
        keeper_settings({"every_entries": 0}, "holder.audit_log")
    with pytest.raises(ValueError, match=r"holder\.audit_log\.evry_seconds: unknown key"):
        keeper_settings({"evry_seconds": 1}, "holder.audit_log")

"""The witness's checks, without gRPC: extension, conflict, fork, bad proof, rollback, restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.witness_setup import HOLDER_ORG, OTHER_ORG, WitnessSetup, add_sessions, rewrite_log

from blindmatch.audit import AuditLog
from blindmatch.audit.cosignature import cosignatures_in, note_body
from blindmatch.witness import protocol as p
from blindmatch.witness.config import load_witness_config
from blindmatch.witness.core import Witness, WitnessRefusal
from blindmatch.witness.keys import load_witness_key
from blindmatch.witness.state import EVIDENCE, LEDGER, WitnessState, WitnessStateError


def _witness(s: WitnessSetup) -> Witness:
    config = load_witness_config(s.config_path)
    return Witness(config, load_witness_key(config.key_file), WitnessState(config.state_dir),
                   clock=lambda: datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def witness(env: WitnessSetup) -> Iterator[Witness]:
    w = _witness(env)
    yield w
    w._state.close()


def _body(log: AuditLog, old: int) -> bytes:
    cp = log.checkpoint()
    proof = log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
    return p.format_add_checkpoint(old, proof, cp.note)


def _refusal(witness: Witness, body: bytes, peer: str = HOLDER_ORG) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as info:
        witness.add_checkpoint(body, peer)
    return info.value


def _ledger(s: WitnessSetup) -> list[dict]:
    return [json.loads(line) for line in (s.root / "state" / LEDGER).read_text().splitlines()]


def test_first_checkpoint_then_an_extension_are_cosigned(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        cp = log.checkpoint()
        line = witness.add_checkpoint(p.format_add_checkpoint(0, [], cp.note), HOLDER_ORG)
        assert [c.timestamp for c in cosignatures_in(cp.note + line, env.key)] == [1796126400]
        add_sessions(log, 3, 4)
        body = _body(log, cp.size)
        second = log.latest_checkpoint()
        assert second is not None
        line = witness.add_checkpoint(body, HOLDER_ORG)
        assert cosignatures_in(second.note + line, env.key)
    assert [e["event"] for e in _ledger(env)] == ["cosigned", "cosigned"]
    assert _ledger(env)[1]["size"] == second.size


def test_wrong_old_size_is_a_conflict_carrying_the_witness_size(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        witness.add_checkpoint(_body(log, 0), HOLDER_ORG)
        size = log.size
        add_sessions(log, 3, 1)
        refusal = _refusal(witness, _body(log, 0))
    assert (refusal.reason, refusal.latest_size) == (p.SIZE_CONFLICT, size)
    assert _ledger(env)[-1]["reason"] == p.SIZE_CONFLICT


def test_fork_same_size_other_root_is_refused_and_both_checkpoints_kept(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        witness.add_checkpoint(_body(log, 0), HOLDER_ORG)
        cosigned_size = log.size
    rewrite_log(env.log_dir, keep=[0, 2], extra_sessions=1)  # same number of entries, other content
    with env.open_log() as forked:
        assert forked.size == cosigned_size
        fork = forked.checkpoint()
        refusal = _refusal(witness, p.format_add_checkpoint(cosigned_size, [], fork.note))
        again = _refusal(witness, p.format_add_checkpoint(cosigned_size, [], fork.note))
    assert refusal.reason == again.reason == p.FORK
    evidence = sorted((env.root / "state" / EVIDENCE).iterdir())  # the clock is fixed: one tick
    assert [e.name.endswith("-fork.txt") for e in evidence] == [True, True]
    assert evidence[0].read_text() == evidence[1].read_text()
    text = evidence[0].read_text()
    assert note_body(fork.note) in text
    latest = witness.latest(witness.config.logs[0])
    assert latest is not None and note_body(latest.note) in text and latest.root != fork.root


def test_bad_proof_and_rollback_are_refused_with_evidence(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        small = log.checkpoint()
        add_sessions(log, 3, 3)
        witness.add_checkpoint(_body(log, 0), HOLDER_ORG)
        big = log.size
        add_sessions(log, 6, 1)
        cp = log.checkpoint()
        bogus = [bytes(32)] * len(log.consistency_proof(big, cp.size))
        assert _refusal(witness, p.format_add_checkpoint(big, bogus, cp.note)).reason == p.BAD_PROOF
        rollback = _refusal(witness, p.format_add_checkpoint(big, [], small.note))
    assert (rollback.reason, rollback.latest_size) == (p.BAD_REQUEST, big)
    assert "rollback" in str(rollback)
    names = sorted(f.name.rsplit("-", 1)[1] for f in (env.root / "state" / EVIDENCE).iterdir())
    assert names == ["bad_proof.txt", "bad_request.txt"]


def test_signature_origin_organisation_and_format_are_checked(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        note = log.checkpoint().note
    forged = note.replace(note.splitlines()[1], str(int(note.splitlines()[1]) + 1), 1)
    assert _refusal(witness, p.format_add_checkpoint(0, [], forged)).reason == p.BAD_SIGNATURE
    other = note.replace("holder/Tax-Authority", "holder/Someone-Else")
    assert _refusal(witness, p.format_add_checkpoint(0, [], other)).reason == p.UNKNOWN_LOG
    wrong_org = _refusal(witness, p.format_add_checkpoint(0, [], note), peer=OTHER_ORG)
    assert wrong_org.reason == p.ORGANISATION_NOT_ALLOWED
    assert _refusal(witness, b"old 01\n\n" + note.encode()).reason == p.BAD_REQUEST
    assert _refusal(witness, p.format_add_checkpoint(0, [bytes(32)], note)).reason == p.BAD_PROOF
    assert witness.latest(witness.config.logs[0]) is None  # nothing was cosigned
    assert {e["reason"] for e in _ledger(env)} == {p.BAD_SIGNATURE, p.UNKNOWN_LOG, p.ORGANISATION_NOT_ALLOWED,
                                                      p.BAD_REQUEST, p.BAD_PROOF}
    assert all(e["origin"] in ("", "holder/Tax-Authority") for e in _ledger(env))


def test_state_survives_a_restart_and_is_exclusive(env: WitnessSetup) -> None:
    first = _witness(env)
    with env.open_log() as log:
        first.add_checkpoint(_body(log, 0), HOLDER_ORG)
        size = log.size
    with pytest.raises(WitnessStateError, match="in use by another witness"):
        WitnessState(env.root / "state")
    first._state.close()
    second = _witness(env)
    try:
        latest = second.latest(second.config.logs[0])
        assert latest is not None and latest.size == size
        with env.open_log() as log:
            add_sessions(log, 3, 1)
            assert _refusal(second, _body(log, 0)).latest_size == size
            second.add_checkpoint(_body(log, size), HOLDER_ORG)
    finally:
        second._state.close()


def test_the_stored_note_is_replaced_atomically(env: WitnessSetup, witness: Witness) -> None:
    with env.open_log() as log:
        witness.add_checkpoint(_body(log, 0), HOLDER_ORG)
    logs = list((env.root / "state" / "logs").iterdir())
    assert len(logs) == 1 and logs[0].suffix == ".note"
    assert logs[0].stat().st_mode & 0o777 == 0o600
    assert cosignatures_in(logs[0].read_text(), env.key)


def test_ledger_holds_no_submitted_text(env: WitnessSetup, witness: Witness, tmp_path: Path) -> None:
    _refusal(witness, b"old 0\n\nsecret-looking origin\n1\n" + b"A" * 44 + b"\n\n")
    assert "secret" not in (env.root / "state" / LEDGER).read_text()


def test_concurrent_submissions_from_one_size_cannot_both_win(env: WitnessSetup, witness: Witness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with env.open_log() as log:
        witness.add_checkpoint(_body(log, 0), HOLDER_ORG)
        base = log.size
        add_sessions(log, 3, 2)
        smaller = _body(log, base)
        add_sessions(log, 5, 2)
        larger = _body(log, base)

    def attempt(body: bytes) -> str:
        try:
            witness.add_checkpoint(body, HOLDER_ORG)
            return "cosigned"
        except WitnessRefusal as refusal:
            return refusal.reason

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, [smaller, larger]))
    assert outcomes == ["cosigned", p.SIZE_CONFLICT]
    latest = witness.latest(witness.config.logs[0])
    assert latest is not None and latest.size in (base + 2, base + 4)

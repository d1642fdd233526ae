"""The audit log retires its key for a new one (SPEC.md 2.4, 10.3.4): chain, handover, crashes, witnesses."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.witness_setup import HOLDER_ORG, WitnessSetup, add_sessions, write_config

from blindmatch.audit import AuditError, AuditLog, verify_log
from blindmatch.audit import key_rotation as kr
from blindmatch.audit.checkpoint import CheckpointError, parse_checkpoint, split_notes
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.keys import format_verifier_key
from blindmatch.audit.log import CHECKPOINTS_NAME, KEY_NAME, LOG_NAME, PUB_NAME
from blindmatch.audit.notefile import read_notes
from blindmatch.audit.witness_check import SourcedNote
from blindmatch.core.rotation import check_audit_key_statement
from blindmatch.witness import protocol as p
from blindmatch.witness.config import load_witness_config
from blindmatch.witness.core import Witness, WitnessRefusal
from blindmatch.witness.keys import load_witness_key
from blindmatch.witness.state import WitnessState

ORIGIN = "holder/Tax-Authority"


def _entries(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "audit" / LOG_NAME).read_text().splitlines()]


def _checkpoints(directory: Path) -> list[str]:
    return split_notes((directory / "audit" / CHECKPOINTS_NAME).read_bytes())[0]


def _rotated_log(directory: Path) -> tuple[bytes, bytes, bytes]:
    """A log of two entries, a rotation, one more entry; returns (old key, new key, statement)."""
    with AuditLog.open(directory, ORIGIN) as log:
        add_sessions(log, 0, 2)
        log.checkpoint()
        old = log.public_key
        note = log.rotate_key()
        new = log.public_key
        add_sessions(log, 2, 1)
    return old, new, note


def test_the_rotation_is_recorded_by_the_old_key_and_handed_over_by_both(tmp_path: Path) -> None:
    old, new, note = _rotated_log(tmp_path)
    assert old != new
    rotation = _entries(tmp_path)[2]
    assert rotation["event"] == "audit_key_rotated"
    assert (rotation["previous_key"], rotation["key"]) == (old.hex(), new.hex())
    assert rotation["statement"] == hashlib.sha256(note).hexdigest()
    handover = next(cp for cp in _checkpoints(tmp_path) if cp.split("\n")[1] == "3")
    for key in (old, new):  # the handover verifies under either key
        assert parse_checkpoint(handover, ORIGIN, key).size == 3
    with pytest.raises(CheckpointError):  # the last checkpoint is the new key's alone
        parse_checkpoint(_checkpoints(tmp_path)[-1], ORIGIN, old)
    statement = check_audit_key_statement(note, old)
    assert (statement.tree_size, statement.audit_public_key) == (3, new)
    audit = tmp_path / "audit"
    assert (audit / PUB_NAME).read_text().strip() == format_verifier_key(ORIGIN, new)
    assert (audit / kr.RETIRED_NAME).read_text() == format_verifier_key(ORIGIN, old) + "\n"
    assert os.stat(audit / KEY_NAME).st_mode & 0o777 == 0o600
    assert not (audit / kr.NEXT_KEY_NAME).exists()
    assert read_notes(audit / kr.STATEMENTS_NAME)[0] == [note.decode()]


def test_verify_follows_the_chain_from_either_pinned_key(tmp_path: Path) -> None:
    old, new, _ = _rotated_log(tmp_path)
    for pinned in (None, old, new):
        result = verify_log(tmp_path, public_key=pinned)
        assert result.ok, result.error
        assert result.size == 4
    other = AuditLog.open(tmp_path / "other", ORIGIN)
    other.close()
    assert not verify_log(tmp_path, public_key=other.public_key).ok
    # Two rotations in a row, reopened in between: still one chain.
    with AuditLog.open(tmp_path, ORIGIN) as log:
        log.rotate_key()
        add_sessions(log, 3, 1)
    assert verify_log(tmp_path, public_key=old).ok
    assert len((tmp_path / "audit" / kr.RETIRED_NAME).read_text().splitlines()) == 2


@pytest.mark.parametrize("damage", ["retired.pub removed", "statement removed", "handover removed",
                                    "audit.pub swapped back", "statement forged"])
def test_a_broken_chain_is_refused_naming_it(tmp_path: Path, damage: str) -> None:
    old, _new, note = _rotated_log(tmp_path)
    audit = tmp_path / "audit"
    if damage == "retired.pub removed":
        (audit / kr.RETIRED_NAME).unlink()
        expected = "signature does not verify"  # the chain then starts at the new key: entry 0 fails
    elif damage == "statement removed":
        (audit / kr.STATEMENTS_NAME).unlink()
        expected = "not in key-statements"
    elif damage == "handover removed":
        kept = [cp for cp in _checkpoints(tmp_path) if cp.split("\n")[1] != "3"]
        (audit / CHECKPOINTS_NAME).write_text("".join(cp + "\n" for cp in kept))
        expected = "handover"
    elif damage == "audit.pub swapped back":
        (audit / PUB_NAME).write_text(format_verifier_key(ORIGIN, old) + "\n")
        expected = "retired"
    else:
        forged = note.replace(b"tree-size 3", b"tree-size 4")
        (audit / kr.STATEMENTS_NAME).write_text(forged.decode() + "\n")
        expected = "not in key-statements"
    result = verify_log(tmp_path)
    assert not result.ok
    assert expected in str(result.error), result.error


def test_the_key_rotates_only_while_no_other_writer_has_the_log_open(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path, ORIGIN) as running, AuditLog.open(tmp_path, ORIGIN) as rotating:
        add_sessions(running, 0, 1)
        with pytest.raises(AuditError, match="a running daemon"):
            rotating.rotate_key()
        add_sessions(running, 1, 1)  # refused before anything changed
    assert not [e for e in _entries(tmp_path) if e["event"] == "audit_key_rotated"]
    assert not (tmp_path / "audit" / kr.NEXT_KEY_NAME).exists()
    assert verify_log(tmp_path).ok


def test_another_process_never_signs_with_the_retired_key(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path, ORIGIN) as stale:
        add_sessions(stale, 0, 1)
        fcntl.flock(stale._lease_fd, fcntl.LOCK_UN)  # a writer that does not hold the lease (an older version)
        with AuditLog.open(tmp_path, ORIGIN) as rotating:
            rotating.rotate_key()
        with pytest.raises(AuditError, match="rotated the audit key"):
            add_sessions(stale, 1, 1)
        stale._closed = True  # its shutdown checkpoint would be refused the same way
        stale._close_files()
    assert verify_log(tmp_path).ok


class _Crash(Exception):
    pass


def _crash_during_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> bytes:
    """Rotate, crashing at ``step``; returns the retiring key."""
    with AuditLog.open(tmp_path, ORIGIN) as log:
        add_sessions(log, 0, 2)
        old = log.public_key
    log = AuditLog.open(tmp_path, ORIGIN)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise _Crash(step)

    if step == "before the entry":
        monkeypatch.setattr(AuditLog, "_append_locked", crash)
    elif step == "before the handover":
        monkeypatch.setattr("blindmatch.audit.log.sign_checkpoint", crash)
    elif step == "before the statement":
        monkeypatch.setattr(kr, "store_statement", crash)
    else:  # between audit.pub and audit.key
        real_replace = os.replace

        def replace(src: str | Path, dst: str | Path) -> None:
            if Path(dst).name == KEY_NAME:
                raise _Crash(step)
            real_replace(src, dst)

        monkeypatch.setattr(kr.os, "replace", replace)
    with pytest.raises(_Crash):
        log.rotate_key()
    log._closed = True  # the process died: nothing more is written
    log._close_files()
    monkeypatch.undo()
    return old


@pytest.mark.parametrize("step", ["before the entry", "before the handover", "before the statement",
                                  "between audit.pub and audit.key"])
def test_a_crash_in_the_middle_is_finished_or_undone_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             step: str) -> None:
    old = _crash_during_rotation(tmp_path, monkeypatch, step)
    assert (tmp_path / "audit" / kr.NEXT_KEY_NAME).exists()
    with AuditLog.open(tmp_path, ORIGIN) as log:  # the next open settles it
        add_sessions(log, 2, 1)
        now = log.public_key
    assert not (tmp_path / "audit" / kr.NEXT_KEY_NAME).exists()
    result = verify_log(tmp_path, public_key=old)
    assert result.ok, result.error
    rotated = [e for e in _entries(tmp_path) if e["event"] == "audit_key_rotated"]
    if step == "before the entry":
        assert now == old and not rotated  # the new key never signed anything: it is gone
    else:
        assert now != old and [e["key"] for e in rotated] == [now.hex()]
        assert read_notes(tmp_path / "audit" / kr.STATEMENTS_NAME)[0]


@pytest.mark.parametrize("closed", [True, False])
def test_a_key_restored_from_before_the_rotation_is_refused(tmp_path: Path, closed: bool) -> None:
    with AuditLog.open(tmp_path, ORIGIN) as log:
        add_sessions(log, 0, 1)
    saved = (tmp_path / "audit" / KEY_NAME).read_bytes()
    pub = (tmp_path / "audit" / PUB_NAME).read_bytes()
    log = AuditLog.open(tmp_path, ORIGIN)
    log.rotate_key()
    if closed:
        log.close()  # its last checkpoint is the new key's alone
    else:
        log._closed = True  # died right after the handover, which the old key signed too
        log._close_files()
    (tmp_path / "audit" / KEY_NAME).write_bytes(saved)
    (tmp_path / "audit" / PUB_NAME).write_bytes(pub)
    expected = "latest checkpoint is invalid" if closed else "is not the audit key the rotation at entry 1 moved to"
    with pytest.raises(AuditError, match=expected):
        AuditLog.open(tmp_path, ORIGIN)


def _witness(env: WitnessSetup) -> Witness:
    config = load_witness_config(env.config_path)
    return Witness(config, load_witness_key(config.key_file), WitnessState(config.state_dir),
                   clock=lambda: datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


def _submit(witness: Witness, log: AuditLog, old: int, note: str, size: int) -> str:
    proof = log.consistency_proof(old, size) if 0 < old < size else []
    return witness.add_checkpoint(p.format_add_checkpoint(old, proof, note), HOLDER_ORG)


def test_a_witness_cosigns_the_handover_with_the_old_key_then_follows_the_new_one(env: WitnessSetup) -> None:
    witness = _witness(env)
    with env.open_log() as log:
        first = log.checkpoint()
        cosigned = [first.note + _submit(witness, log, 0, first.note, first.size)]
        log.rotate_key()
        handover = log.latest_checkpoint()
        assert handover is not None
        cosigned.append(handover.note + _submit(witness, log, first.size, handover.note, handover.size))
        add_sessions(log, 10, 2)
        after = log.checkpoint()
        with pytest.raises(WitnessRefusal) as refused:  # it still knows only the old key
            _submit(witness, log, handover.size, after.note, after.size)
        assert refused.value.reason == p.BAD_SIGNATURE
        new_verifier = format_verifier_key(ORIGIN, log.public_key)
    witness._state.close()
    # The operator sets the new key; the stored handover verifies under it, so the witness starts.
    write_config(env.root, new_verifier)
    witness = _witness(env)
    with env.open_log() as log:
        cosigned.append(after.note + _submit(witness, log, handover.size, after.note, after.size))
    witness._state.close()
    notes = [SourcedNote(note, f"witness #{n}") for n, note in enumerate(cosigned, start=1)]
    result = verify_log(env.log_dir, witnesses=[WitnessKey(env.key.name, env.key.public_key)], witnessed=notes)
    assert result.ok, result.error
    assert result.witnesses[0].size == after.size

"""Checkpoints exchanged in every session (SPEC.md 10.4.1): rewrites re-signed with a log's own key
are caught by ``audit reconcile`` from the checkpoints the peer kept."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers.audit_pairs import HOLDER_ORIGIN, REQUESTER_ORIGIN, copy_pair, write_pair
from helpers.witness_setup import HOLDER_ORG, OTHER_ORG, WITNESS_NAME, WITNESS_ORG, running_witness, write_config

from blindmatch.audit import AuditLog, load_entries, reconcile, verify_log
from blindmatch.audit.checkpoint import CheckpointError, parse_checkpoint, sign_checkpoint, split_notes
from blindmatch.audit.cosigned import COSIGNED_NAME
from blindmatch.audit.log import CHECKPOINTS_NAME, KEY_NAME, LOG_NAME, PUB_NAME, read_verifier_key
from blindmatch.audit.notefile import append_note
from blindmatch.audit.peer_checkpoints import MAX_NOTE_BYTES, PEER_CHECKPOINTS_NAME, verify_peer_note
from blindmatch.audit.witness_check import SourcedNote
from blindmatch.cli.main import main
from blindmatch.transport.pki import init_pki, slug
from blindmatch.witness.client import WitnessClient, WitnessEndpoint
from blindmatch.witness.keys import create_witness_key

FIRST = hashlib.sha256(b"session 1").hexdigest()[:32]
ENVELOPE = {"event", "index", "time", "sig"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    write_pair(root)
    return root


def resign_without(directory: Path, origin: str, session_id: str) -> None:
    """What an operator holding its audit key can do: rebuild its log without one session, re-signed."""
    kept = [e for e in load_entries(directory) if e.get("session_id") != session_id]
    scratch = directory.parent / f"{directory.name}-rewrite"
    (scratch / "audit").mkdir(parents=True, mode=0o700)
    for name in (KEY_NAME, PUB_NAME):
        shutil.copy2(directory / "audit" / name, scratch / "audit" / name)
    with AuditLog.open(scratch, origin) as fake:
        for entry in kept:
            fake.append(entry["event"], **{k: v for k, v in entry.items() if k not in ENVELOPE})
    for name in (LOG_NAME, CHECKPOINTS_NAME):
        os.replace(scratch / "audit" / name, directory / "audit" / name)
    shutil.rmtree(scratch)


def truncate_to_checkpoint(directory: Path, back: int) -> None:
    """Remove the last ``back`` checkpoints together with the lines after the one left last."""
    audit = directory / "audit"
    origin, key = read_verifier_key(audit)
    notes, _ = split_notes((audit / CHECKPOINTS_NAME).read_bytes())
    kept = notes[:-back]
    size = parse_checkpoint(kept[-1], origin, key).size
    lines = (audit / LOG_NAME).read_bytes().split(b"\n")[:size]
    (audit / LOG_NAME).write_bytes(b"\n".join(lines) + b"\n")
    (audit / CHECKPOINTS_NAME).write_text("".join(n + "\n" for n in kept))


def test_an_untouched_pair_checks_every_exchanged_checkpoint(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    result = reconcile(holder, requester)
    assert result.ok, result.mismatches
    assert result.peer_checkpoints == (5, 5)


def test_a_session_erased_from_the_holder_log_is_caught_by_the_requester(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    resign_without(holder, HOLDER_ORIGIN, FIRST)
    assert verify_log(holder).ok  # on its own the rewritten log is flawless
    result = reconcile(holder, requester)
    assert not result.ok
    assert any(m.startswith(f"requester {PEER_CHECKPOINTS_NAME} #1: the holder signed size")
               and "its log was rewritten after the requester received the checkpoint" in m
               for m in result.mismatches), result.mismatches


def test_the_same_session_erased_from_both_logs_is_caught(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    resign_without(holder, HOLDER_ORIGIN, FIRST)
    resign_without(requester, REQUESTER_ORIGIN, FIRST)
    assert verify_log(holder).ok and verify_log(requester).ok
    mismatches = reconcile(holder, requester).mismatches
    # No session differs any more; the checkpoints each side handed the other do.
    assert not any(m.startswith("session ") for m in mismatches), mismatches
    assert any(m.startswith(f"holder {PEER_CHECKPOINTS_NAME}") for m in mismatches), mismatches
    assert any(m.startswith(f"requester {PEER_CHECKPOINTS_NAME}") for m in mismatches), mismatches


def test_the_last_checkpoint_removed_with_the_lines_after_it_is_caught(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    truncate_to_checkpoint(holder, back=2)  # the last session's checkpoint and the shutdown one
    assert verify_log(holder).ok
    mismatches = reconcile(holder, requester).mismatches
    assert any("entries were removed after the requester received the checkpoint" in m for m in mismatches), mismatches


def test_a_stored_checkpoint_that_does_not_verify_is_reported(pristine: Path, tmp_path: Path) -> None:
    """The requester keeps only its one holder's notes, each checked under the pinned key when it came."""
    holder, requester = copy_pair(pristine, tmp_path)
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), HOLDER_ORIGIN, 1, bytes(32), "2024-05-06T09:00:00.000000Z")
    append_note(requester / "audit" / PEER_CHECKPOINTS_NAME, forged.note)
    mismatches = reconcile(holder, requester).mismatches
    assert mismatches == [f"requester {PEER_CHECKPOINTS_NAME} #6: not a valid checkpoint of the holder's log: "
                          f"no signature by the log's audit key {HOLDER_ORIGIN!r}"]


def test_another_requesters_note_naming_this_requesters_origin_is_not_held_against_it(
    pristine: Path, tmp_path: Path
) -> None:
    """Found live: any allowed requester's Close may carry a checkpoint naming another requester's
    origin, signed by its own key, and the holder stores it. It is not that requester's, so it
    must not make an honest pair fail to reconcile (nor count as one of its checkpoints)."""
    holder, requester = copy_pair(pristine, tmp_path)
    planted = sign_checkpoint(Ed25519PrivateKey.generate(), REQUESTER_ORIGIN, 1, bytes(32), "2024-05-06T09:00:00.000000Z")
    append_note(holder / "audit" / PEER_CHECKPOINTS_NAME, planted.note)
    result = reconcile(holder, requester)
    assert result.ok, result.mismatches
    assert result.peer_checkpoints == (5, 5)


def test_a_torn_peer_checkpoints_file_is_reported(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    with (requester / "audit" / PEER_CHECKPOINTS_NAME).open("ab") as handle:
        handle.write(b"holder.tax-agency.example/audit\n12\n")
    assert reconcile(holder, requester).mismatches == [f"requester: {PEER_CHECKPOINTS_NAME} ends in an incomplete note"]


def test_verify_peer_note_names_what_is_wrong() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    good = sign_checkpoint(key, "peer/log", 3, bytes(32), "2024-05-06T09:00:00.000000Z")
    assert verify_peer_note(good.note.encode(), raw) == good
    for note, message in ((b"", "no checkpoint note"), (b"x" * (MAX_NOTE_BYTES + 1), "exceeds"),
                          (b"\xff\n", "not UTF-8"), (b"peer/log\n3\n", "not a signed note")):
        with pytest.raises(CheckpointError, match=message):
            verify_peer_note(note, raw)
    with pytest.raises(CheckpointError, match="no signature by the log's audit key"):
        verify_peer_note(good.note.encode(), Ed25519PrivateKey.generate().public_key().public_bytes_raw())


def _witness_config(root: Path, logs: list[tuple[str, Path, str]]) -> Path:
    """A witness for several logs: (origin, working directory, submitting organisation) each."""
    text = write_config(root, "unused").read_text().split("[[witness.log]]")[0]
    for origin, directory, submitter in logs:
        verifier = (directory / "audit" / PUB_NAME).read_text().strip()
        text += f'[[witness.log]]\norigin = "{origin}"\nverifier_key = "{verifier}"\nsubmitter = "{submitter}"\n'
    (root / "witness.toml").write_text(text)
    return root / "witness.toml"


def test_both_operators_erasing_a_session_and_the_exchanged_checkpoints_are_caught_by_the_witness(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    init_pki(tmp_path / "pki", [WITNESS_ORG, HOLDER_ORG, OTHER_ORG], ["127.0.0.1"])
    key = create_witness_key(tmp_path / "witness.key", WITNESS_NAME)
    logs = [(HOLDER_ORIGIN, holder, HOLDER_ORG), (REQUESTER_ORIGIN, requester, OTHER_ORG)]
    config = _witness_config(tmp_path, logs)
    with running_witness(config) as daemon:
        for origin, directory, organisation in logs:
            org_dir = tmp_path / "pki" / slug(organisation)
            endpoint = WitnessEndpoint(key, f"127.0.0.1:{daemon.port}", tmp_path / "pki" / "ca.crt",
                                       org_dir / "client.crt", org_dir / "client.key", timeout_seconds=10.0)
            with AuditLog.open(directory, origin) as log:
                assert WitnessClient([endpoint]).submit(log, log.checkpoint())
    for origin, directory, _ in logs:  # both rewrite, and both hide what could betray them
        resign_without(directory, origin, FIRST)
        (directory / "audit" / PEER_CHECKPOINTS_NAME).unlink()
        (directory / "audit" / COSIGNED_NAME).unlink()
    assert reconcile(holder, requester).ok  # from the two logs alone nothing is wrong any more
    for origin, directory, _ in logs:
        assert main(["witness", "export", "--config", str(config), origin]) == 0
        witnessed = SourcedNote(capsys.readouterr().out, "witness export")
        result = verify_log(directory, witnesses=[key], witnessed=[witnessed])
        assert not result.ok and "after the witness saw them" in str(result.error), result.error


def test_the_report_shows_the_reconciliation_with_the_peer(pristine: Path, tmp_path: Path) -> None:
    holder, requester = copy_pair(pristine, tmp_path)
    out = tmp_path / "report.html"
    assert main(["audit", "report", str(requester), "--out", str(out), "--peer", str(holder)]) == 0
    assert "OK: 7 sessions recorded identically; 10 exchanged checkpoints consistent with both logs." in out.read_text()
    resign_without(holder, HOLDER_ORIGIN, FIRST)
    assert main(["audit", "report", str(holder), "--out", str(out), "--peer", str(requester)]) == 0
    text = out.read_text()
    assert "difference(s) between the holder and requester logs" in text
    assert f"session {FIRST}: appears only in the requester log" in text
    assert f"requester {PEER_CHECKPOINTS_NAME} #1: the holder signed size" in text

"""The peer's signed checkpoints, exchanged in every session (SPEC.md 10.4.1).

The holder's Closed carries its checkpoint covering its record of the session; the
requester's Close carries its own, covering its log up to that Close. Each side checks
the note under the audit key the peer signs its transcript with, and appends it to
``audit/peer-checkpoints`` (one note block each, as in ``checkpoints``).

A side can rewrite and re-sign its own log, but not the checkpoints it already handed
over: ``audit reconcile`` checks the peer's log against every one of them, so a session
erased or altered after the peer saw its checkpoint is caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from blindmatch.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from blindmatch.audit.key_rotation import KeyChain, load_key_chain
from blindmatch.audit.log import LOG_NAME, find_audit_dir, read_verifier_key
from blindmatch.audit.merkle import MerkleTree
from blindmatch.audit.notefile import NoteFileError, append_note, read_notes
from blindmatch.audit.witness_check import size_of as _size_of

PEER_CHECKPOINTS_NAME = "peer-checkpoints"
# A checkpoint note with its one signature is a few hundred bytes; more is not a checkpoint.
MAX_NOTE_BYTES = 4096


def verify_peer_note(note: bytes, public_key: bytes) -> Checkpoint:
    """The checkpoint in ``note``, signed by ``public_key`` under the origin its first line names.

    Raises :class:`CheckpointError` naming what is wrong (empty, oversized, not UTF-8,
    malformed, or not signed by that key).
    """
    if not note:
        raise CheckpointError("no checkpoint note")
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointError(f"checkpoint note of {len(note)} bytes exceeds {MAX_NOTE_BYTES}")
    try:
        text = note.decode()
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint note is not UTF-8") from None
    return parse_checkpoint(text, text.partition("\n")[0], public_key)


def store_peer_checkpoint(audit_dir: Path, checkpoint: Checkpoint) -> None:
    """Durably append a verified peer checkpoint to ``audit/peer-checkpoints``."""
    append_note(Path(audit_dir) / PEER_CHECKPOINTS_NAME, checkpoint.note)


def read_peer_checkpoints(audit_dir: Path) -> tuple[list[str], bool]:
    """The stored peer notes and whether the file ends in a torn block."""
    return read_notes(Path(audit_dir) / PEER_CHECKPOINTS_NAME)


def check_peer_checkpoints(
    notes: Sequence[str], keeper: str, peer: str, origin: str, chain: KeyChain, tree: MerkleTree,
    mixed: bool = False,
) -> tuple[int, list[str]]:
    """(how many of the notes are the ``peer``'s, their differences from its log ``tree``).

    Only notes of the peer's ``origin`` are the peer's (a holder keeps those of all its
    requesters). Each must verify under the peer's audit key in force at its size (``chain``:
    a rotated key signed the earlier ones), and the peer's log must
    still hold exactly the entries it covered: fewer entries, or another root at that
    size, means the peer removed or rewrote entries after handing the checkpoint over.

    ``mixed``: the keeper stores the notes of several peers (the holder). A note names its
    origin itself and the keeper checked it only under the key of the peer that handed it
    over, so another requester's Close can carry a note naming this peer's origin under
    its own key; one that does not verify under this peer's key in force at its size is not
    this peer's and is skipped (this peer signs every session's Close with that key, which
    reconciliation checks), or any requester could make another's logs disagree.
    """
    out: list[str] = []
    checked = 0
    for number, note in enumerate(notes, start=1):
        if note.partition("\n")[0] != origin:
            continue
        where = f"{keeper} {PEER_CHECKPOINTS_NAME} #{number}"
        try:
            cp = parse_checkpoint(note, origin, chain.key_for_size(_size_of(note)))
        except CheckpointError as exc:
            if not mixed:
                checked += 1
                out.append(f"{where}: not a valid checkpoint of the {peer}'s log: {exc}")
            continue
        checked += 1
        if cp.size > tree.size:
            out.append(f"{where}: the {peer} signed size {cp.size} at {cp.time}, but its log has only "
                       f"{tree.size} entries: entries were removed after the {keeper} received the checkpoint")
        elif tree.root(cp.size) != cp.root:
            out.append(f"{where}: the {peer} signed size {cp.size} at {cp.time}, but its entries "
                       f"0..{cp.size - 1} have another root: its log was rewritten after the {keeper} "
                       "received the checkpoint")
    return checked, out


def check_handed_over(
    keeper: str, keeper_dir: Path, peer: str, peer_dir: Path, mixed: bool = False
) -> tuple[int, list[str]]:
    """(how many of the ``peer``'s checkpoints ``keeper`` stored, the differences found).

    The peer's log is taken from ``peer_dir`` (already verified by the caller) and its key
    from the peer's ``audit.pub``, which the caller has checked against what the keeper
    recorded in its session entries.
    """
    keeper_audit, peer_audit = find_audit_dir(Path(keeper_dir)), find_audit_dir(Path(peer_dir))
    origin, _ = read_verifier_key(peer_audit)
    chain = load_key_chain(peer_audit)
    try:
        notes, torn = read_peer_checkpoints(keeper_audit)
    except NoteFileError as exc:
        return 0, [f"{keeper}: {exc}"]
    out = [f"{keeper}: {PEER_CHECKPOINTS_NAME} ends in an incomplete note"] if torn else []
    tree = MerkleTree()
    for line in (peer_audit / LOG_NAME).read_bytes().split(b"\n")[:-1]:
        tree.append(line)
    checked, found = check_peer_checkpoints(notes, keeper, peer, origin, chain, tree, mixed)
    return checked, out + found

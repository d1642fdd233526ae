"""Checking a log against what its witnesses cosigned (``audit verify --witness``).

The log's operator holds the log's key, so a rewritten log re-signed with that key
verifies on its own. A witness cosigned checkpoints it checked to extend each other;
if the recomputed tree does not contain a cosigned checkpoint (fewer entries, a
different root at that size) the log was truncated, rolled back or forked after
the witness saw it. The cosigned notes come from ``audit/cosigned`` and from notes
the reviewer got from the witness itself (``blindmatch witness export``), which the
log's operator cannot withhold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from blindmatch.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from blindmatch.audit.cosignature import Cosignature, WitnessKey, cosignatures_in
from blindmatch.audit.key_rotation import KeyChain
from blindmatch.audit.merkle import MerkleTree


class WitnessCheckFailure(Exception):
    """The log contradicts a checkpoint a witness cosigned."""


@dataclass(frozen=True)
class WitnessStatus:
    """What one witness vouched for: its largest cosigned size and when it cosigned it."""

    witness: str
    size: int
    timestamp: int
    root: bytes

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SourcedNote:
    """A cosigned note and where it was read from (for error messages)."""

    note: str
    source: str


def _check_one(cp: Checkpoint, cosignature: Cosignature, tree: MerkleTree, source: str) -> None:
    when = datetime.fromtimestamp(cosignature.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    seen = f"witness {cosignature.witness} cosigned size {cp.size} at {when} ({source})"
    if cp.size > tree.size:
        raise WitnessCheckFailure(
            f"{seen}, but log.jsonl has only {tree.size} entries: entries were removed "
            "after the witness saw them (truncation or rollback)"
        )
    if tree.root(cp.size) != cp.root:
        raise WitnessCheckFailure(
            f"{seen}, but entries 0..{cp.size - 1} of log.jsonl have a different root: "
            "the log was rewritten (or forked) after the witness saw it"
        )


def size_of(note: str) -> int:
    """The tree size line of a checkpoint note, 0 if it has none (the signature check then names the fault)."""
    lines = note.split("\n", 2)
    return int(lines[1]) if len(lines) > 2 and lines[1].isdecimal() and len(lines[1]) < 20 else 0


def check_witnesses(
    notes: Sequence[SourcedNote],
    origin: str,
    chain: KeyChain,
    tree: MerkleTree,
    latest: Checkpoint | None,
    witnesses: Sequence[WitnessKey],
) -> list[WitnessStatus]:
    """Check every cosigned note against ``tree``; one status per witness, in order.

    Raises :class:`WitnessCheckFailure` on the first contradiction, a forged
    cosignature, or a witness that never cosigned this log. Each note must be signed by
    the audit key ``chain`` has in force at its size (a witness cosigned what it verified).
    """
    best: dict[str, WitnessStatus] = {}
    for sourced in notes:
        try:
            cp = parse_checkpoint(sourced.note, origin, chain.key_for_size(size_of(sourced.note)))
        except CheckpointError as exc:
            raise WitnessCheckFailure(f"cosigned checkpoint in {sourced.source}: {exc}") from None
        for witness in witnesses:
            try:
                found = cosignatures_in(sourced.note, witness)
            except ValueError as exc:
                raise WitnessCheckFailure(f"{sourced.source}: {exc}") from None
            for cosignature in found:
                _check_one(cp, cosignature, tree, sourced.source)
                current = best.get(witness.name)
                if current is None or (cp.size, cosignature.timestamp) > (current.size, current.timestamp):
                    best[witness.name] = WitnessStatus(witness.name, cp.size, cosignature.timestamp, cp.root)
    statuses = []
    for witness in witnesses:
        status = best.get(witness.name)
        if status is None:
            raise WitnessCheckFailure(f"no checkpoint of this log carries a valid cosignature by {witness.name}")
        if latest is None or latest.size < status.size:
            raise WitnessCheckFailure(
                f"witness {witness.name} cosigned size {status.size} but the latest checkpoint "
                f"covers {latest.size if latest else 0} entries: later checkpoints were removed"
            )
        statuses.append(status)
    return statuses

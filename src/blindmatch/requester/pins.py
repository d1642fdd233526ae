"""The requester's pin of the holder, moved only by rotation statements that chain from it (SPEC.md 2.3).

``requester.toml`` pins the holder's organisation, OPRF key and audit key. When the
holder rotates, GetInfo announces the new key with the holder's rotation statements; the
pin moves to it only through statements signed with the pinned audit key that chain
from the pinned key (``core.rotation``). The moved pin is kept in
``<state_dir>/holder-pin.json`` (0600, replaced atomically) together with the configured
pin it grew from: an operator who pins another key by hand in requester.toml starts
afresh from that one. Each statement applied is audited (``holder_repinned``) before the
new pin is stored, and the new pin is stored before anything uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.core.rotation import Pin, follow_rotations
from blindmatch.keyfile import fsync_directory
from blindmatch.requester.config import HolderEndpoint
from blindmatch.vocabulary import BlindmatchError, Reason

PIN_NAME = "holder-pin.json"
_FORMAT = 1


class PinFileError(BlindmatchError):
    """``holder-pin.json`` is unreadable or malformed; the message names it and the fix."""

    default_reason = Reason.HOLDER_NOT_PINNED


def configured_pin(endpoint: HolderEndpoint) -> Pin:
    return Pin(endpoint.organisation, endpoint.oprf_public_key, endpoint.audit_public_key)


class PinStore:
    """The pin in force for one requester: the configured one, or where statements moved it."""

    def __init__(self, state_dir: Path, endpoint: HolderEndpoint, audit: AuditLog | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = Path(state_dir) / PIN_NAME
        self._endpoint = endpoint
        self._audit = audit
        self._clock = clock

    def current(self) -> Pin:
        """The stored pin if it grew from requester.toml's, otherwise requester.toml's."""
        configured = configured_pin(self._endpoint)
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return configured
        except (OSError, ValueError) as exc:
            raise PinFileError(f"cannot read {self.path} ({exc}); delete it to start again from requester.toml's pin"
                               ) from None
        try:
            grown_from = (doc["configured"]["oprf_public_key"], doc["configured"]["audit_public_key"])
            if doc["format"] != _FORMAT or grown_from != (configured.oprf_public_key.hex(),
                                                          configured.audit_public_key.hex()):
                return configured  # pinned again by hand: the operator's pin wins
            return Pin(configured.organisation, bytes.fromhex(doc["oprf_public_key"]),
                       bytes.fromhex(doc["audit_public_key"]), int(doc["epoch"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PinFileError(f"{self.path} is malformed ({type(exc).__name__}); delete it to start again from "
                               "requester.toml's pin") from None

    def follow(self, statements: list[bytes], oprf_public_key: bytes, audit_public_key: bytes) -> Pin:
        """Move the pin along the holder's statements to the announced keys, audit it and store it.

        Raises :class:`~blindmatch.core.rotation.RotationError` (reason ``holder_not_pinned``) when no valid chain leads there.
        """
        pin = self.current()
        moved, applied = follow_rotations(statements, pin, oprf_public_key, self._clock(), audit_public_key)
        for step, note in applied:
            if self._audit is not None:
                fields: dict[str, object] = {}
                if step.audit_public_key != pin.audit_public_key:
                    fields["audit_public_key"] = step.audit_public_key.hex()
                self._audit.append("holder_repinned", peer=self._endpoint.name, previous_key_id=pin.key_id.hex(),
                                   key_id=step.key_id.hex(), epoch=step.epoch,
                                   statement=hashlib.sha256(note).hexdigest(), **fields)
            pin = step
        self._store(moved)
        return moved

    def _store(self, pin: Pin) -> None:
        configured = configured_pin(self._endpoint)
        doc = {
            "format": _FORMAT,
            "configured": {"oprf_public_key": configured.oprf_public_key.hex(),
                           "audit_public_key": configured.audit_public_key.hex()},
            "organisation": pin.organisation,
            "oprf_public_key": pin.oprf_public_key.hex(),
            "audit_public_key": pin.audit_public_key.hex(),
            "epoch": pin.epoch,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{PIN_NAME}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_directory(self.path.parent)


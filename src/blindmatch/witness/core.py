"""The witness's decision: cosign a checkpoint only if it extends the latest one.

Transport-free so the checks can be read (and tested) in one place. The order is
C2SP tlog-witness's: known origin, permitted submitter, log signature, old size not
above the new size, old size equal to the witness's latest, consistency proof (or,
for an equal size, an equal root). Check and update happen under one lock, so two
concurrent submissions cannot roll the stored checkpoint back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from blindmatch.audit.cosignature import cosign, note_body
from blindmatch.audit.merkle import verify_consistency
from blindmatch.witness import protocol as p
from blindmatch.witness.config import WitnessConfig, WitnessedLog
from blindmatch.witness.state import WitnessState, WitnessStateError

Clock = Callable[[], datetime]


class WitnessRefusal(Exception):
    """The witness will not cosign; ``reason`` is one of the ``protocol`` reasons."""

    def __init__(self, reason: str, message: str, latest_size: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.latest_size = latest_size


@dataclass(frozen=True)
class _Submission:
    log: WitnessedLog
    request: p.AddCheckpoint
    checkpoint: Checkpoint


class Witness:
    """Cosigns checkpoints of the configured logs, keeping its state in ``state``."""

    def __init__(self, config: WitnessConfig, key: Ed25519PrivateKey, state: WitnessState,
                 clock: Clock | None = None) -> None:
        self.config = config
        self._key = key
        self._state = state
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._check_state()

    def _check_state(self) -> None:
        """Refuse to start on state that no longer matches witness.toml (a changed log key)."""
        for log in self.config.logs:
            try:
                self.latest(log)
            except CheckpointError as exc:
                raise WitnessStateError(
                    f"{self._state.directory}: the stored checkpoint of {log.origin!r} does not verify under "
                    f"its configured verifier_key ({exc}); a witnessed log cannot change its key"
                ) from None

    def latest(self, log: WitnessedLog) -> Checkpoint | None:
        """The latest checkpoint cosigned for ``log`` (re-verified: the file is not trusted blindly)."""
        note = self._state.latest(log.origin)
        return parse_checkpoint(note, log.origin, log.public_key) if note else None

    def add_checkpoint(self, body: bytes, peer: str | None) -> str:
        """Check and cosign; returns the cosignature line. Raises :class:`WitnessRefusal`."""
        with self._lock:
            try:
                submission = self._authenticate(body, peer)
                return self._extend(submission, peer or "")
            except WitnessRefusal as refusal:
                self._state.record("refused", self._clock(), peer=peer or "", origin=self._known_origin(body),
                                   reason=refusal.reason, detail=str(refusal), latest_size=refusal.latest_size)
                raise

    def _known_origin(self, body: bytes) -> str:
        """The submitted origin if it is a witnessed log (the ledger never echoes arbitrary input)."""
        origin = body.decode(errors="replace").partition("\n\n")[2].split("\n", 1)[0]
        return origin if self.config.log(origin) else ""

    def _authenticate(self, body: bytes, peer: str | None) -> _Submission:
        try:
            request = p.parse_add_checkpoint(body)
        except p.ProtocolFormatError as exc:
            raise WitnessRefusal(p.BAD_REQUEST, str(exc)) from None
        origin = request.note.split("\n", 1)[0]
        log = self.config.log(origin)
        if log is None:
            # The origin is not echoed: refusals go to the ledger, which never holds arbitrary input.
            raise WitnessRefusal(p.UNKNOWN_LOG, "this witness does not witness the checkpoint's origin")
        if peer != log.submitter:
            raise WitnessRefusal(p.ORGANISATION_NOT_ALLOWED,
                                 f"organisation {peer!r} may not submit checkpoints of {origin!r}")
        try:
            checkpoint = parse_checkpoint(request.note, log.origin, log.public_key)
        except CheckpointError as exc:
            raise WitnessRefusal(p.BAD_SIGNATURE, f"checkpoint of {origin!r}: {exc}") from None
        return _Submission(log, request, checkpoint)

    def _refuse_with_evidence(self, submission: _Submission, reason: str, message: str,
                              latest: Checkpoint | None) -> WitnessRefusal:
        """The log signed something inconsistent: keep both checkpoints, it proves misbehaviour."""
        path = self._state.keep_evidence(
            submission.log.origin, reason, p.format_add_checkpoint(
                submission.request.old_size, submission.request.proof, submission.request.note).decode(),
            latest.note if latest else None, self._clock(),
        )
        return WitnessRefusal(reason, f"{message} (evidence kept as {path.name})",
                              latest.size if latest else 0)

    def _extend(self, submission: _Submission, peer: str) -> str:
        request, cp, log = submission.request, submission.checkpoint, submission.log
        latest = self.latest(log)
        latest_size = latest.size if latest else 0
        if request.old_size > cp.size:
            if cp.size < latest_size:
                raise self._refuse_with_evidence(
                    submission, p.BAD_REQUEST,
                    f"size {cp.size} is smaller than the cosigned size {latest_size} (rollback)", latest)
            raise WitnessRefusal(p.BAD_REQUEST, f"old size {request.old_size} exceeds the checkpoint size {cp.size}",
                                 latest_size)
        if request.old_size != latest_size:
            raise WitnessRefusal(p.SIZE_CONFLICT, f"the latest cosigned size of {log.origin!r} is {latest_size}, "
                                 f"not {request.old_size}", latest_size)
        if latest is None or request.old_size == 0:
            if request.proof:
                raise WitnessRefusal(p.BAD_PROOF, "the proof must be empty when the old size is 0", latest_size)
        elif cp.size == latest.size:
            if request.proof:
                raise WitnessRefusal(p.BAD_PROOF, "the proof must be empty for an unchanged size", latest_size)
            if cp.root != latest.root:
                raise self._refuse_with_evidence(
                    submission, p.FORK, f"size {cp.size} was cosigned with a different root (fork)", latest)
        elif not verify_consistency(latest.size, cp.size, latest.root, cp.root, request.proof):
            raise self._refuse_with_evidence(
                submission, p.BAD_PROOF,
                f"no valid consistency proof from size {latest.size} to {cp.size}", latest)
        cosignature = cosign(self._key, self.config.name, note_body(cp.note), int(self._clock().timestamp()))
        self._state.store_latest(log.origin, cp.note + cosignature.line)
        self._state.record("cosigned", self._clock(), peer=peer, origin=log.origin, old_size=request.old_size,
                           size=cp.size, root=cp.root.hex(), timestamp=cosignature.timestamp)
        return cosignature.line

"""What a session needs of the batched group arithmetic: an interface its caller injects.

The sessions do no bulk arithmetic of their own; the caller hands them an engine (in
practice ``crypto.batch.BatchEngine``, which may spread a batch over a thread pool or
the native backend). Typing the sessions against this Protocol, rather than importing
the engine, keeps the sans-IO core and everything it imports free of threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from blindmatch.crypto.modes import Mode
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleRandomness


class SessionEngine(Protocol):
    """The RFC 9497 batch operations of a Match session (see ``crypto.batch.BatchEngine``)."""

    def blind_in_mode(self, mode: Mode, inputs: Sequence[bytes], blinds: bytes) -> bytes: ...

    def blind_evaluate(self, sk: bytes, blinded: bytes) -> bytes: ...

    def blind_evaluate_proven_poprf(
        self, sk: bytes, blinded: bytes, info: bytes, r: bytes | None = None
    ) -> tuple[bytes, bytes]: ...

    def unblind(self, blinds: bytes, evaluated: bytes) -> bytes: ...

    def verify_and_unblind_poprf(
        self, pk: bytes, info: bytes, blinds: bytes, blinded: bytes, evaluated: bytes, proof: bytes, *, what: str = "batch"
    ) -> bytes: ...

    def prove_shuffled_evaluation(
        self, t: bytes, blinded: bytes, ctx: bytes, chunk: int, randomness: ShuffleRandomness | None = None
    ) -> tuple[bytes, ShuffleProof]: ...

    def verify_shuffled_evaluation(
        self, tweaked_key: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof, ctx: bytes
    ) -> None: ...

"""A holder's engine that cheats in cardinality sessions, and a requester's that trusts it.

``DishonestEngine`` wraps the real engine (every other method passes through) and makes
``prove_shuffled_evaluation`` lie in one of the ways a holder would lower a count: the
tests show each one works against a requester that skips the proof (``TrustingEngine``,
so the cheat is real) and fails with ``proof_invalid`` against the real requester.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from blindmatch.crypto import group
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleRandomness

# How the holder lies (SPEC.md 6, "What the proof guarantees"):
CHEATS = (
    "another key",  # input `target` evaluated under another key, the proof made honestly
    "random element",  # the output showing input `target` replaced by a random element
    "drop a match",  # input `target` replaced by a copy of input `source` before proving
    "flipped proof byte",  # an honest evaluation whose proof has one byte flipped
    "proven under another key",  # everything evaluated and proven under another key
)


def _element(data: bytes, i: int) -> bytes:
    return data[i * ELEMENT_BYTES : (i + 1) * ELEMENT_BYTES]


def _with_element(data: bytes, i: int, element: bytes) -> bytes:
    return data[: i * ELEMENT_BYTES] + element + data[(i + 1) * ELEMENT_BYTES :]


class DishonestEngine:
    """The real engine, but its cardinality answers lie as ``cheat`` says (sessions ``cheat_from`` on, counted from 0)."""

    def __init__(self, real: BatchEngine, cheat: str, *, target: int = 0, source: int = 1, cheat_from: int = 0) -> None:
        if cheat not in CHEATS:
            raise ValueError(f"unknown cheat {cheat!r}")
        self._real, self._cheat, self._target, self._source = real, cheat, target, source
        self._cheat_from = cheat_from
        self.sessions = 0
        self._other_t = group.random_scalar()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def prove_shuffled_evaluation(self, t: bytes, blinded: bytes, ctx: bytes, chunk: int,
                                  randomness: ShuffleRandomness | None = None) -> tuple[bytes, ShuffleProof]:
        self.sessions += 1
        if self.sessions - 1 < self._cheat_from:
            return self._real.prove_shuffled_evaluation(t, blinded, ctx, chunk, randomness)
        n = len(blinded) // ELEMENT_BYTES
        randomness = randomness or ShuffleRandomness.fresh(n, chunk)
        position = randomness.permutation.index(self._target)  # the output that shows input `target`
        if self._cheat == "drop a match":
            copied = _with_element(blinded, self._target, _element(blinded, self._source))
            return self._real.prove_shuffled_evaluation(t, copied, ctx, chunk, randomness)
        if self._cheat == "proven under another key":
            return self._real.prove_shuffled_evaluation(self._other_t, blinded, ctx, chunk, randomness)
        outputs, proof = self._real.prove_shuffled_evaluation(t, blinded, ctx, chunk, randomness)
        if self._cheat == "another key":
            lie = group.scalar_mult(group.invert(self._other_t), _element(blinded, self._target))
            return _with_element(outputs, position, lie), proof
        if self._cheat == "random element":
            return _with_element(outputs, position, group.element_from_uniform(os.urandom(64))), proof
        flipped = bytearray(proof.records)
        flipped[len(flipped) // 2] ^= 0x01
        return outputs, replace(proof, records=bytes(flipped))


class TrustingEngine:
    """A requester's engine that skips the shuffle proof: what a count would be without it."""

    def __init__(self, real: BatchEngine) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def verify_shuffled_evaluation(self, tweaked_key: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof,
                                   ctx: bytes) -> None:
        return None

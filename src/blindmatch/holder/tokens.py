"""The index build's token stage: the holder's match keys turned into the issuer's tokens, blind.

When the holder's index is built over eligibility tokens (SPEC.md section 15.5), each
match key ``k`` of a holder record must become ``token = OPRF_issuer(k)`` before the
holder evaluates it under its own key. The holder obtains the tokens by RFC 9497 VOPRF
with the issuer: it blinds a batch of keys, the issuer evaluates them and proves with
one DLEQ proof that it used the key behind the published epoch public key, and the
holder verifies the proof and finalises. The issuer sees only blinded elements and their
count. Batches are bounded (``batch_elements``), so memory stays bounded at any scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from blindmatch.crypto import group, oprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.modes import VOPRF
from blindmatch.holder.config import HolderNodeConfig

# blinded elements -> (evaluated elements, batch proof): a local evaluator or an issuer client.
IssuerCall = Callable[[bytes], tuple[bytes, bytes]]
DEFAULT_BATCH_ELEMENTS = 65_536


@dataclass
class IssuerTokens:
    """Turns match keys into tokens with the issuer's verifiable blind evaluation."""

    call: IssuerCall
    issuer_public_key: bytes
    epoch: str
    engine: BatchEngine
    batch_elements: int = DEFAULT_BATCH_ELEMENTS
    evaluated: int = 0

    def convert(self, keys: Sequence[bytes]) -> list[bytes]:
        """The token of every key, in order; raises :class:`dleq.ProofError` on a bad issuer proof."""
        out: list[bytes] = []
        for start in range(0, len(keys), self.batch_elements):
            out.extend(self._batch(keys[start : start + self.batch_elements]))
        return out

    def _batch(self, keys: Sequence[bytes]) -> list[bytes]:
        if not keys:
            return []
        blinds = b"".join(group.random_scalar() for _ in keys)
        blinded = self.engine.blind_in_mode(VOPRF, keys, blinds)
        evaluated, proof = self.call(blinded)
        if len(evaluated) != len(blinded):
            raise ValueError(f"issuer answered {len(evaluated) // ELEMENT_BYTES} elements for {len(keys)}")
        unblinded = self.engine.verify_and_unblind(
            self.issuer_public_key, blinds, blinded, evaluated, proof, what="issuer batch"
        )
        self.evaluated += len(keys)
        return [oprf.finalize_unblinded(key, unblinded[i * 32 : (i + 1) * 32]) for i, key in enumerate(keys)]


@contextmanager
def configured_tokens(config: HolderNodeConfig) -> Iterator[IssuerTokens | None]:
    """The token stage of ``[holder.issuer]`` (None without it), connected to the live issuer."""
    if config.issuer is None:
        yield None
        return
    from blindmatch.issuer.client import IssuerClient

    endpoint = config.issuer
    engine = BatchEngine()
    try:
        with IssuerClient(endpoint.address, endpoint.ca_cert, endpoint.cert, endpoint.key) as issuer:
            info = issuer.epoch(endpoint.public_key)
            epoch = info.epoch

            def call(blinded: bytes) -> tuple[bytes, bytes]:
                return issuer.evaluate(epoch, blinded)

            yield IssuerTokens(call, info.public_key, epoch, engine)
    finally:
        engine.close()

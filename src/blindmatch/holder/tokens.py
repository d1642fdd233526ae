"""The index build's token stage: the holder's match keys turned into the issuer's tokens, blind.

When the holder's index is built over eligibility tokens (SPEC.md section 15.5), each
match key ``k`` of a holder record must become ``token = OPRF_issuer(k)`` before the
holder evaluates it under its own key. The holder obtains the tokens by RFC 9497 VOPRF
with the issuer: it blinds a batch of keys, the issuer evaluates them and proves with
one DLEQ proof that it used the key behind the published epoch public key, and the
holder verifies the proof and finalises. The issuer sees only blinded elements and their
count. Batches are bounded (``batch_elements``), so memory stays bounded at any scale.

With a :class:`TokenSpool` the stage is resumable: every verified batch is kept on disk,
and a build interrupted partway replays the finished batches instead of asking (and
being counted by) the issuer again. The built index is stamped with the epoch
(:attr:`IssuerTokens.stamp`), which the holder's service enforces (SPEC.md 15.6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from blindmatch.core.errors import ProtocolError, peer_text
from blindmatch.crypto import group, oprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.modes import VOPRF
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.store import IssuerEpochStamp
from blindmatch.holder.token_spool import TokenSpool
from blindmatch.issuer.epochs import EPOCH_TEXT_LIMIT, Epoch
from blindmatch.vocabulary import Reason

# blinded elements -> (evaluated elements, batch proof): a local evaluator or an issuer client.
IssuerCall = Callable[[bytes], tuple[bytes, bytes]]
DEFAULT_BATCH_ELEMENTS = 65_536
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class IssuerTokens:
    """Turns match keys into tokens with the issuer's verifiable blind evaluation."""

    call: IssuerCall
    issuer_public_key: bytes
    epoch: Epoch
    engine: BatchEngine
    batch_elements: int = DEFAULT_BATCH_ELEMENTS
    spool: TokenSpool | None = None
    evaluated: int = 0  # elements the issuer evaluated in this run (replayed ones not included)

    @property
    def stamp(self) -> IssuerEpochStamp:
        """What the index manifest records: the epoch its entries are valid for."""
        return IssuerEpochStamp(self.epoch.name, self.epoch.not_before, self.epoch.expires, self.issuer_public_key)

    def convert(self, keys: Sequence[bytes]) -> list[bytes]:
        """The token of every key, in order; raises :class:`dleq.ProofError` on a bad issuer proof."""
        out: list[bytes] = []
        for start in range(0, len(keys), self.batch_elements):
            out.extend(self._batch(keys[start : start + self.batch_elements]))
        return out

    def _batch(self, keys: Sequence[bytes]) -> list[bytes]:
        if not keys:
            return []
        if self.spool is not None and (replayed := self.spool.replay(keys)) is not None:
            return replayed

        def fresh() -> bytes:
            return b"".join(group.random_scalar() for _ in keys)

        blinds = self.spool.blinds_for(keys, fresh) if self.spool is not None else fresh()
        blinded = self.engine.blind_in_mode(VOPRF, keys, blinds)
        evaluated, proof = self.call(blinded)
        if len(evaluated) != len(blinded):
            raise ValueError(f"issuer answered {len(evaluated) // ELEMENT_BYTES} elements for {len(keys)}")
        unblinded = self.engine.verify_and_unblind(
            self.issuer_public_key, blinds, blinded, evaluated, proof, what="issuer batch"
        )
        self.evaluated += len(keys)
        tokens = [oprf.finalize_unblinded(key, unblinded[i * 32 : (i + 1) * 32]) for i, key in enumerate(keys)]
        if self.spool is not None:
            self.spool.record(keys, tokens)
        return tokens

    def committed(self) -> None:
        """The index over these tokens is committed: drop the spool (it holds the holder's tokens)."""
        if self.spool is not None:
            self.spool.discard()

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def parse_epoch(name: str, not_before: str, expires: str) -> Epoch:
    """The epoch as the issuer's GetEpoch states it."""
    def when(text: str) -> datetime:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)

    return Epoch(name, when(not_before), when(expires))


@contextmanager
def configured_tokens(config: HolderNodeConfig, at: datetime | None = None) -> Iterator[IssuerTokens | None]:
    """The token stage of ``[holder.issuer]`` (None without it), connected to the live issuer.

    Its tokens are of the issuer's current epoch, or with ``at`` of the epoch containing
    that instant: the daemon builds the next epoch's index ahead, which the issuer allows
    shortly before the epoch starts (an :class:`IssuerError` until then). Its spool lives
    in the index directory, so a rebuild interrupted in the token stage resumes from its
    last finished batch, and another build of the same epoch is not counted again.
    """
    if config.issuer is None:
        yield None
        return
    from blindmatch.issuer.client import IssuerClient, IssuerError

    endpoint = config.issuer
    engine = BatchEngine()
    stage: IssuerTokens | None = None
    try:
        with IssuerClient(endpoint.address, endpoint.ca_cert, endpoint.cert, endpoint.key) as issuer:
            info = issuer.epoch(endpoint.public_key, at)
            try:
                epoch = parse_epoch(info.epoch, info.not_before, info.expires)
            except ValueError:
                raise IssuerError(f"issuer {endpoint.address}: its epoch {info.epoch!r} has malformed times") from None
            if at is not None and not epoch.covers(at):
                raise IssuerError(f"issuer {endpoint.address}: asked for the epoch of {at:%Y-%m-%dT%H:%M:%SZ}, "
                                  f"it announced {epoch.name} ({info.not_before} to {info.expires})")

            def call(blinded: bytes) -> tuple[bytes, bytes]:
                return issuer.evaluate(epoch.name, blinded)

            spool = TokenSpool(config.index_dir, epoch.name, info.public_key, DEFAULT_BATCH_ELEMENTS)
            stage = IssuerTokens(call, info.public_key, epoch, engine, spool=spool)
            yield stage
    finally:
        if stage is not None:
            stage.close()
        engine.close()


def epoch_refusal(stamp: IssuerEpochStamp | None, asked: str, now: datetime) -> ProtocolError | None:
    """Why the holder must not serve its index now (SPEC.md 15.6), or None when it may.

    ``stamp`` is the committed index's issuer epoch (None: built over plain match keys),
    ``asked`` the epoch the requester's token file is for ("" when it did not say).
    """
    if asked and (stamp is None or stamp.name != asked):
        have = f"issuer epoch {stamp.name}" if stamp is not None else "plain match keys, not eligibility tokens"
        return ProtocolError(Reason.ISSUER_EPOCH_MISMATCH,
                             f"the requester's tokens are of issuer epoch {peer_text(asked, EPOCH_TEXT_LIMIT)}; "
                             f"this holder's index is over {have}")
    if stamp is not None and stamp.ended(now):
        return ProtocolError(Reason.ISSUER_EPOCH_ENDED,
                             f"this holder's index is over tokens of issuer epoch {stamp.name}, which ended "
                             f"{stamp.expires.strftime(_TIME_FORMAT)}; it serves it no more until it is rebuilt")
    return None


def check_served_epoch(stamp: IssuerEpochStamp | None, now: datetime) -> None:
    """Raise the refusal of a session on an index whose issuer epoch has ended."""
    if refusal := epoch_refusal(stamp, "", now):
        raise refusal


def epoch_fields(stamp: IssuerEpochStamp | None) -> dict[str, str]:
    """GetInfo's issuer epoch fields: the index's epoch and its end, or empty for plain keys."""
    if stamp is None:
        return {"issuer_epoch": "", "issuer_epoch_expires": ""}
    return {"issuer_epoch": stamp.name, "issuer_epoch_expires": stamp.expires.strftime(_TIME_FORMAT)}

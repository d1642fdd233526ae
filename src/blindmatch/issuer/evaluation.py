"""The issuer's blind, verifiable batch evaluation, offered to configured holders only.

A holder sends blinded elements of its own match keys; the issuer answers with the
RFC 9497 VOPRF BlindEvaluate of each under the current epoch's key and one batched DLEQ
proof; from ``evaluate_ahead_hours`` before the next epoch starts, under that epoch's key
too if the holder asks for it (it prepares its index for the epoch before it begins, so
it never stops serving at the boundary). It never sees a record, only the count. It answers only organisations named in
``[[issuer.holder]]`` (a requester is never one: otherwise it could blind any key and
obtain a token for anyone) and at most ``ceil(records * tiers * (1 + margin))``
elements per organisation and epoch (the next epoch's own allowance), counted durably in ``state_dir`` before the answer
leaves. A batch identical to one it answered that organisation in the epoch (a holder
resuming after the answer was lost) is answered again and not counted twice. Every
answer and every refusal is an audit entry (peer, epoch, counts).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from blindmatch.audit import AuditLog
from blindmatch.core.errors import peer_text
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES, InvalidElementError
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.epochs import EPOCH_TEXT_LIMIT, Epoch, epoch_key_pair
from blindmatch.issuer.issue import audit_origin, issuer_schema
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.rules import write_state_json
from blindmatch.vocabulary import BlindmatchError, Reason

MAX_BATCH_ELEMENTS = 65_536


class EvaluationRefused(BlindmatchError):
    """The issuer will not evaluate for this caller (not a configured holder, over its allowance)."""


class BlindEvaluator:
    """Answers blind evaluation requests; one instance per issuer process (thread-safe)."""

    def __init__(self, config: IssuerConfig, engine: BatchEngine, audit: AuditLog | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seed = read_seed(config.seed_file)
        self._engine = engine
        self._tiers = len(issuer_schema(config).tier_names())
        self._audit = audit or AuditLog.open(config.state_dir, audit_origin(config))
        self._lock = threading.Lock()

    def close(self) -> None:
        self._audit.close()

    def public_key(self, now: datetime | None = None) -> tuple[Epoch, bytes]:
        """The current epoch (at ``now``, else the issuer's clock) and its public key."""
        epoch = Epoch.containing(now or self._clock(), self._config.epoch_months)
        return epoch, epoch_key_pair(self._seed, epoch)[1]

    def served_epoch(self, name: str, now: datetime | None = None) -> tuple[Epoch, bytes] | None:
        """The epoch called ``name`` and its public key if the issuer evaluates under it at ``now``:
        the current epoch, or the next one once ``evaluate_ahead_hours`` before it starts; else None."""
        now = now or self._clock()
        current, pk = self.public_key(now)
        if name == current.name:
            return current, pk
        upcoming = Epoch.containing(current.expires, self._config.epoch_months)
        ahead = timedelta(hours=self._config.evaluate_ahead_hours)
        if name == upcoming.name and ahead and now >= upcoming.not_before - ahead:
            return upcoming, epoch_key_pair(self._seed, upcoming)[1]
        return None

    def epoch_at(self, at: datetime, now: datetime | None = None) -> tuple[Epoch, bytes] | None:
        """The epoch containing ``at`` and its key, if it is served at ``now`` (:meth:`served_epoch`)."""
        return self.served_epoch(Epoch.containing(at, self._config.epoch_months).name, now)

    def limit(self, organisation: str) -> int:
        allowance = self._config.holder(organisation)
        return 0 if allowance is None else math.ceil(allowance.records * self._tiers * (1 + allowance.margin))

    def _usage_path(self, epoch: Epoch) -> Path:
        return self._config.state_dir / f"evaluations-{epoch.name}.json"

    def _usage(self, epoch: Epoch) -> dict[str, dict[str, Any]]:
        """``{"used": {org: elements}, "batches": {org: [SHA-256 of each blinded batch]}}`` of ``epoch``."""
        path = self._usage_path(epoch)
        doc = json.loads(path.read_text()) if path.exists() else {}
        if "used" not in doc:  # the first format held only the counts
            doc = {"used": doc, "batches": {}}
        return {"used": dict(doc["used"]), "batches": dict(doc["batches"])}

    def _debit(self, organisation: str, epoch: Epoch, count: int, batch: bytes) -> int:
        """Add ``count`` and the batch's digest to the organisation's use in ``epoch`` durably; the new total."""
        usage = self._usage(epoch)
        usage["used"][organisation] = usage["used"].get(organisation, 0) + count
        usage["batches"][organisation] = [*usage["batches"].get(organisation, []), batch.hex()]
        write_state_json(self._usage_path(epoch), usage)
        return int(usage["used"][organisation])

    def used(self, organisation: str, epoch: Epoch) -> int:
        return int(self._usage(epoch)["used"].get(organisation, 0))

    def _repeated(self, organisation: str, epoch: Epoch, batch: bytes) -> bool:
        """Whether this organisation had exactly this blinded batch evaluated in ``epoch`` already."""
        return batch.hex() in self._usage(epoch)["batches"].get(organisation, [])

    def _refuse(self, organisation: str, epoch: Epoch, count: int, why: str, reason: Reason) -> EvaluationRefused:
        self._audit.append("blind_evaluation_refused", peer=organisation, epoch=epoch.name, count=count, why=why)
        return EvaluationRefused(f"issuer refuses {organisation!r}: {why}", reason)

    def evaluate(
        self, organisation: str, blinded: bytes, epoch_name: str, now: datetime | None = None
    ) -> tuple[bytes, bytes]:
        """``(evaluated, proof)`` for ``organisation``'s batch under epoch ``epoch_name`` (the current
        one, or the next within the evaluate-ahead window), or :class:`EvaluationRefused`."""
        now = now or self._clock()
        epoch, pk = self.public_key(now)
        count = len(blinded) // ELEMENT_BYTES
        with self._lock:
            if self._config.holder(organisation) is None:
                raise self._refuse(organisation, epoch, count, "not a holder this issuer evaluates for",
                                   Reason.ORGANISATION_NOT_ALLOWED)
            served = self.served_epoch(epoch_name, now)
            if served is None:
                # The holder's text goes into the audit entry's ``why`` (printable, at most 200 characters).
                asked = peer_text(epoch_name, EPOCH_TEXT_LIMIT)
                raise self._refuse(organisation, epoch, count, f"asked for epoch {asked}, current is {epoch.name} "
                                   f"(the next is evaluated from {self._config.evaluate_ahead_hours} h before it starts)",
                                   Reason.KEY_MISMATCH)
            epoch, pk = served
            if len(blinded) % ELEMENT_BYTES or not 0 < count <= MAX_BATCH_ELEMENTS:
                raise self._refuse(organisation, epoch, count, f"batch must hold 1..{MAX_BATCH_ELEMENTS} elements",
                                   Reason.LIMIT_EXCEEDED)
            limit, used = self.limit(organisation), self.used(organisation, epoch)
            digest = hashlib.sha256(blinded).digest()
            if self._repeated(organisation, epoch, digest):
                return self._evaluate_again(organisation, epoch, pk, blinded, digest, used, limit)
            if used + count > limit:
                raise self._refuse(organisation, epoch, count, f"over its allowance ({used} of {limit} used this epoch)",
                                   Reason.OVER_BUDGET)
            sk = epoch_key_pair(self._seed, epoch)[0]
            try:
                evaluated, proof = self._engine.blind_evaluate_proven(sk, pk, blinded)
            except InvalidElementError:
                raise self._refuse(organisation, epoch, count, "a blinded element is invalid",
                                   Reason.INVALID_ELEMENT) from None
            # Audit before effect (issue 17): an entry the log cannot take debits and returns nothing.
            self._audit.append("blind_evaluation", peer=organisation, epoch=epoch.name, count=count,
                               epoch_used=used + count, epoch_limit=limit, blinded_sha256=digest.hex())
            self._debit(organisation, epoch, count, digest)
        return evaluated, proof

    def _evaluate_again(self, organisation: str, epoch: Epoch, pk: bytes, blinded: bytes, digest: bytes,
                        used: int, limit: int) -> tuple[bytes, bytes]:
        """A batch this holder was answered before (its answer lost, say): the same elements give it
        nothing new, so it is answered again without counting it twice (SPEC.md 15.8)."""
        sk = epoch_key_pair(self._seed, epoch)[0]
        evaluated, proof = self._engine.blind_evaluate_proven(sk, pk, blinded)  # valid before: cannot fail
        self._audit.append("blind_evaluation_repeated", peer=organisation, epoch=epoch.name,
                           count=len(blinded) // ELEMENT_BYTES, epoch_used=used, epoch_limit=limit,
                           blinded_sha256=digest.hex())
        return evaluated, proof

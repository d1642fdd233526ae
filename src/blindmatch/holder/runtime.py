"""What the holder's Match service runs on: its key, indexes, limits, audit log and the policy gate.

``BudgetStore`` is one SQLite connection and must stay in its thread, so the gate gives
each server thread its own store and ``Authorizer`` over the shared policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from blindmatch.audit import AuditLog
from blindmatch.audit.keeper import AuditKeeper
from blindmatch.core.holder import HolderConfig
from blindmatch.core.keys import HolderKey
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import HolderLimits
from blindmatch.holder.key_usage import KeyUsage
from blindmatch.holder.store import OpenIndexes
from blindmatch.policy import (
    Authorizer,
    BudgetStore,
    Grant,
    Policy,
    PolicyRefusal,
    open_envelope,
    verify_request_signature,
)
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.vocabulary import Mode


class PolicyGate:
    """The policy file and budget store, shaped for concurrent RPC threads.

    ``BudgetStore`` is one SQLite connection and must stay in its thread, so each
    server thread gets its own store and ``Authorizer`` over the shared file.
    """

    def __init__(self, policy: Policy, budget_db: Any) -> None:
        self.policy = policy
        self._budget_db = budget_db
        self._local = threading.local()

    def _store(self) -> BudgetStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = BudgetStore(self._budget_db)
            self._local.authorizer = Authorizer(self.policy, store)
        return store

    def authorize(self, envelope: bytes, **bindings: Any) -> Grant:
        self._store()
        grant: Grant = self._local.authorizer.authorize(envelope, **bindings)
        return grant

    def index_kinds(self, organisation: str, now: datetime) -> frozenset[Mode]:
        """The index kinds ``organisation`` may download: the modes its officials may use at ``now``.

        An organisation limited to cardinality mode must not hold the membership index:
        with it, trying Finalize(x_i, E_j) for every pair would link shuffled evaluations
        to its inputs (SPEC.md section 6). An official whose mandate has not started or has
        ended grants nothing, exactly as at authorisation.
        """
        return frozenset(
            Mode(m)
            for o in self.policy.officials(organisation)
            if o.valid_from <= now <= o.valid_until
            for m in o.modes
        )

    def verified_official(self, envelope: bytes) -> str:
        """The official named by ``envelope`` if a registered key of that name signed it, else ``""``.

        Audit entries name an official only when the signature proves it: otherwise any
        peer could pin its refusals on a real official by writing their name.
        """
        try:
            request, signature = open_envelope(envelope)
        except PolicyRefusal:
            return ""
        signed = any(verify_request_signature(request, signature, o.public_key)
                     for o in self.policy.officials_named(request.official))
        return request.official if signed else ""

    def organisation_budgets(self, now: datetime) -> dict[str, dict[str, int]]:
        """Records each policy organisation may still send, per window (``day``, ``30d``), for the metrics."""
        store = self._store()
        budgets = {}
        for organisation in self.policy.organisations():
            left = store.remaining(organisation, None, self.policy.limits(organisation), now)
            budgets[organisation] = {"day": left["org_day"], "30d": left["org_30d"]}
        return budgets

    def budget(self, organisation: str, official: str, now: datetime) -> pb.Budget:
        """Remaining budget of ``organisation`` (and ``official`` if registered there); zeros if unknown."""
        if organisation not in self.policy.organisations():
            return pb.Budget()
        person = official if official and self.policy.find_official(organisation, official) else None
        left = self._store().remaining(organisation, person, self.policy.limits(organisation, person), now)
        return pb.Budget(
            session_max_records=left["session_max_records"],
            organisation_day_remaining=left["org_day"],
            organisation_30d_remaining=left["org_30d"],
            official_day_remaining=left.get("official_day", 0),
            official_30d_remaining=left.get("official_30d", 0),
        )


@dataclass
class HolderRuntime:
    """Everything the servicer needs, loaded once at start-up."""

    key: HolderKey
    indexes: OpenIndexes
    limits: HolderLimits
    organisation: str
    allowed_organisations: frozenset[str]
    gate: PolicyGate
    audit: AuditLog
    engine: BatchEngine
    keeper: AuditKeeper  # periodic checkpoints, refusal summaries, witness submission
    key_usage: KeyUsage  # the key's lifetime cap of evaluations
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def holder_config(self, organisation: str) -> HolderConfig:
        """What a session with ``organisation`` may use: the indexes built for it (SPEC.md section 2.2)."""
        manifest = self.indexes.manifest
        return HolderConfig(
            sk=self.key.sk,
            key_id=self.key.key_id,
            schema_fingerprint=manifest.schema_fingerprint,
            index_digests={kind: f.digest for kind, f in manifest.for_organisation(organisation).items()},
            max_batch=self.limits.max_batch,
            max_session_elements=self.limits.max_session_elements,
        )

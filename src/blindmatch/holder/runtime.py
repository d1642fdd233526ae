"""What the holder's Match service runs on: its key, indexes, limits, audit log and the policy gate.

``BudgetStore`` is one SQLite connection and must stay in its thread, so the gate gives
each server thread its own store and ``Authorizer`` over the shared policy.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blindmatch.audit import AuditLog
from blindmatch.audit.keeper import AuditKeeper
from blindmatch.core.holder import HolderConfig
from blindmatch.core.key_epochs import epoch_ended, epoch_ends_at
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import format_time, parse_time
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import HolderLimits
from blindmatch.holder.key_usage import KeyUsage
from blindmatch.holder.rotation import retired_key_ids
from blindmatch.holder.store import IndexManifest, OpenIndexes
from blindmatch.policy import (
    Authorizer,
    BudgetStore,
    Grant,
    Policy,
    PolicyError,
    PolicyRefusal,
    open_envelope,
    verify_request_signature,
)
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.vocabulary import Mode

log = logging.getLogger("blindmatch.holder")


def _fingerprint(path: Path) -> tuple[int, int, bytes] | None:
    """Size, modification time and SHA-256 of the policy file (None while it cannot be read)."""
    try:
        info = path.stat()
        return info.st_size, info.st_mtime_ns, hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


class PolicyGate:
    """The policy file and budget store, shaped for concurrent RPC threads.

    ``BudgetStore`` is one SQLite connection and must stay in its thread, so each
    server thread gets its own store and ``Authorizer`` over the shared policy.

    Revocation: given the file's ``path``, the gate reloads it when its size,
    modification time or content hash changed (checked on every use, at most once per
    ``POLL_SECONDS`` for the hash) and on :meth:`reload` (SIGHUP), so an official removed
    from the file, or whose mandate was cut short, is refused from the next session on,
    in the middle of a job too. A file that no longer loads keeps the last valid policy
    in force and is logged as an error until it is fixed.
    """

    POLL_SECONDS = 1.0

    def __init__(self, policy: Policy, budget_db: Any, path: Path | None = None) -> None:
        self._policy = policy
        self._budget_db = budget_db
        self._local = threading.local()
        self._path = path
        self._lock = threading.Lock()
        self._seen = _fingerprint(path) if path is not None else None
        self._checked = time.monotonic()

    @property
    def policy(self) -> Policy:
        """The policy in force now (reloaded first if the file changed)."""
        if self._path is not None and time.monotonic() - self._checked >= self.POLL_SECONDS:
            self.reload(force=False)
        return self._policy

    def reload(self, force: bool = True) -> bool:
        """Load the file again if it changed (or always, with ``force``); True when a new policy is in force."""
        if self._path is None:
            return False
        with self._lock:
            self._checked = time.monotonic()
            seen = _fingerprint(self._path)
            if seen == self._seen and not force:
                return False
            try:
                policy = Policy.load(self._path)
            except PolicyError as exc:
                log.error("policy file not reloaded, the previous policy stays in force: %s", exc)
                return False
            self._seen, self._policy = seen, policy
        log.info("policy reloaded from %s", self._path)
        return True

    def reload_on_signal(self) -> str:
        """Reload at once (SIGHUP); the line ``holder serve`` prints about it."""
        return "policy reloaded (SIGHUP)" if self.reload() else "policy not reloaded (SIGHUP): see the error above"

    def _authorizer(self) -> Authorizer:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = BudgetStore(self._budget_db)
        policy = self.policy
        if getattr(self._local, "policy", None) is not policy:
            self._local.policy, self._local.authorizer = policy, Authorizer(policy, store)
        authorizer: Authorizer = self._local.authorizer
        return authorizer

    def _store(self) -> BudgetStore:
        self._authorizer()
        store: BudgetStore = self._local.store
        return store

    def authorize(self, envelope: bytes, **bindings: Any) -> Grant:
        return self._authorizer().authorize(envelope, **bindings)

    def settle(self, session_id: bytes, evaluated: int, before_commit: Callable[[int], None]) -> int:
        """Settle a session's reservation to the elements evaluated (``BudgetStore.settle``)."""
        return self._store().settle(session_id, evaluated, before_commit)

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
            request, signatures = open_envelope(envelope)
        except PolicyRefusal:
            return ""
        signed = any(verify_request_signature(request, sig, o.public_key)
                     for o in self.policy.officials_named(request.official) for sig in signatures)
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
        policy = self.policy
        if organisation not in policy.organisations():
            return pb.Budget()
        person = official if official and policy.find_official(organisation, official) else None
        left = self._store().remaining(organisation, person, policy.limits(organisation, person), now)
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
    rotations: tuple[bytes, ...] = ()  # the key rotation statements GetInfo serves (SPEC.md 2.3)
    epoch_days: int | None = None  # the key's epoch schedule; None: it ends only by a manual rotation
    retired: list[OpenIndexes] = field(default_factory=list)  # replaced indexes, open until the daemon stops
    # Called by the first ``serving`` once the serving key's epoch or the index's issuer epoch has
    # ended: switches to the next epoch if it was built ahead (``EpochRotator.switch_if_due``), so
    # no call is refused.
    on_epoch_end: Callable[[], object] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> tuple[HolderKey, OpenIndexes, tuple[bytes, ...]]:
        """The key, its indexes and the rotation statements, read together (a rotation switches them at once)."""
        with self._lock:
            return self.key, self.indexes, self.rotations

    def serving(self) -> tuple[HolderKey, OpenIndexes, tuple[bytes, ...]]:
        """What ``current`` gives, after switching to a next epoch built ahead if the serving one has ended."""
        served = self.current()
        if self.on_epoch_end is not None and self._epoch_over(served[1].manifest):
            self.on_epoch_end()
            served = self.current()
        return served

    def _epoch_over(self, manifest: IndexManifest) -> bool:
        """Whether the key's scheduled epoch or the issuer epoch of the index's tokens has ended."""
        now = self.clock()
        if self.epoch_days and epoch_ended(parse_time(manifest.valid_from), self.epoch_days, now):
            return True
        return manifest.issuer_epoch is not None and manifest.issuer_epoch.ended(now)

    def switch(self, key: HolderKey, indexes: OpenIndexes, rotations: tuple[bytes, ...]) -> None:
        """Serve a new key and its indexes from the next call on; calls in flight keep the old ones."""
        with self._lock:
            self.retired.append(self.indexes)
            self.key, self.indexes, self.rotations = key, indexes, rotations

    def ended_keys(self, key: HolderKey, manifest: IndexManifest, rotations: tuple[bytes, ...]) -> dict[bytes, str]:
        """The keys whose epoch is over at the runtime's clock, each with what the requester should do:
        every key a rotation statement replaced, and the serving key once its scheduled epoch has
        ended and before the rotation has switched keys (SPEC.md 2.1)."""
        ended = {old: f"the epoch of key {old.hex()[:16]}... is over; the holder now serves epoch {manifest.epoch}: "
                      "call GetInfo, follow its key rotation statement and download the new index"
                 for old in retired_key_ids(rotations) if old != key.key_id}
        if self.epoch_days and epoch_ended(parse_time(manifest.valid_from), self.epoch_days, self.clock()):
            ends = epoch_ends_at(parse_time(manifest.valid_from), self.epoch_days)
            ended[key.key_id] = (f"epoch {manifest.epoch} of the holder's key ended at {format_time(ends)}; "
                                 "the holder is rotating its key: retry shortly")
        return ended

    def holder_config(self, organisation: str) -> HolderConfig:
        """What a session with ``organisation`` may use: the indexes built for it (SPEC.md section 2.2)."""
        key, indexes, rotations = self.serving()
        manifest = indexes.manifest
        return HolderConfig(
            ended_keys=self.ended_keys(key, manifest, rotations),
            sk=key.sk,
            key_id=key.key_id,
            schema_fingerprint=manifest.schema_fingerprint,
            index_digests={kind: f.digest for kind, f in manifest.for_organisation(organisation).items()},
            max_batch=self.limits.max_batch,
            max_session_elements=self.limits.max_session_elements,
        )

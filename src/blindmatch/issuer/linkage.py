"""``issuer approve REQUEST.csv --orders ORDERS.csv --by NAME``: a named person links new addresses.

A requester asks, in a linkage request (a CSV with the schema's name and address fields
and the order reference ``case_field``), for tokens for persons under a final order at
addresses the issuer's records do not link to them. A person at the issuer, named by
``--by``, approves it; never a daemon. Row by row the issuer checks, against its own
records (:mod:`blindmatch.issuer.records`), that the order exists, qualifies today and
is the row's person's, and that the person stays within ``max_addresses_per_person``
counting the addresses on record, those approved before and those issued tokens in this
epoch. A rejected row is named with its reason; the others are unaffected.

An approved link is kept in ``state_dir/linkage-approvals.json`` as keyed digests of the
person and the address only, and from then on counts as on record for issuance
(``issuer issue --orders``) in every epoch while the order qualifies. Each approval is
one audit entry ``linkage_approved`` (who approved, a keyed identifier of the request,
counts), written before the approvals take effect; the store is replaced atomically,
so an interrupted approval leaves the earlier approvals and the audit log as they were.

``issuer revoke REQUEST.csv --by NAME`` takes links back the same way (``linkage_revoked``);
tokens already issued for them stay valid until their epoch ends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.identity import identity_problem
from blindmatch.issuer.config import IssuerConfig, audit_origin
from blindmatch.issuer.epochs import Epoch
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.records import COLUMNS_REFUSAL, IssuerRecords, LinkedRow, linked_row, read_records
from blindmatch.issuer.rules import OVER_ADDRESS_CAP, AddressLedger, StateDigest, state_lock, write_state_json
from blindmatch.normalize import Schema, resolve_schema
from blindmatch.vocabulary import InputError

APPROVALS_FILE = "linkage-approvals.json"
REQUEST_ID_DST = b"blindmatch/v1 linkage request\x00"
ON_RECORD = "on record"  # the issuer's own records link this address already: nothing to approve
ALREADY_APPROVED = "already approved"
NOT_APPROVED = "no approved link"  # a revocation row that names no link kept


class ApprovalError(InputError, ValueError):
    """The approval cannot be made as a whole (no approver, an unreadable request)."""


class ApprovalStore:
    """Approved (person, address) links, as keyed digests; replaced atomically on save."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / APPROVALS_FILE
        self._links: dict[str, list[str]] = {}
        if self._path.exists():
            try:
                self._links = json.loads(self._path.read_text(encoding="utf-8"))["links"]
            except (ValueError, KeyError, TypeError):
                raise ApprovalError(f"{self._path}: not a linkage approvals file (damaged?); restore it from backup, "
                                    "the audit log's linkage_approved entries say what it held") from None

    def addresses(self, person: str) -> set[str]:
        return set(self._links.get(person, ()))

    def approved(self, row: LinkedRow) -> bool:
        return row.address_digest in self._links.get(row.person_digest, ())

    def add(self, row: LinkedRow) -> None:
        self._links.setdefault(row.person_digest, []).append(row.address_digest)

    def remove(self, row: LinkedRow) -> bool:
        """Drop the link of ``row``; False when there was none."""
        if not self.approved(row):
            return False
        addresses = self._links[row.person_digest]
        addresses.remove(row.address_digest)
        if not addresses:
            del self._links[row.person_digest]
        return True

    def save(self) -> None:
        write_state_json(self._path, {"links": self._links})


@dataclass
class ApprovalReport:
    request_id: str
    by: str
    epoch: str
    rows: int = 0
    approved: list[int] = field(default_factory=list)
    on_record: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)  # row -> reason, in row order

    def summary(self, request: Path) -> str:
        lines = [f"row {row}: rejected: {reason}" for row, reason in self.rejected.items()]
        lines.append(f"{request}: {self.rows} rows, {len(self.approved)} approved by {self.by}, "
                     f"{len(self.on_record)} already on record, {len(self.rejected)} rejected "
                     f"(request {self.request_id[:16]}, epoch {self.epoch})")
        return "\n".join(lines)


def request_id(digest: StateDigest, request: Path) -> str:
    """A keyed identifier of the request file: names it in the audit log without hashing its records in the clear."""
    try:
        content = request.read_bytes()
    except OSError as exc:
        raise ApprovalError(f"cannot read linkage request {request}: {exc.strerror}") from None
    return digest(REQUEST_ID_DST + hashlib.sha256(content).digest())


class _Decider:
    """The approval rule for one row, with the running counts of this request."""

    def __init__(self, records: IssuerRecords, store: ApprovalStore, ledger: AddressLedger, cap: int) -> None:
        self._records, self._store, self._ledger, self._cap = records, store, ledger, cap

    def decide(self, row: LinkedRow) -> str | None:
        """None to approve ``row`` (and count it), otherwise its status."""
        problem = self._records.order_problem(row)
        if problem is not None:
            return problem
        if self._records.on_record(row):
            return ON_RECORD
        if self._store.approved(row):
            return ALREADY_APPROVED
        known = self._records.addresses.get(row.person_digest, set()) | self._store.addresses(row.person_digest) \
            | self._ledger.issued(row.person_digest)
        if len(known) >= self._cap:
            return OVER_ADDRESS_CAP
        self._store.add(row)
        return None


@dataclass(frozen=True)
class _Decision:
    """One approval or revocation: who decides, in which epoch, under which keys, on which request."""

    config: IssuerConfig
    by: str
    seed: bytes
    digest: StateDigest
    schema: Schema
    epoch: Epoch
    request_id: str

    @classmethod
    def start(cls, config: IssuerConfig, by: str, request: Path, now: datetime | None) -> _Decision:
        problem = identity_problem(by)
        if problem is not None:
            raise ApprovalError(f"--by: the approver's name {problem}")
        seed = read_seed(config.seed_file)
        digest = StateDigest(seed)
        epoch = Epoch.containing(now or datetime.now(UTC), config.epoch_months)
        return cls(config, by, seed, digest, resolve_schema(config.schema), epoch, request_id(digest, request))

    def rows(self, request: Path, needed: list[str]) -> Iterator[tuple[int, LinkedRow | str]]:
        """Each row of ``request`` as a :class:`LinkedRow`, or why it cannot be read."""
        for number, record in read_records(request, needed):
            yield number, COLUMNS_REFUSAL if record is None else \
                linked_row(record, number, self.schema, self.config.case_field, self.digest)

    def commit(self, store: ApprovalStore, changed: bool, event: str, **counts: int) -> None:
        """Audit the decision, then (only if it changed anything) replace the kept links: audit before effect."""
        with AuditLog.open(self.config.state_dir, audit_origin(self.config)) as log:
            log.append(event, by=self.by, request=self.request_id, epoch=self.epoch.name, **counts)
        if changed:
            store.save()


def approve_request(request: Path, orders: Path, config: IssuerConfig, by: str, *,
                    now: datetime | None = None) -> ApprovalReport:
    """Decide every row of ``request`` against ``orders``, audit the approval, then keep it."""
    now = now or datetime.now(UTC)
    decision = _Decision.start(config, by, request, now)
    records = IssuerRecords.load(orders, config, decision.schema, now.date(), decision.digest)
    report = ApprovalReport(decision.request_id, by, decision.epoch.name)
    with state_lock(config.state_dir):
        store = ApprovalStore(config.state_dir)
        ledger = AddressLedger(config.state_dir, decision.epoch, decision.seed, config.max_addresses_per_person)
        decider = _Decider(records, store, ledger, config.max_addresses_per_person)
        for number, row in decision.rows(request, [*decision.schema.tier_fields, config.case_field]):
            report.rows += 1
            status = row if isinstance(row, str) else decider.decide(row)
            if status is None:
                report.approved.append(number)
            elif status in (ON_RECORD, ALREADY_APPROVED):
                report.on_record.append(number)
            else:
                report.rejected[number] = status
        decision.commit(store, bool(report.approved), "linkage_approved", rows=report.rows,
                        approved=len(report.approved), on_record=len(report.on_record), rejected=len(report.rejected))
    return report


@dataclass
class RevocationReport:
    request_id: str
    by: str
    epoch: str
    rows: int = 0
    revoked: list[int] = field(default_factory=list)
    not_revoked: dict[int, str] = field(default_factory=dict)  # row -> why (no such link, unreadable)

    def summary(self, request: Path) -> str:
        lines = [f"row {row}: not revoked: {reason}" for row, reason in self.not_revoked.items()]
        lines.append(f"{request}: {self.rows} rows, {len(self.revoked)} links revoked by {self.by}, "
                     f"{len(self.not_revoked)} not revoked (request {self.request_id[:16]}, epoch {self.epoch})")
        return "\n".join(lines)


def revoke_request(request: Path, config: IssuerConfig, by: str, *, now: datetime | None = None) -> RevocationReport:
    """Drop the approved links that the rows of ``request`` name, audited first like an approval.

    Tokens already issued for a revoked link stay valid until their epoch ends (a token
    cannot be recalled); from the revocation on, no issuance links that address.
    """
    decision = _Decision.start(config, by, request, now)
    report = RevocationReport(decision.request_id, by, decision.epoch.name)
    with state_lock(config.state_dir):
        store = ApprovalStore(config.state_dir)
        for number, row in decision.rows(request, list(decision.schema.tier_fields)):
            report.rows += 1
            if isinstance(row, str) or not store.remove(row):
                report.not_revoked[number] = row if isinstance(row, str) else NOT_APPROVED
            else:
                report.revoked.append(number)
        decision.commit(store, bool(report.revoked), "linkage_revoked", rows=report.rows,
                        revoked=len(report.revoked), not_revoked=len(report.not_revoked))
    return report

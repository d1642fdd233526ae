"""``issuer issue FILE --out TOKENS [--orders ORDERS.csv]``: tokens for the eligible rows, offline.

Rows are numbered as the requester numbers QUERIES.csv (row 1 is the first non-blank
data row), because the requester runs its job on the same file and looks each row's
tokens up by that number. A token is RFC 9497 VOPRF Evaluate under the epoch's key over
each tier's match key (the requester's side of the schema). The audit entry of an
issuance holds counts, the epoch and the output file's digest, never a record.

Without ``--orders`` FILE is the issuer's own ORDERS.csv: each row is a record of the
issuer and links its address to its person. With ``--orders`` FILE is a requester's
file whose rows name their order (``case_field``); a row gets tokens only when that
order qualifies, is the row's person's, and the address is on the issuer's record for
that person or linked by an approved linkage request (:mod:`blindmatch.issuer.linkage`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.keys import raw_public_key
from blindmatch.crypto import oprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import VOPRF
from blindmatch.issuer.config import IssuerConfig, IssuerConfigError, audit_origin
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.keys import load_signing_key, read_seed
from blindmatch.issuer.linkage import ApprovalStore
from blindmatch.issuer.records import (
    COLUMNS_REFUSAL,
    NO_MATCH_KEY,
    NOT_LINKED,
    IssuerRecords,
    linked_row,
    read_records,
)
from blindmatch.issuer.rules import OVER_ADDRESS_CAP, AddressLedger, StateDigest, person_of, refusal, state_lock
from blindmatch.issuer.tokenfile import TokenHeader, records_digest, render, write_token_file
from blindmatch.normalize import NormalizationError, Schema, resolve_schema

# audit_origin moved to config.py (linkage.py needs it too); it stays importable from here.
__all__ = ["IssueReport", "audit_origin", "issue_tokens", "issuer_schema"]

Keys = list[tuple[str, bytes]]


@dataclass
class IssueReport:
    rows: int = 0
    issued: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    epoch: str = ""
    out: Path | None = None
    by_approval: int = 0  # issued rows whose address only an approved linkage request links (--orders)
    unlinked: list[int] = field(default_factory=list)  # rows refused NOT_LINKED: what a linkage request may ask for

    def summary(self) -> str:
        lines = [f"{self.rows} rows read, {self.issued} issued tokens for epoch {self.epoch} -> {self.out}"]
        if self.by_approval:
            lines.append(f"  {self.by_approval} of them linked by an approved linkage request")
        lines += [f"  {reason}: {count} rows refused" for reason, count in sorted(self.refused.items())]
        if self.unlinked:
            lines.append(f"  rows a linkage request could link: {', '.join(map(str, self.unlinked))}")
        return "\n".join(lines)


def issuer_schema(config: IssuerConfig) -> Schema:
    return resolve_schema(config.schema)


class _OwnRecordsRule:
    """Without ``--orders``: every row is one of the issuer's records, its address on record by definition."""

    def __init__(self, config: IssuerConfig, schema: Schema, now: datetime, ledger: AddressLedger) -> None:
        self._config, self._schema, self._today, self._ledger = config, schema, now.date(), ledger
        self.needed = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else []), config.final_field]

    def __call__(self, number: int, record: dict[str, str], report: IssueReport) -> Keys | str:
        reason = refusal(record, self._schema, self._config.final_field, self._config.final_value, self._today)
        if reason is not None:
            return reason
        try:
            keys = self._schema.match_keys(record, "requester", number)
            if not keys:
                return NO_MATCH_KEY
            if not self._ledger.admit(person_of(self._schema, record, number), keys[0][1]):
                return OVER_ADDRESS_CAP
        except NormalizationError as exc:
            return f"invalid: {exc.field}"
        return keys


class _LinkedRule:
    """With ``--orders``: a requester's row gets tokens when its order qualifies, is its person's, and its
    address is on the issuer's record for that person or linked by an approved request (SPEC.md 15.7)."""

    def __init__(self, config: IssuerConfig, schema: Schema, records: IssuerRecords, ledger: AddressLedger) -> None:
        self._config, self._schema, self._records, self._ledger = config, schema, records, ledger
        self._approvals = ApprovalStore(config.state_dir)
        self.needed = [*schema.tier_fields, config.case_field]

    def __call__(self, number: int, record: dict[str, str], report: IssueReport) -> Keys | str:
        row = linked_row(record, number, self._schema, self._config.case_field, self._ledger.digest)
        if isinstance(row, str):
            return row
        problem = self._records.order_problem(row)
        if problem is not None:
            return problem
        by_approval = not self._records.on_record(row)
        if by_approval and not self._approvals.approved(row):
            report.unlinked.append(number)
            return NOT_LINKED
        if not self._ledger.admit(row.person, row.keys[0][1]):
            return OVER_ADDRESS_CAP
        report.by_approval += by_approval
        return row.keys


def _eligible_rows(source: Path, rule: _OwnRecordsRule | _LinkedRule, report: IssueReport) -> list[tuple[int, Keys]]:
    eligible: list[tuple[int, Keys]] = []
    for number, record in read_records(source, rule.needed):
        report.rows += 1
        # a row with more values than columns: the requester marks it invalid too, and never sends it
        outcome = COLUMNS_REFUSAL if record is None else rule(number, record, report)
        if isinstance(outcome, str):
            report.refused[outcome] += 1
        else:
            eligible.append((number, outcome))
    return eligible


def _token_rows(eligible: list[tuple[int, Keys]], schema: Schema, sk: bytes,
                engine: BatchEngine | None) -> list[tuple[int, list[bytes | None]]]:
    """Each eligible row's tokens, one per tier (None where the row has no key of that tier)."""
    own_engine = engine is None
    engine = engine or BatchEngine()
    try:
        flat = [key for _, keys in eligible for _, key in keys]
        elements = engine.evaluate_elements_in_mode(VOPRF, sk, flat)
    finally:
        if own_engine:
            engine.close()
    tokens = iter(oprf.finalize_unblinded(key, elements[i * 32 : (i + 1) * 32]) for i, key in enumerate(flat))
    tiers = len(schema.tier_names())
    rows: list[tuple[int, list[bytes | None]]] = []
    for number, keys in eligible:
        row: list[bytes | None] = [None] * tiers
        for tier_name, _ in keys:
            row[schema.tier_rank[tier_name]] = next(tokens)
        rows.append((number, row))
    return rows


def issue_tokens(
    source: Path, config: IssuerConfig, out: Path, *, orders: Path | None = None, now: datetime | None = None,
    engine: BatchEngine | None = None,
) -> IssueReport:
    """Apply the rules to every row of ``source``, write the signed token file ``out``, audit it.

    Without ``orders``, ``source`` is the issuer's own ORDERS.csv. With it, ``source`` is a
    requester's file checked against ``orders`` and the approved linkage requests.
    """
    now = now or datetime.now(UTC)
    schema = issuer_schema(config)
    several = schema.several_keys_tiers("requester")
    if several:  # a row's token of such a tier would stand for only one of its keys
        raise IssuerConfigError(
            f"issuer.schema: schema {schema.name!r} gives a requester several keys in tier(s) {', '.join(several)}, "
            "but a token file carries one token per tier (SPEC 15.3); issue tokens under a schema without them"
        )
    epoch = Epoch.containing(now, config.epoch_months)
    seed = read_seed(config.seed_file)
    records = None if orders is None else IssuerRecords.load(orders, config, schema, now.date(), StateDigest(seed))
    with state_lock(config.state_dir):  # the ledger and the approvals as one issuance saw them
        return _issue_locked(source, config, out, schema, epoch, seed, records, now, engine)


def _issue_locked(source: Path, config: IssuerConfig, out: Path, schema: Schema, epoch: Epoch, seed: bytes,
                  records: IssuerRecords | None, now: datetime, engine: BatchEngine | None) -> IssueReport:
    sk, pk = epoch_key_pair(seed, epoch)
    signing = load_signing_key(config.signing_key)
    ledger = AddressLedger(config.state_dir, epoch, seed, config.max_addresses_per_person)
    report = IssueReport(epoch=epoch.name, out=out)
    rule: _OwnRecordsRule | _LinkedRule = _OwnRecordsRule(config, schema, now, ledger) if records is None else \
        _LinkedRule(config, schema, records, ledger)
    eligible = _eligible_rows(source, rule, report)
    rows = _token_rows(eligible, schema, sk, engine)
    bound = records_digest((number, [key for _, key in keys]) for number, keys in eligible)
    tiers = len(schema.tier_names())
    header = TokenHeader(config.name, epoch, pk, raw_public_key(signing), schema.fingerprint, tiers, len(rows), bound)
    content = render(header, rows, signing)
    report.issued = len(rows)
    ledger.save()  # the address cap counts these tokens before anyone holds them
    with AuditLog.open(config.state_dir, audit_origin(config)) as log:  # audit before effect (issue 17)
        log.append("tokens_issued", epoch=epoch.name, rows=report.rows, issued=report.issued,
                   refused=report.rows - report.issued, file_sha256=hashlib.sha256(content).hexdigest(),
                   **({"by_approval": report.by_approval} if records is not None else {}))
    write_token_file(out, content)
    return report
